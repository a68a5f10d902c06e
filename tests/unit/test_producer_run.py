"""The producer's run loop (producer/cli.py) without a broker: which events it hands over, when
it stops, what it flushes, and the summary a user reads. The publisher here is a list that
acknowledges every record; what Kafka does with them is proven by the integration tests."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from itertools import islice

import pytest

from producer import cli
from producer.cli import RunResult, StopFlag
from producer.config import KafkaConnection, ProducerConfig
from producer.delivery import DeliveryStats
from producer.events import LoginEventGenerator

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
END_MS = START_MS + 86_400_000


class ListPublisher:
    """Keeps what it is handed, acknowledges it at once, records every flush."""

    def __init__(self) -> None:
        self.stats = DeliveryStats()
        self.records: list = []
        self.flushes: list[float] = []

    def send(self, record) -> None:
        self.records.append(record)
        self.stats.sent += 1
        self.stats.acknowledged += 1
        self.stats.bytes_acknowledged += len(record.value)

    def flush(self, timeout_s: float) -> None:
        self.flushes.append(timeout_s)

    def close(self) -> None:
        pass


class CountingProgress:
    def __init__(self) -> None:
        self.updates: list[int] = []
        self.closed: list[int] = []

    def update(self, stats: DeliveryStats) -> None:
        self.updates.append(stats.sent)

    def close(self, stats: DeliveryStats) -> None:
        self.closed.append(stats.sent)


def config(**fields) -> ProducerConfig:
    fields.setdefault("progress", "none")
    return ProducerConfig(kafka=KafkaConnection(bootstrap_servers="broker:9092"), **fields)


def generator(seed: int, **fields) -> LoginEventGenerator:
    return LoginEventGenerator(seed=seed, **fields)


# --- produce --------------------------------------------------------------------------------


def test_a_backfill_sends_exactly_the_seeded_events_then_flushes_once():
    publisher = ListPublisher()
    run = config(start_ms=START_MS, end_ms=END_MS, count=1_500, seed=7, users=40)
    result = cli.produce(run, publisher, StopFlag())
    expected = list(generator(7, users=40).backfill(START_MS, END_MS, 1_500))
    assert publisher.records == expected
    assert publisher.flushes == [cli.FLUSH_TIMEOUT_S]
    assert result.stats is publisher.stats and result.stopped_by is None
    assert result.seconds >= 0


def test_the_generator_gets_the_configured_population_and_rates():
    publisher = ListPublisher()
    run = config(
        start_ms=START_MS,
        end_ms=END_MS,
        count=600,
        seed=3,
        users=5,
        failure_rate=0.5,
        attack_probability=0.9,
    )
    cli.produce(run, publisher, StopFlag())
    expected = generator(3, users=5, failure_rate=0.5, attack_probability=0.9)
    assert publisher.records == list(expected.backfill(START_MS, END_MS, 600))


def test_a_live_run_sends_count_events_from_the_live_stream():
    publisher = ListPublisher()
    run = config(count=130, rate=1_000_000.0, seed=11, users=30)
    before = int(time.time() * 1000)
    cli.produce(run, publisher, StopFlag())
    after = int(time.time() * 1000)
    assert len(publisher.records) == 130
    expected = [json.loads(r.value)["user_id"] for r in islice(generator(11, users=30).live(), 130)]
    assert [json.loads(r.value)["user_id"] for r in publisher.records] == expected
    assert all(before <= r.event_time_ms <= after for r in publisher.records)
    assert publisher.flushes == [cli.FLUSH_TIMEOUT_S]


def test_a_backfill_with_follow_goes_on_live_for_its_duration_not_its_count():
    publisher = ListPublisher()
    run = config(
        start_ms=START_MS, end_ms=END_MS, count=10, follow=True, rate=1_000.0, duration_s=0.2
    )
    cli.produce(run, publisher, StopFlag())
    assert publisher.records[:10] == list(generator(0).backfill(START_MS, END_MS, 10))
    # 1,000/s for 0.2 s: up to 200 live events (fewer only if the machine falls behind),
    # not --count's 10: the count is the backfill's.
    assert 10 < len(publisher.records) - 10 <= 200
    assert all(r.event_time_ms > END_MS for r in publisher.records[10:])


def test_the_seed_is_logged_so_a_run_can_be_replayed(caplog):
    caplog.set_level("INFO", logger="producer")
    cli.produce(config(start_ms=START_MS, end_ms=END_MS, count=1, seed=1234), ListPublisher(),
                StopFlag())  # fmt: skip
    assert "generating with --seed 1234 (pass it again to replay the same events)" in (
        caplog.messages
    )


def test_a_stopped_run_says_which_signal_and_how_long_it_took():
    stop = StopFlag()
    stop.event.set()
    stop.signal_name = "SIGTERM"
    started = time.monotonic()
    result = cli.produce(config(count=5), ListPublisher(), stop)
    assert result.stopped_by == "SIGTERM"
    assert 0 <= result.seconds <= time.monotonic() - started


def test_a_backfill_without_follow_does_not_go_live():
    publisher = ListPublisher()
    run = config(start_ms=START_MS, end_ms=END_MS, count=10, rate=1_000_000.0, seed=1)
    cli.produce(run, publisher, StopFlag())
    assert len(publisher.records) == 10


def test_a_stopped_backfill_with_follow_does_not_go_live():
    publisher = ListPublisher()
    stop = StopFlag()
    stop.event.set()
    run = config(start_ms=START_MS, end_ms=END_MS, count=600, follow=True, rate=1_000_000.0, seed=1)
    cli.produce(run, publisher, stop)
    assert len(publisher.records) == cli.PROGRESS_EVERY
    assert publisher.flushes == [cli.FLUSH_TIMEOUT_S]


def test_the_progress_is_closed_with_the_final_stats(monkeypatch):
    progress = CountingProgress()
    made: list[tuple] = []

    def make(mode, total, interval_s):
        made.append((mode, total, interval_s))
        return progress

    monkeypatch.setattr(cli, "make_progress", make)
    cli.produce(config(start_ms=START_MS, end_ms=END_MS, count=1_100, seed=2, progress="log",
                       progress_interval_s=2.5), ListPublisher(), StopFlag())  # fmt: skip
    assert made == [("log", 1_100, 2.5)]
    assert progress.updates == [512, 1_024] and progress.closed == [1_100]


@pytest.mark.parametrize(
    ("fields", "total"),
    [
        ({"start_ms": START_MS, "end_ms": END_MS, "count": 50}, 50),
        (
            {
                "start_ms": START_MS,
                "end_ms": END_MS,
                "count": 50,
                "follow": True,
                "duration_s": 0.0,
            },
            None,
        ),
        ({"count": 20, "rate": 1_000_000.0}, 20),
        ({"count": 20, "rate": 1_000_000.0, "duration_s": 0.0}, None),
    ],
)
def test_the_progress_knows_the_total_only_when_the_run_has_one(monkeypatch, fields, total):
    totals: list = []

    def make(mode, total, interval_s):
        totals.append(total)
        return CountingProgress()

    monkeypatch.setattr(cli, "make_progress", make)
    cli.produce(config(seed=1, **fields), ListPublisher(), StopFlag())
    assert totals == [total]


# --- the two sending loops -------------------------------------------------------------------


def test_a_backfill_checks_for_a_stop_every_progress_step():
    stop = StopFlag()
    stop.event.set()
    publisher = ListPublisher()
    records = generator(5).backfill(START_MS, END_MS, 2_000)
    cli.send_as_fast_as_possible(records, publisher, stop, CountingProgress())
    assert len(publisher.records) == cli.PROGRESS_EVERY == 512


def test_a_paced_run_stops_at_its_count_and_reports_every_64_events():
    publisher, progress = ListPublisher(), CountingProgress()
    records = generator(5).live()
    cli.send_paced(records, publisher, StopFlag(), progress, 1_000_000.0, 130, None)
    assert len(publisher.records) == 130
    assert progress.updates == [64, 128]


def test_a_paced_run_keeps_its_rate():
    publisher = ListPublisher()
    started = time.monotonic()
    cli.send_paced(generator(5).live(), publisher, StopFlag(), CountingProgress(), 50.0, 6, None)
    # The sixth event is due 5/50 s after the first: the loop may be late, never early.
    assert time.monotonic() - started >= 0.1 - cli.MIN_SLEEP_S
    assert len(publisher.records) == 6


def test_a_paced_run_sends_only_the_events_due_before_its_deadline():
    publisher = ListPublisher()
    started = time.monotonic()
    cli.send_paced(generator(5).live(), publisher, StopFlag(), CountingProgress(), 20.0, None, 0.3)
    # 20/s for 0.3 s: events due at 0, 50, ..., 250 ms; the seventh (300 ms) is not.
    assert len(publisher.records) == 6
    assert time.monotonic() - started < 5


def test_a_paced_run_that_falls_behind_stops_at_its_deadline(monkeypatch):
    readings = [0.0, 0.0, 0.5, 2.0]  # start, then one reading per turn of the loop

    class Clock:
        monotonic = staticmethod(lambda: readings.pop(0) if len(readings) > 1 else readings[0])

    monkeypatch.setattr(cli, "time", Clock)
    publisher = ListPublisher()
    cli.send_paced(generator(5).live(), publisher, StopFlag(), CountingProgress(), 1.0, None, 2.0)
    # Started at 0; events due at 0 and 1 s, sent at 0 and 0.5 s; at 2 s the run is over
    # even though the third event (due at 2 s) is also at the deadline.
    assert len(publisher.records) == 2


def test_a_paced_run_sends_nothing_once_stopped_or_past_its_deadline():
    stop = StopFlag()
    stop.event.set()
    for flag, duration in ((stop, None), (StopFlag(), 0.0)):
        publisher = ListPublisher()
        cli.send_paced(generator(5).live(), publisher, flag, CountingProgress(), 1e6, 10, duration)
        assert publisher.records == []


def test_a_stop_during_a_paced_wait_ends_the_run_at_once():
    stop = StopFlag()

    class StopAfterFirst(ListPublisher):
        def send(self, record) -> None:
            super().send(record)
            stop.event.set()

    publisher = StopAfterFirst()
    started = time.monotonic()
    cli.send_paced(generator(5).live(), publisher, stop, CountingProgress(), 0.1, 5, None)
    assert len(publisher.records) == 1
    assert time.monotonic() - started < 5  # the next event was 10 s away


# --- what the user reads ----------------------------------------------------------------------


def stats(**fields) -> DeliveryStats:
    return DeliveryStats(**fields)


def test_the_summary_line_names_topic_broker_counts_and_rates():
    result = RunResult(
        stats(sent=3_000, acknowledged=3_000, bytes_acknowledged=2_500_000), 2.0, None
    )
    assert cli.summary_line(config(topic="logins"), result) == (
        "Sent 3,000 login events to topic 'logins' at broker:9092: 3,000 acknowledged, "
        "0 failed in 2.00 s (1,500 events/s, 1.2 MB/s)."
    )


def test_the_summary_line_adds_unanswered_errors_and_the_signal():
    errors = Counter({"KafkaTimeoutError": 2, "NotLeaderError": 5})
    result = RunResult(
        stats(sent=10, acknowledged=1, failed=7, bytes_acknowledged=0, errors=errors),
        0.5,
        "SIGTERM",
    )
    assert cli.summary_line(config(topic="t"), result) == (
        "Stopped by SIGTERM. Sent 10 login events to topic 't' at broker:9092: "
        "1 acknowledged, 7 failed in 0.50 s (2 events/s, 0.0 MB/s). 2 never answered. "
        "Errors: NotLeaderError x5, KafkaTimeoutError x2."
    )


@pytest.mark.parametrize(
    ("acknowledged_bytes", "seconds", "shown"),
    [(1_050_000, 1.0, "1.1 MB/s"), (1_000_000, 0.5, "2.0 MB/s"), (3_000_000, 1.5, "2.0 MB/s")],
)
def test_megabytes_are_millions_of_bytes_per_second(acknowledged_bytes, seconds, shown):
    result = RunResult(stats(sent=1, acknowledged=1, bytes_acknowledged=acknowledged_bytes),
                       seconds, None)  # fmt: skip
    assert cli.summary_line(config(topic="t"), result).endswith(f"/s, {shown}).")


def test_the_summary_line_of_an_instant_run_has_no_rate():
    result = RunResult(stats(sent=1, acknowledged=1, bytes_acknowledged=900), 0.0, None)
    assert cli.summary_line(config(topic="t"), result).endswith(
        "0 failed in 0.00 s (0 events/s, 0.0 MB/s)."
    )


def test_the_summary_json_holds_every_figure(tmp_path):
    path = tmp_path / "two" / "deep" / "summary.json"
    result = RunResult(
        stats(sent=9, acknowledged=7, failed=2, bytes_acknowledged=700,
              errors=Counter({"E": 2})),
        1.23456,
        "SIGINT",
    )  # fmt: skip
    cli.write_summary_json(config(topic="t", seed=42, summary_json=path), result)
    assert path.read_text().endswith("}\n")
    assert json.loads(path.read_text()) == {
        "topic": "t",
        "seed": 42,
        "sent": 9,
        "acknowledged": 7,
        "failed": 2,
        "bytes_acknowledged": 700,
        "seconds": 1.235,
        "errors": {"E": 2},
        "stopped_by": "SIGINT",
    }
    assert path.read_text().startswith('{\n  "topic"')


def test_a_summary_json_may_go_into_an_existing_folder(tmp_path):
    path = tmp_path / "summary.json"
    cli.write_summary_json(config(summary_json=path), RunResult(stats(), 1.0, None))
    cli.write_summary_json(config(summary_json=path), RunResult(stats(sent=2), 1.0, None))
    assert json.loads(path.read_text())["sent"] == 2


def test_no_summary_json_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.write_summary_json(config(), RunResult(stats(), 1.0, None))
    assert list(tmp_path.iterdir()) == []


# --- signals ------------------------------------------------------------------------------------


def test_a_signal_sets_the_flag_names_itself_and_restores_the_default(caplog):
    before = signal.getsignal(signal.SIGTERM)
    stop = StopFlag()
    try:
        signal.signal(signal.SIGTERM, stop._handle)
        stop._handle(signal.SIGTERM, None)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stop.event.is_set() and stop.signal_name == "SIGTERM"
    assert caplog.messages == ["SIGTERM received: stopping, flushing what was sent"]


def test_install_handles_both_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop = StopFlag()
    try:
        stop.install()
        assert all(signal.getsignal(sig) == stop._handle for sig in saved)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert not stop.event.is_set() and stop.signal_name is None


def test_the_bursts_file_gets_one_line_per_burst_sent_and_is_appended_to(tmp_path):
    truth = tmp_path / "truth" / "bursts.jsonl"
    run = config(start_ms=START_MS, end_ms=END_MS, count=5_000, seed=4, users=50,
                 attack_probability=0.003, bursts_file=truth)  # fmt: skip
    publisher = ListPublisher()
    cli.produce(run, publisher, StopFlag())
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    # Independently: the sent events from each burst's address between its first and last.
    events = [json.loads(r.value) for r in publisher.records]
    assert len(lines) >= 5
    for burst in lines:
        first, last, address = burst["first_event_time"], burst["last_event_time"], burst["address"]
        sent = [e for e in events if e["ip_address"] == address and first <= e["timestamp"] <= last]
        assert len(sent) == burst["attempts"] >= 1
        assert sum(not e["success"] for e in sent) == burst["failed"]
        assert len({e["user_id"] for e in sent}) == burst["accounts"]
    cli.produce(run, ListPublisher(), StopFlag())  # a second run appends its own
    both = truth.read_text().splitlines()
    assert both[len(lines) :] == both[: len(lines)]
