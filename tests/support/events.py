"""Hand-made login events for integration tests, shaped as the producer writes them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone


def login(event_id: str, moment: datetime, user_id: str, success: bool = True) -> dict:
    """A valid event with the required fields only; ``moment`` written in UTC with
    milliseconds and a ``Z``, as the producer writes it."""
    stamp = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return {
        "event_id": event_id,
        "user_id": user_id,
        "timestamp": stamp.replace("+00:00", "Z"),
        "success": success,
    }


def encoded(events: Iterable[dict]) -> list[bytes]:
    """Kafka record values: each event as JSON."""
    return [json.dumps(event).encode() for event in events]
