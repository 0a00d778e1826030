from datetime import UTC, datetime

import pytest

from loyalist.freshness import FreshnessError, check_freshness


def _deliver(landing, entity, day):
    part = landing / entity / f"dt={day}"
    part.mkdir(parents=True, exist_ok=True)
    (part / f"{entity}.csv").write_text("x\n", encoding="utf-8")


def test_fresh_feed_passes_and_reports_its_age(tmp_path):
    _deliver(tmp_path, "orders", "2025-03-30")
    (r,) = check_freshness(tmp_path, ["orders"], datetime(2025, 4, 1, tzinfo=UTC), max_age_hours=48)
    assert r.latest_partition.isoformat() == "2025-03-30" and r.age_hours == 24


def test_stale_and_missing_feeds_fail_with_a_clear_message(tmp_path):
    _deliver(tmp_path, "orders", "2025-03-20")
    (tmp_path / "feedback" / "dt=2025-03-31").mkdir(parents=True)  # a folder without a file is no delivery
    with pytest.raises(FreshnessError) as err:
        check_freshness(tmp_path, ["orders", "feedback"], datetime(2025, 4, 1, tzinfo=UTC), max_age_hours=48)
    message = str(err.value)
    assert "orders: latest day 2025-03-20, 264 h old" in message
    assert "feedback: nothing delivered yet" in message and "allowed: 48 h" in message


def test_future_partitions_do_not_count_as_delivered_for_a_past_run(tmp_path):
    _deliver(tmp_path, "orders", "2025-05-01")
    with pytest.raises(FreshnessError):
        check_freshness(tmp_path, ["orders"], datetime(2025, 4, 1, tzinfo=UTC), max_age_hours=48)
