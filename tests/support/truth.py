"""The expected counts, computed with the standard library only (not Spark)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def expected_monthly(events: Iterable[dict], zone: str = "UTC") -> dict[str, tuple[int, int, int]]:
    """``month -> (logins, successful, failed)`` computed with the standard library only.

    Independent of the job's code: Python's datetime and zoneinfo, not Spark.
    """
    logins: Counter[str] = Counter()
    successful: Counter[str] = Counter()
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        month = moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
        logins[month] += 1
        successful[month] += bool(event["success"])
    return {m: (logins[m], successful[m], logins[m] - successful[m]) for m in sorted(logins)}


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)
