"""The GX gates of the daily run, on real ingested batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalist.pipeline import DataQualityError, ingest_interval, validate_raw_batch

from .conftest import TINY

START = datetime.combine(TINY.end_date, datetime.min.time(), UTC)
END = START + timedelta(days=1)


def test_a_normal_batch_passes_every_raw_gate(settings):
    ingest_interval(settings, START, END, "ok")
    descriptions = validate_raw_batch(settings, "ok", END)
    assert any(d.startswith("raw_volume: passed") for d in descriptions)
    assert all("passed" in d for d in descriptions)


def test_a_day_with_a_fraction_of_its_usual_volume_stops_the_run(settings, landing):
    day_file = landing / "orders" / f"dt={TINY.end_date}" / "orders.csv"
    lines = day_file.read_text(encoding="utf-8").splitlines()
    day_file.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # 2 orders instead of ~100
    ingest_interval(settings, START, END, "thin")
    with pytest.raises(DataQualityError, match=r"raw_volume: FAILED.*ratio_to_recent_median"):
        validate_raw_batch(settings, "thin", END)
