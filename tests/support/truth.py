"""The expected counts, computed with the standard library only (not Spark)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from contract.alerts import AlertRule


def period_of(moment: datetime, period: str) -> str:
    """The bucket of an aware ``moment`` by the calendar rules (``date.isocalendar`` for ISO
    weeks), written without the job's code."""
    if period == "month":
        return moment.strftime("%Y-%m")
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(period)


def expected_counts(
    events: Iterable[dict], zone: str = "UTC", period: str = "month"
) -> dict[str, tuple[int, int, int]]:
    """``period -> (logins, successful, failed)`` computed with the standard library only.

    Independent of the job's code: Python's datetime and zoneinfo, not Spark.
    """
    logins: Counter[str] = Counter()
    successful: Counter[str] = Counter()
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        bucket = period_of(moment.astimezone(ZoneInfo(zone)), period)
        logins[bucket] += 1
        successful[bucket] += bool(event["success"])
    return {b: (logins[b], successful[b], logins[b] - successful[b]) for b in sorted(logins)}


def expected_monthly(events: Iterable[dict], zone: str = "UTC") -> dict[str, tuple[int, int, int]]:
    """:func:`expected_counts` per calendar month, the job's default period."""
    return expected_counts(events, zone, "month")


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def as_failures(events: list[dict]) -> list[tuple[datetime, str, str]]:
    """(time, account, address) of the failed logins among valid ``events``, the
    input of :func:`expected_alerts`."""
    return [
        (datetime.fromisoformat(e["timestamp"]), e["user_id"], e["ip_address"])
        for e in events
        if e["success"] is False
    ]


def expected_alerts(
    failures: Iterable[tuple[datetime, str, str]], rule: AlertRule
) -> list[tuple[str, datetime, int, int]]:
    """(address, window start, failed, accounts) of every window crossing ``rule``, from
    the failed logins of valid events as (time, account, address), each a distinct event."""
    failures = list(failures)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    slide, length = timedelta(seconds=rule.slide_s), timedelta(seconds=rule.window_s)
    out = []
    for address in {a for _, _, a in failures}:
        failed = [(t, u) for t, u, a in failures if a == address]
        starts = set()
        for t, _ in failed:  # every window that holds t
            first = epoch + (t - epoch) // slide * slide
            starts.update(first - k * slide for k in range(rule.window_s // rule.slide_s))
        for start in starts:
            inside = [u for t, u in failed if start <= t < start + length]
            if len(inside) >= rule.min_failed and len(set(inside)) >= rule.min_accounts:
                out.append((address, start, len(inside), len(set(inside))))
    return sorted(out)
