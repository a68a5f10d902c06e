"""The login event's contract (``producer/login_event.schema.json``) as the code needs it."""

from __future__ import annotations

SCHEMA_VERSION = 1
"""The one version the producer writes and the job accepts (the schema's ``const``)."""

MAX_EVENT_BYTES = 16 * 1024
"""A valid event is a few hundred bytes; anything far larger is not a login event."""

REJECTION_REASONS: dict[str, str] = {
    "empty_value": "the record has no value",
    "invalid_utf8": "the value is not UTF-8 text",
    "oversized": f"the value is larger than {MAX_EVENT_BYTES // 1024} KiB",
    "not_json_object": "the value is not a JSON object",
    "wrong_type": "a field has the wrong JSON type",
    "missing_event_id": "no event_id (or an empty one)",
    "missing_user_id": "no user_id (or an empty one)",
    "missing_timestamp": "no timestamp",
    "missing_success": "no success",
    "invalid_timestamp": "the timestamp is not ISO-8601 with a zone",
    "future_timestamp": "the event time is more than --max-future ahead of the record's "
    "Kafka timestamp",
    "unsupported_schema_version": f"schema_version is not {SCHEMA_VERSION}",
}
"""Every reason the job gives a record it does not count, in the order it checks them.

The job's classification, docs/USAGE.md's list and docs/RELIABILITY.md are checked against
these names by tests; add a reason here first.
"""
