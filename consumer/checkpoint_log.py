"""The checkpoint's offset and commit logs, read before a batch runs: a damaged log is named,
and a clock that would make deduplication drop valid events is refused.

Why the clock matters: repeated event ids are dropped within ``--dedupe-window`` of
*processing* time (``consumer.transform.drop_repeated_events``), and Spark keeps a
watermark for that: the newest batch time seen, minus the window. Spark judges the rows of
batch N against the watermark batch N-1 was planned with (the one in the offset log), and
drops those at or before it as late, without an error: the per-batch line would report them
as repeats. Every row of a batch carries the batch's time (the driver's clock when Spark
planned the batch), so that happens exactly when the clock is behind: stepped back by more
than the window while the job runs, or a checkpoint resumed on a host whose clock is behind.

So, with files only, before any row is counted:

- at start (:func:`check_clock_at_start`), the next batch would be planned now; it is
  refused (exit 4, naming the clock) if now is at or before the last batch's watermark;
- inside each batch, before it reads anything (:func:`check_batch_clock`), the batch is
  refused the same way if its own time is at or before the watermark it is judged against;
- a last batch that was refused that way was planned but never ran: nothing was counted or
  written for it, and replaying it (Spark keeps its time) would drop its rows again. Once
  the clock is right, the next start removes that one uncommitted offset-log entry, says
  so, and Spark plans the batch anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from consumer.database import OffsetLogEntry, parse_offset_log
from consumer.errors import EXIT_CHECKPOINT, EXIT_FAILED, JobError


def batch_ids(log_dir: Path) -> list[int]:
    """The batch ids of an offset or commit log folder, in order."""
    if not log_dir.is_dir():
        return []
    return sorted(int(p.name) for p in log_dir.iterdir() if p.name.isdigit())


def damaged(checkpoint_dir: str, path: Path, problem: str) -> JobError:
    """The message for a checkpoint file that is missing or unreadable: not an
    incompatibility, so it does not send the user to a new checkpoint."""
    return JobError(
        f"the checkpoint {checkpoint_dir} is damaged: {path} {problem}. Keep the checkpoint "
        "(it holds what was counted so far) and restore that file from a backup or copy of "
        "the checkpoint, then rerun the same command.",
        EXIT_FAILED,
    )


def read_entry(checkpoint_dir: str, path: Path) -> OffsetLogEntry:
    try:
        return parse_offset_log(path.read_text())
    except FileNotFoundError:
        raise damaged(checkpoint_dir, path, "is missing") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise damaged(checkpoint_dir, path, f"cannot be read ({exc})") from None


def fmt(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def rows_late(batch_ms: int, watermark_ms: int) -> bool:
    """Whether Spark drops rows stamped ``batch_ms`` against ``watermark_ms`` (0: none yet)."""
    return watermark_ms > 0 and batch_ms <= watermark_ms


@dataclass(frozen=True)
class Verdict:
    """What the start does about the clock: go on, re-plan the last batch, or refuse."""

    replan: bool = False
    refuse_until_ms: int | None = None  # the watermark the clock must pass


def judge_start(
    now_ms: int, last: OffsetLogEntry | None, previous_watermark_ms: int, committed: bool
) -> Verdict:
    """The start's decision from the last offset-log entry, the watermark of the entry
    before it, and whether the last batch was committed (pure: the rules of the module)."""
    if last is None:
        return Verdict()
    if not committed and rows_late(last.timestamp_ms, previous_watermark_ms):
        if rows_late(now_ms, previous_watermark_ms):
            return Verdict(refuse_until_ms=previous_watermark_ms)
        return Verdict(replan=True)
    if rows_late(now_ms, last.watermark_ms):
        return Verdict(refuse_until_ms=last.watermark_ms)
    return Verdict()


def check_clock_at_start(
    query_dir: Path, checkpoint_dir: str, dedupe_window: str | None, now_ms: int
) -> str | None:
    """Refuse a clock that is behind the checkpoint; re-plan a batch that was planned with
    one. Returns the line to print when a batch was re-planned.

    Also refuses, as damaged, an offset log whose last entry (or the one before it) cannot
    be read, and a committed batch without its offset-log entry: Spark would report either
    with a message that does not name the file.
    """
    offsets, commits = query_dir / "offsets", query_dir / "commits"
    planned, done = batch_ids(offsets), batch_ids(commits)
    if done and (not planned or planned[-1] < done[-1]):
        raise damaged(
            checkpoint_dir, offsets / str(done[-1]), "is missing (its batch is committed)"
        )
    if not planned:
        return None
    last_id = planned[-1]
    last = read_entry(checkpoint_dir, offsets / str(last_id))
    previous = (
        read_entry(checkpoint_dir, offsets / str(last_id - 1)) if last_id - 1 in planned else None
    )
    previous_watermark = previous.watermark_ms if previous is not None else 0
    committed = bool(done) and done[-1] >= last_id
    verdict = judge_start(now_ms, last, previous_watermark, committed)
    if verdict.refuse_until_ms is not None:
        raise JobError(
            f"this machine's clock is behind the checkpoint {checkpoint_dir}: it is "
            f"{fmt(now_ms)} here, but new events would be judged against the deduplication "
            f"watermark {fmt(verdict.refuse_until_ms)} (the last batch was planned at "
            f"{fmt(last.timestamp_ms)}, --dedupe-window {dedupe_window}) and dropped as "
            "repeats. Set the clock right (NTP), then rerun the same command; nothing was "
            "counted or written.",
            EXIT_CHECKPOINT,
        )
    if verdict.replan:
        for name in (str(last_id), f".{last_id}.crc"):
            (offsets / name).unlink(missing_ok=True)
        return (
            f"Batch {last_id} had been planned with a clock that was behind "
            f"({fmt(last.timestamp_ms)}, not after the watermark {fmt(previous_watermark)}) "
            "and never ran: removed its offset-log entry, so Spark plans it again now."
        )
    return None


def check_batch_clock(query_dir: Path, checkpoint_dir: str, batch_id: int) -> None:
    """Refuse to run batch ``batch_id`` if it was planned with a clock at or before the
    watermark its rows are judged against (the previous batch's). Called in
    ``foreachBatch`` before the batch reads anything, so nothing is counted or written."""
    if batch_id == 0:
        return
    offsets = query_dir / "offsets"
    entry = read_entry(checkpoint_dir, offsets / str(batch_id))
    previous = offsets / str(batch_id - 1)
    if not previous.exists():  # purged by Spark's retention of old entries: nothing to judge
        return
    watermark = read_entry(checkpoint_dir, previous).watermark_ms
    if rows_late(entry.timestamp_ms, watermark):
        raise JobError(
            f"the clock of this machine stepped back: batch {batch_id} was planned at "
            f"{fmt(entry.timestamp_ms)}, not after the deduplication watermark "
            f"{fmt(watermark)} left by the batch before it, so its events would be dropped "
            f"as repeats. Nothing of batch {batch_id} was counted or written. Set the clock "
            "right (NTP), then rerun the same command: the batch is planned again.",
            EXIT_CHECKPOINT,
        )
