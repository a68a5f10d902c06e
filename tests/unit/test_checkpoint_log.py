"""The clock rules and the damaged-log checks of consumer/checkpoint_log.py, on offset logs
laid out by hand the way Spark writes them (the integration tests run Spark on them)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumer.checkpoint_log import (
    Verdict,
    check_batch_clock,
    check_clock_at_start,
    judge_start,
    rows_late,
)
from consumer.database import OffsetLogEntry
from consumer.errors import EXIT_CHECKPOINT, EXIT_FAILED, JobError

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_796_000_000_000  # 2026-11-30 00:53:20 UTC


def entry(timestamp_ms: int, watermark_ms: int) -> OffsetLogEntry:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
    return OffsetLogEntry(moment, {"t": {"0": 1}}, watermark_ms)


def test_rows_are_late_at_or_before_a_watermark_and_never_without_one():
    assert rows_late(T0, T0)
    assert rows_late(T0 - 1, T0)
    assert not rows_late(T0 + 1, T0)
    assert not rows_late(0, 0)  # no watermark yet (or no deduplication)


@pytest.mark.parametrize(
    ("now", "last", "previous_wm", "committed", "verdict"),
    [
        # a fresh checkpoint: nothing to judge
        (T0, None, 0, False, Verdict()),
        # the clock moved on: fine
        (T0 + DAY + 5_000, entry(T0 + DAY, T0), 0, True, Verdict()),
        # behind the last batch, but by less than the window: still after its watermark
        (T0 + HOUR, entry(T0 + DAY, T0), 0, True, Verdict()),
        # behind the last batch's watermark: new rows would be dropped
        (T0 - 1, entry(T0 + DAY, T0), 0, True, Verdict(refuse_until_ms=T0)),
        (T0, entry(T0 + DAY, T0), 0, True, Verdict(refuse_until_ms=T0)),
        # an uncommitted batch planned behind the previous watermark, clock right again
        (T0 + DAY, entry(T0 - HOUR, T0), T0, False, Verdict(replan=True)),
        # ... and with the clock still behind: refused until it passes that watermark
        (T0 - 5, entry(T0 - HOUR, T0), T0, False, Verdict(refuse_until_ms=T0)),
        # committed batches are history: only the next one is judged
        (T0 + DAY, entry(T0 - HOUR, T0), T0, True, Verdict()),
        # an uncommitted batch planned after the previous watermark replays as it is
        (T0 + DAY, entry(T0 + HOUR, T0), T0, False, Verdict()),
    ],
)
def test_the_start_goes_on_replans_or_refuses(now, last, previous_wm, committed, verdict):
    assert judge_start(now, last, previous_wm, committed) == verdict


def write_entry(query: Path, batch_id: int, timestamp_ms: int, watermark_ms: int) -> None:
    offsets = query / "offsets"
    offsets.mkdir(parents=True, exist_ok=True)
    metadata = {"batchWatermarkMs": watermark_ms, "batchTimestampMs": timestamp_ms, "conf": {}}
    (offsets / str(batch_id)).write_text(f'v1\n{json.dumps(metadata)}\n{{"t":{{"0":{batch_id}}}}}')
    (offsets / f".{batch_id}.crc").write_bytes(b"crc")


def commit(query: Path, batch_id: int) -> None:
    (query / "commits").mkdir(parents=True, exist_ok=True)
    (query / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_a_clock_behind_the_watermark_is_refused_naming_the_clock(tmp_path):
    write_entry(tmp_path, 0, T0, 0)
    write_entry(tmp_path, 1, T0 + DAY + HOUR, T0 + HOUR)
    commit(tmp_path, 0)
    commit(tmp_path, 1)
    with pytest.raises(JobError) as refused:
        check_clock_at_start(tmp_path, "/cp", "24 hours", T0)
    assert refused.value.exit_code == EXIT_CHECKPOINT == 4
    assert str(refused.value) == (
        "this machine's clock is behind the checkpoint /cp: it is 2026-11-30 00:53:20 UTC here, "
        "but new events would be judged against the deduplication watermark 2026-11-30 "
        "01:53:20 UTC (the last batch was planned at 2026-12-01 01:53:20 UTC, --dedupe-window "
        "24 hours) and dropped as repeats. Set the clock right (NTP), then rerun the same "
        "command; nothing was counted or written."
    )
    assert check_clock_at_start(tmp_path, "/cp", "24 hours", T0 + HOUR + 1) is None


def test_a_batch_planned_with_a_clock_behind_is_planned_again_once_the_clock_is_right(tmp_path):
    write_entry(tmp_path, 0, T0, 0)
    write_entry(tmp_path, 1, T0 + DAY, T0)
    write_entry(tmp_path, 2, T0 - HOUR, T0)  # planned after a step back of a day and more
    commit(tmp_path, 0)
    commit(tmp_path, 1)
    with pytest.raises(JobError):  # still behind: nothing is removed
        check_clock_at_start(tmp_path, "/cp", "24 hours", T0 - 1)
    assert (tmp_path / "offsets" / "2").exists()
    line = check_clock_at_start(tmp_path, "/cp", "24 hours", T0 + DAY + 10)
    assert line == (
        "Batch 2 had been planned with a clock that was behind (2026-11-29 23:53:20 UTC, not "
        "after the watermark 2026-11-30 00:53:20 UTC) and never ran: removed its offset-log "
        "entry, so Spark plans it again now."
    )
    assert sorted(p.name for p in (tmp_path / "offsets").iterdir()) == [
        ".0.crc",
        ".1.crc",
        "0",
        "1",
    ]
    assert check_clock_at_start(tmp_path, "/cp", "24 hours", T0 + DAY + 10) is None


def test_a_batch_is_refused_inside_the_sink_when_planned_at_or_before_the_last_watermark(tmp_path):
    write_entry(tmp_path, 0, T0, 0)
    write_entry(tmp_path, 1, T0 + DAY, T0)
    write_entry(tmp_path, 2, T0, T0)
    check_batch_clock(tmp_path, "/cp", 0)
    check_batch_clock(tmp_path, "/cp", 1)
    with pytest.raises(JobError) as refused:
        check_batch_clock(tmp_path, "/cp", 2)
    assert refused.value.exit_code == EXIT_CHECKPOINT
    assert str(refused.value).startswith(
        "the clock of this machine stepped back: batch 2 was planned at 2026-11-30 00:53:20 "
        "UTC, not after the deduplication watermark 2026-11-30 00:53:20 UTC left by the batch "
        "before it, so its events would be dropped as repeats. Nothing of batch 2 was counted"
    )
    write_entry(tmp_path, 2, T0 + 1, T0)
    check_batch_clock(tmp_path, "/cp", 2)


def test_without_deduplication_there_is_no_watermark_and_no_clock_to_refuse(tmp_path):
    write_entry(tmp_path, 0, T0 + DAY, 0)
    write_entry(tmp_path, 1, T0, 0)
    commit(tmp_path, 0)
    check_batch_clock(tmp_path, "/cp", 1)
    assert check_clock_at_start(tmp_path, "/cp", None, T0 - DAY) is None


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda q: (q / "offsets" / "1").write_text("v1\n{garbage"), "offsets/1 cannot be read ("),
        (lambda q: (q / "offsets" / "1").unlink(), "offsets/1 is missing (its batch is committed)"),
        (lambda q: (q / "offsets" / "0").write_text("nonsense"), "offsets/0 cannot be read ("),
    ],
)
def test_a_damaged_offset_log_is_named_without_sending_the_user_to_a_new_checkpoint(
    tmp_path, damage, problem
):
    write_entry(tmp_path, 0, T0, 0)
    write_entry(tmp_path, 1, T0 + 1000, 0)
    commit(tmp_path, 0)
    commit(tmp_path, 1)
    damage(tmp_path)
    with pytest.raises(JobError) as refused:
        check_clock_at_start(tmp_path, "/cp", "24 hours", T0 + DAY)
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_FAILED == 1
    assert message.startswith(f"the checkpoint /cp is damaged: {tmp_path}/{problem}")
    assert "restore that file" in message and "new --checkpoint-dir" not in message
