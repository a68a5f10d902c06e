"""Credential-stuffing alerts as every part sees them: the rule that makes one.

An alert is one source address with many failed logins, against many accounts, in one
sliding window of event time; the address and the window identify it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class AlertRule:
    """When a window of one address's failed logins is an alert.

    A simulated burst is 20 to 150 attempts 50 to 1,500 ms apart (``producer/events.py``),
    one in a hundred of them a success: 20 attempts span at most 28.5 s, so a 60 s window
    sliding by 10 s holds all of a short burst in at least one window, and 15 failures
    leave room for its successes. Ordinary users fail a few percent of their logins from
    their own few addresses, so the distinct accounts keep a busy user's address from
    alerting however high the rate.
    """

    window_s: int = 60
    slide_s: int = 10
    min_failed: int = 15
    min_accounts: int = 10
    # How late an event may arrive (by event time) and still count in its window.
    watermark_s: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.slide_s <= self.window_s or self.window_s % self.slide_s:
            raise ValueError(
                f"the slide ({self.slide_s} s) must divide the window ({self.window_s} s)"
            )
        if self.min_failed < 1 or self.min_accounts < 1 or self.watermark_s < 0:
            raise ValueError("the thresholds must be at least 1 and the watermark not negative")


# Where the job publishes alerts unless told otherwise (``--alerts-topic``).
DEFAULT_ALERTS_TOPIC = "login-alerts"
# The fields of an alert's JSON record on that topic (keyed by ``address``), in order.
ALERT_FIELDS = (
    "address",
    "window_start",
    "window_end",
    "failed",
    "accounts",
    "first_event_time",
    "last_event_time",
    "detected_at",
)


def utc_text(moment: datetime) -> str:
    """An instant as the events write theirs: UTC, milliseconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone")
    stamp = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """An instant written as :func:`utc_text` writes it (or any ISO 8601 with an offset), as
    an aware UTC datetime; Python before 3.11 does not read the ``Z`` itself."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(timezone.utc)


def alert_record(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object published for ``alert`` (a row of the alerts table): its
    :data:`ALERT_FIELDS`, times as :func:`utc_text`."""
    return {
        name: utc_text(alert[name]) if isinstance(alert[name], datetime) else alert[name]
        for name in ALERT_FIELDS
    }


def incidents(alerts: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """``alerts`` grouped into runs of overlapping windows of one address: the windows one
    burst filled, which a person reads as one attack."""
    runs: list[list[Mapping[str, Any]]] = []
    for alert in sorted(alerts, key=lambda a: (a["address"], a["window_start"])):
        last = runs[-1] if runs else None
        if (
            last
            and last[-1]["address"] == alert["address"]
            and alert["window_start"] < max(a["window_end"] for a in last)
        ):
            last.append(alert)
        else:
            runs.append([alert])
    return runs


@dataclass(frozen=True)
class Score:
    """How alerts compare with the bursts the producer recorded (``--bursts-file``).

    A burst is found when an alert from its address has a window overlapping its first to
    last event; an alert is true when it overlaps a burst from its address. Recall counts
    bursts of at least ``min_attempts`` (a smaller one may stay under the rule); precision
    counts every alert, against every burst.
    """

    bursts: int  # of at least min_attempts
    found: int
    alerts: int
    true_alerts: int
    missed: tuple[dict[str, Any], ...]
    false_alerts: tuple[dict[str, Any], ...]

    @property
    def recall(self) -> float:
        return self.found / self.bursts if self.bursts else 1.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0


def score_alerts(
    alerts: list[Mapping[str, Any]], bursts: list[Mapping[str, Any]], min_attempts: int = 20
) -> Score:
    """``alerts`` (``address``, ``window_start``, ``window_end`` as aware datetimes) against
    ``bursts`` (the bursts file's objects)."""
    spans = [
        (
            b,
            parse_utc(b["first_event_time"]),
            parse_utc(b["last_event_time"]),
        )
        for b in bursts
    ]

    def overlaps(
        alert: Mapping[str, Any], burst: tuple[Mapping[str, Any], datetime, datetime]
    ) -> bool:
        record, first, last = burst
        return (
            alert["address"] == record["address"]
            and alert["window_start"] <= last
            and first < alert["window_end"]
        )

    big = [s for s in spans if s[0]["attempts"] >= min_attempts]
    missed = tuple(s[0] for s in big if not any(overlaps(a, s) for a in alerts))
    false = tuple(a for a in alerts if not any(overlaps(a, s) for s in spans))
    return Score(len(big), len(big) - len(missed), len(alerts), len(alerts) - len(false),
                 missed, false)  # fmt: skip
