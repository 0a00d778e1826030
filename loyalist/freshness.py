"""Source freshness: has every expected feed delivered recently enough for this run?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from loyalist.ingest import PARTITION_RE


class FreshnessError(Exception):
    """A source has not delivered within the allowed time; the message names it and the gap."""


@dataclass(frozen=True)
class Freshness:
    entity: str
    latest_partition: date | None
    age_hours: float | None  # time from the end of the latest delivered day to the run's interval end

    def describe(self) -> str:
        if self.latest_partition is None:
            return f"{self.entity}: nothing delivered yet"
        return f"{self.entity}: latest day {self.latest_partition}, {self.age_hours:.0f} h old"


def latest_partition(landing_dir: Path, entity: str, before: date) -> date | None:
    """The newest ``dt=`` partition of ``entity`` that holds a data file, dated before ``before``."""
    folder = landing_dir / entity
    days = []
    if folder.is_dir():
        for part in folder.iterdir():
            m = PARTITION_RE.match(part.name)
            if m and part.is_dir() and any(f.suffix in (".csv", ".parquet") for f in part.iterdir()):
                days.append(date.fromisoformat(m.group(1)))
    eligible = [d for d in days if d < before]
    return max(eligible) if eligible else None


def check_freshness(landing_dir: Path, entities: list[str], interval_end: datetime,
                    max_age_hours: float) -> list[Freshness]:
    """Raise FreshnessError if any entity's newest delivered day is older than ``max_age_hours``."""
    results = []
    for entity in entities:
        day = latest_partition(landing_dir, entity, interval_end.date())
        age = None
        if day is not None:
            end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), interval_end.tzinfo)
            age = (interval_end - end_of_day).total_seconds() / 3600
        results.append(Freshness(entity, day, age))
    stale = [r for r in results if r.age_hours is None or r.age_hours > max_age_hours]
    if stale:
        raise FreshnessError(f"stale sources in {landing_dir} (allowed: {max_age_hours:g} h): "
                             + "; ".join(r.describe() for r in stale))
    return results
