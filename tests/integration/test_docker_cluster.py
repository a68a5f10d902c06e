"""Outgrow one node: the cluster topology on a real Docker engine, and four failure drills.

`make up TOPOLOGY=cluster` starts three Kafka nodes (replication factor 3,
min.insync.replicas=2, unclean leader election off) and two Spark workers. One
`make submit ARGS="--trigger 2s"` runs through all the drills, as a user leaves it running;
before each drill a producer on this machine starts sending live (200 events/s, acks=all,
idempotent, through the three nodes' published ports), and stops, reporting what Kafka
acknowledged, once the pipeline has recovered:

1. kill -9 of the leader of a partition, then its restart;
2. a rolling restart of the three Kafka nodes, one at a time, each back in every
   partition's ISR before the next;
3. kill -9 of a Spark worker (its executor with it), then its restart;
4. PostgreSQL stopped for 10 s, then started again.

Each drill then waits until the job has counted everything on the topic, reads the new
records back with a plain consumer (the truth), and checks: every acknowledged event
counted once, nothing counted that was not acknowledged (the topic holds exactly the
acknowledged events, no event id twice), the job's table in PostgreSQL and its printed
table equal to the counts computed from the topic, and the job still running (or, where it
stopped, one rerun of the same command counting exactly). It records its row for
docs/RELIABILITY.md before asserting, whatever the outcome; output/cluster/cluster.json
gets the bring-up, the drills' times and the memory of all containers.

One cluster serves the whole module (bring-up is the slow part). The images are the local
stand-ins of tests/images/ for the Bitnami family (CLUSTER_STACK=apache runs the official
images' family instead, by hand: CI runs one). Skipped with the reason where no engine runs
(a failure under CI=true); a run that fails cleans up with `make clean` in a finally.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from bench.probes import ContainerMemorySampler
from services.settings import PROJECT_ROOT
from tests.support.docker_cluster import (
    KAFKA_NODES,
    WORKERS,
    LiveProducer,
    RunningJob,
    TopicTruth,
    active_executor_hosts,
    batches,
    cluster_view,
    container_ip,
    counted_total,
    covers,
    describe,
    docker,
    end_offsets,
    executors,
    first_batch,
    isr_full,
    longest_gap,
    node_port,
    wait_until,
    worker_ips,
)
from tests.support.docker_stack import (
    Stack,
    database_monthly,
    movable_ports,
    project_leftovers,
    refuse_a_users_stack,
    set_marker,
    stand_in_images,
)
from tests.support.reliability import record_reliability
from tests.support.truth import expected_monthly

# One bring-up for the module: its first test also waits for it, its last for the clean-up.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.timeout(1800),
]

FAMILY = os.environ.get("CLUSTER_STACK", "bitnami")
RESULTS = PROJECT_ROOT / "output" / "cluster"
BACKFILL = 50_000  # what the compose file's producer sends before its live events
RATE = 200  # events/s from each drill's producer
AFTER_FAULT_EVENTS = 3 * RATE  # sent after the pipeline recovered, before the producer stops
DATABASE_OUTAGE_S = 10
# A drill's bounds are the deadlines of its waits (a node back in every ISR within 180 s of
# its restart, the job counting past the fault within 180-240 s, ...), each failing with
# what it waited for. The drill's whole duration is recorded, not asserted: beyond those
# waits it measures the machine (docs/TESTING.md).


@dataclass
class Cluster:
    stack: Stack
    job: RunningJob
    truth: TopicTruth
    measured: dict = field(default_factory=dict)


@contextlib.contextmanager
def phase(measured: dict, name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        measured.setdefault("phases_s", {})[name] = round(time.monotonic() - started, 1)


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    return stand_in_images()


@pytest.fixture(scope="module")
def cluster(images: dict[str, str]) -> Iterator[Cluster]:
    """`make up TOPOLOGY=cluster`, the compose producer's backfill, and the job running on it
    (counted up to the backfill); `make clean` afterwards, whatever happened."""
    refuse_a_users_stack()
    moved = movable_ports()
    module_started = time.monotonic()
    measured: dict = {"family": FAMILY, "moved_ports": moved, "drills": {}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "job.log").unlink(missing_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in moved.items():
            print(f"{variable}={value}: the default port is taken on this machine")
            patch.setenv(variable, value)
        set_marker(True)
        stack = Stack(images, FAMILY, "cluster", moved)
        job = RunningJob(stack, RESULTS / "job.log")
        memory = ContainerMemorySampler()
        clean = None
        try:
            with memory:
                with phase(measured, "make up"):
                    up = stack.make("up", timeout=900, record="make up")
                    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
                assert "cluster: 3 Kafka nodes and 2 Spark workers" in up.stdout
                truth = TopicTruth()
                with phase(measured, "backfill on the topic"):
                    measured["backfill_acknowledged"] = backfill(stack, truth)
                with phase(measured, "job started, backfill counted"):
                    job.start()
                    ends = dict(truth.positions)
                    wait_until(
                        lambda: first_batch(lambda b: covers(b, ends)),
                        600,
                        "the job to count the backfill (its first batch in PostgreSQL)",
                        abort=job.exited,
                    )
                yield Cluster(stack, job, truth, measured)
                with phase(measured, "job stopped"):
                    measured["job_exit"] = job.stop()  # make's, which the SIGINT ends too
                    measured["job_stop_line"] = "Stopped after batch" in job.output()
        finally:
            job.stop()
            peak, per_container = memory.peak
            measured["peak_memory_bytes"] = peak
            measured["peak_memory_by_container"] = per_container
            measured["memory_samples"] = len(memory.samples)
            with phase(measured, "make clean"):
                clean = stack.make("clean", record="make clean")
            measured["total_s"] = round(time.monotonic() - module_started, 1)
            (RESULTS / "cluster.json").write_text(json.dumps(measured, indent=2) + "\n")
            for name, text in stack.transcripts.items():
                (RESULTS / f"{name.replace(' ', '-')}.txt").write_text(text)
            if clean.returncode == 0 and not project_leftovers():
                set_marker(False)
    assert clean.returncode == 0, clean.stderr
    assert project_leftovers() == []


def backfill(stack: Stack, truth: TopicTruth) -> int:
    """Wait for the compose producer's backfill and a few live events, stop it, read them
    back; what it acknowledged (its summary line) must be exactly what is on the topic."""
    target = BACKFILL + 40
    wait_until(lambda: sum(end_offsets().values()) >= target, 600, f"{target:,} records")
    stopped = stack.compose("stop", "producer")
    assert stopped.returncode == 0, stopped.stderr
    log = stack.logs("producer")
    match = re.search(r"Sent [\d,]+ login events .*?: ([\d,]+) acknowledged, ([\d,]+) failed", log)
    assert match, log[-2000:]
    acknowledged, failed = (int(g.replace(",", "")) for g in match.groups())
    ends = end_offsets()
    truth.read_up_to(ends)
    assert failed == 0 and acknowledged == sum(ends.values()) == len(truth.event_ids)
    return acknowledged


# -- the topology --------------------------------------------------------------------------


def test_three_kafka_nodes_replicate_the_topic_and_executors_run_on_both_workers(cluster):
    stack = cluster.stack
    rows = [
        json.loads(line) for line in stack.compose("ps", "--format", "json").stdout.splitlines()
    ]
    health = {row["Name"]: row["Health"] for row in rows if row["State"] == "running"}
    expected = {stack.container(s) for s in KAFKA_NODES.values()} | {
        stack.container(WORKERS[0], r) for r in range(1, WORKERS[1] + 1)
    }
    assert {name: health.get(name) for name in expected} == dict.fromkeys(expected, "healthy")

    view = cluster_view()
    brokers = {b["broker_id"]: (b["host"], b["port"]) for b in view["cluster"]["brokers"]}
    # Each node advertises its own port on this machine.
    assert brokers == {node: ("localhost", node_port(node)) for node in KAFKA_NODES}
    assert view["topic_settings"]["min.insync.replicas"] == "2"
    assert view["topic_settings"]["unclean.leader.election.enable"] == "false"
    partitions = describe()
    assert len(partitions) == 3
    for partition in partitions.values():
        assert sorted(partition.replicas) == sorted(KAFKA_NODES)
        assert sorted(partition.isr) == sorted(KAFKA_NODES)
    # Leaders spread over the nodes.
    assert len({p.leader for p in partitions.values()}) == 3

    # The job's executors, from its Spark REST API: one on each worker.
    ips = worker_ips(stack)
    hosts = wait_until(
        lambda: (h := active_executor_hosts()) and set(h.values()) == set(ips.values()) and h,
        180,
        f"an active executor on each worker ({ips})",
    )
    cluster.measured["executors"] = hosts
    assert len(hosts) == WORKERS[1]


# -- the drills ----------------------------------------------------------------------------


def run_drill(
    cluster: Cluster,
    name: str,
    seed: int,
    injection: str,
    fault: Callable[[Cluster, dict], None],
    after: Callable[[Cluster, dict], None] | None = None,
) -> dict:
    """One drill with a live producer; records its row, then asserts exactness.

    ``fault`` injects the fault and waits for the recovery it promises, filling
    ``observed`` (times from the injection). ``after`` runs once the job has counted
    everything: what can go on meanwhile (a node or worker coming back) is awaited there,
    so it overlaps with the rest of the drill. Either sets ``observed["recovery"]``.
    """
    observed: dict = {}
    problems: list[str] = []
    summary: dict = {}
    started, window_start = time.monotonic(), time.time()
    # The baseline: a whole cluster, and everything before this drill counted and read
    # back (an earlier drill that failed may have left some of its events uncounted).
    wait_until(isr_full, 180, "every partition's ISR full before the drill")
    before = end_offsets()
    wait_until(
        lambda: first_batch(lambda b: covers(b, before)),
        300,
        "the job to count what was on the topic before the drill",
        abort=cluster.job.exited,
    )
    cluster.truth.read_up_to(before)
    counted_before = counted_total()
    ids_before = len(cluster.truth.event_ids)
    producer = LiveProducer(RESULTS, name, RATE, seed)
    ends = before
    try:
        producer.start()
        # Live before the fault: the job has counted some of this producer's events.
        wait_until(
            lambda: first_batch(lambda b: covers(b, before, strictly=True)),
            180,
            "the job to count the drill's first live events",
            abort=cluster.job.exited,
        )
        fault(cluster, observed)
        # Live after the recovery, then the producer stops and reports.
        mark = sum(end_offsets().values())
        wait_until(
            lambda: sum(end_offsets().values()) >= mark + AFTER_FAULT_EVENTS,
            120,
            f"{AFTER_FAULT_EVENTS} more events after the recovery",
        )
    except Exception as exc:  # recorded in the row, then asserted
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        try:
            summary = producer.stop()
        except Exception as exc:  # recorded in the row, then asserted
            problems.append(f"{type(exc).__name__}: {exc}")
    try:
        ends = end_offsets()
        caught_up = time.monotonic()
        wait_until(
            lambda: first_batch(lambda b: covers(b, ends)),
            300,
            "the job to count every record on the topic",
            abort=cluster.job.exited,
        )
        observed["caught_up_s"] = round(time.monotonic() - caught_up, 1)
        if after is not None:
            after(cluster, observed)
        cluster.truth.read_up_to(ends)
    except Exception as exc:  # recorded in the row, then asserted
        problems.append(f"{type(exc).__name__}: {exc}")
    duration = time.monotonic() - started

    expected = expected_monthly(cluster.truth.events)
    in_database = database_monthly()
    try:
        printed = cluster.job.last_table()
    except Exception as exc:  # recorded in the row, then asserted
        printed, problems = {}, [*problems, f"{type(exc).__name__}: {exc}"]
    on_topic = sum(ends.values()) - sum(before.values())
    new_ids = len(cluster.truth.event_ids) - ids_before
    counted = counted_total() - counted_before
    acknowledged = summary.get("acknowledged", 0)
    row = {
        "drill": name,
        "family": FAMILY,
        "injection": injection,
        "sent": summary.get("sent", 0),
        "acknowledged": acknowledged,
        "failed": summary.get("failed", 0),
        "on_topic": on_topic,
        "distinct_event_ids": new_ids,
        "counted": counted,
        "database_total": sum(c[0] for c in in_database.values()),
        "expected_total": sum(c[0] for c in expected.values()),
        "database_equals_topic": in_database == expected,
        "printed_equals_topic": printed == expected,
        "lost": max(0, acknowledged - counted),
        "double_counted": max(0, counted - new_ids),
        "counted_not_acknowledged": max(0, counted - acknowledged),
        "longest_without_a_batch_s": round(longest_gap(batches(), window_start, time.time()), 1),
        "duration_s": round(duration, 1),
        "job_running": cluster.job.running(),
        "problems": problems,
        **observed,
    }
    record_reliability(f"cluster_{name}", **row)
    cluster.measured["drills"][name] = row
    assert not problems, problems
    assert summary["failed"] == 0 and summary["sent"] == acknowledged, summary
    # The topic holds exactly what Kafka acknowledged, each event once ...
    assert on_topic == acknowledged == new_ids
    # ... and the job counted exactly that: in PostgreSQL and in its printed table.
    assert counted == acknowledged
    assert in_database == expected
    assert printed == expected
    assert cluster.job.running()
    return row


def since(moment: float) -> float:
    return round(time.monotonic() - moment, 1)


def test_partition_leader_killed_and_restarted(cluster):
    def fault(cluster: Cluster, observed: dict) -> None:
        leader = describe()[0].leader
        observed["killed_node"] = leader
        observed["killed_node_was_controller"] = (
            cluster_view(leader)["cluster"]["controller_id"] == leader
        )
        container = cluster.stack.container(KAFKA_NODES[leader])
        others = [node for node in KAFKA_NODES if node != leader]
        killed = time.monotonic()
        docker("kill", "--signal", "KILL", container)
        elected = wait_until(
            lambda: (p := describe(others)[0]).leader not in (-1, leader) and p,
            90,
            f"a new leader of partition 0 (node {leader} killed)",
        )
        observed["leader_elected_s"] = since(killed)
        observed["isr_while_down"] = sorted(elected.isr)
        # Records past this point were written through the new leader.
        at_election = end_offsets(others)[0]
        wait_until(
            lambda: first_batch(lambda b: b.ends.get(0, 0) > at_election),
            180,
            "the job to count records written to partition 0 through its new leader",
            abort=cluster.job.exited,
        )
        observed["counted_after_kill_s"] = since(killed)
        restarts["at"] = time.monotonic()
        docker("start", container)  # it catches up while the producer goes on

    def after(cluster: Cluster, observed: dict) -> None:
        leader = observed["killed_node"]
        wait_until(isr_full, 180, f"node {leader} back in every partition's ISR")
        observed["isr_full_after_restart_s"] = since(restarts["at"])
        observed["recovery"] = (
            f"new leader in {observed['leader_elected_s']} s; records written through it "
            f"counted {observed['counted_after_kill_s']} s after the kill; node {leader} back "
            f"in every ISR {observed['isr_full_after_restart_s']} s after its restart"
        )

    restarts: dict[str, float] = {}
    row = run_drill(
        cluster,
        "leader_kill",
        2201,
        "docker kill --signal KILL of the node leading partition 0, while the producer sends "
        f"{RATE} events/s and the job runs; restarted once a new leader was elected and the "
        "job had counted through it",
        fault,
        after,
    )
    assert row["isr_while_down"] == sorted(set(KAFKA_NODES) - {row["killed_node"]})


def test_rolling_restart_of_the_three_kafka_nodes(cluster):
    def fault(cluster: Cluster, observed: dict) -> None:
        started = time.monotonic()
        nodes = []
        for node, service in KAFKA_NODES.items():
            restarting = time.monotonic()
            # SIGTERM first: a controlled shutdown moves the node's leaderships away.
            docker("restart", "--time", "60", cluster.stack.container(service), timeout=180)
            restarted_s = since(restarting)
            wait_until(isr_full, 180, f"node {node} back in every partition's ISR")
            nodes.append({"node": node, "restart_s": restarted_s, "isr_full_s": since(restarting)})
        observed["nodes"] = nodes
        observed["rolling_restart_s"] = since(started)
        ends = end_offsets()
        last = time.monotonic()
        wait_until(
            lambda: first_batch(lambda b: covers(b, ends, strictly=True)),
            180,
            "the job to count records written after the last node's restart",
            abort=cluster.job.exited,
        )
        observed["counted_after_last_restart_s"] = since(last)
        each = ", ".join(f"node {n['node']} {n['isr_full_s']} s" for n in nodes)
        observed["recovery"] = (
            f"each node restarted and back in every ISR ({each}); whole restart "
            f"{observed['rolling_restart_s']} s; records written after it counted in "
            f"{observed['counted_after_last_restart_s']} s"
        )

    run_drill(
        cluster,
        "rolling_restart",
        2202,
        "docker restart (SIGTERM, controlled shutdown) of kafka, kafka-2, kafka-3 in turn, "
        "each back in every partition's ISR before the next, while the producer sends "
        f"{RATE} events/s and the job runs",
        fault,
    )


def test_spark_worker_killed_and_its_tasks_moved(cluster):
    service, victim = WORKERS[0], WORKERS[1]

    def fault(cluster: Cluster, observed: dict) -> None:
        stack = cluster.stack
        ips = worker_ips(stack)
        hosts = wait_until(
            lambda: (h := active_executor_hosts()) and set(h.values()) == set(ips.values()) and h,
            120,
            f"an active executor on each worker ({ips})",
        )
        lost_ids = {i for i, host in hosts.items() if host == ips[victim]}
        survivors = {i for i, host in hosts.items() if host != ips[victim]}
        tasks_before = wait_until(
            lambda: {e["id"]: e["totalTasks"] for e in executors()}, 60, "the executors' tasks"
        )
        killed, killed_at = time.monotonic(), time.time()
        docker("kill", "--signal", "KILL", stack.container(service, victim))
        at_kill = end_offsets()
        # Read once the worker is dead: a task may finish between the read above and the kill.
        completed_at_kill = {
            e["id"]: e["completedTasks"] for e in executors() if e["id"] in lost_ids
        }
        wait_until(
            lambda: not any(e["isActive"] for e in executors() if e["id"] in lost_ids),
            180,
            f"the driver to see executor(s) {sorted(lost_ids)} lost",
        )
        observed["executor_lost_s"] = since(killed)
        wait_until(
            lambda: first_batch(lambda b: b.written_at > killed_at and covers(b, at_kill, True)),
            240,
            "the job to count records written after the kill",
            abort=cluster.job.exited,
        )
        observed["counted_after_kill_s"] = since(killed)
        after = wait_until(lambda: {e["id"]: e for e in executors()}, 60, "the executors' tasks")
        observed["tasks_on_survivor_after_kill"] = sum(
            after[i]["totalTasks"] - tasks_before[i] for i in survivors
        )
        # Tasks running on the worker when it was killed end as failed (and run again on the
        # other one); none completes there after the kill.
        observed["tasks_failed_on_lost"] = sum(after[i]["failedTasks"] for i in lost_ids)
        observed["tasks_completed_on_lost_after_kill"] = sum(
            after[i]["completedTasks"] - completed_at_kill[i] for i in lost_ids
        )
        observed["removed_because"] = sorted({after[i].get("removeReason", "") for i in lost_ids})
        restarts["at"] = time.monotonic()
        docker("start", stack.container(service, victim))  # registers while the job goes on

    def after(cluster: Cluster, observed: dict) -> None:
        address = container_ip(cluster.stack, service, victim)
        wait_until(
            lambda: address in active_executor_hosts().values(),
            240,
            f"an executor on the restarted worker ({address})",
        )
        observed["executor_back_s"] = since(restarts["at"])
        observed["recovery"] = (
            f"executor lost in {observed['executor_lost_s']} s; records written after the "
            f"kill counted {observed['counted_after_kill_s']} s after it, "
            f"{observed['tasks_on_survivor_after_kill']} tasks on the other worker; a new "
            f"executor on the restarted worker {observed['executor_back_s']} s after its start"
        )

    restarts: dict[str, float] = {}
    row = run_drill(
        cluster,
        "worker_kill",
        2203,
        f"docker kill --signal KILL of {service}-{victim} (its executor with it), while the "
        f"producer sends {RATE} events/s and the job runs; restarted once the job had "
        "counted without it",
        fault,
        after,
    )
    assert row["tasks_on_survivor_after_kill"] > 0
    assert row["tasks_completed_on_lost_after_kill"] == 0


def test_postgres_restarted(cluster):
    def fault(cluster: Cluster, observed: dict) -> None:
        stack, job = cluster.stack, cluster.job
        container = stack.container("postgres")
        stopping = time.monotonic()
        docker("stop", "--time", "10", container)
        # The fault itself: the database stays down this long (a bound, not a readiness wait).
        time.sleep(max(0.0, DATABASE_OUTAGE_S - (time.monotonic() - stopping)))
        docker("start", container)
        restarted, restarted_at = time.monotonic(), time.time()
        wait_until(
            lambda: stack.inspect("postgres")["State"]["Health"]["Status"] == "healthy",
            120,
            "PostgreSQL healthy again",
        )
        observed["database_back_s"] = since(restarted)
        at_restart = end_offsets()

        def outcome() -> str | None:
            if not job.running():
                return "stopped"
            written = first_batch(
                lambda b: b.written_at > restarted_at and covers(b, at_restart, True)
            )
            return "written" if written else None

        result = wait_until(outcome, 240, "the job's next batch in PostgreSQL, or its exit")
        observed["job_stopped"] = result == "stopped"
        if result == "written":
            observed["counted_after_restart_s"] = since(restarted)
            observed["recovery"] = (
                f"database down {DATABASE_OUTAGE_S} s; the job kept running and wrote its "
                f"next batch {observed['counted_after_restart_s']} s after the restart"
            )
            return
        output = job.output()
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        status = re.findall(r"\[Makefile:\d+: submit\] Error (\d+)", output)
        observed["job_exit"] = int(status[-1]) if status else None  # the job's, through make
        # The first line of its message, without the query's ids (new in every run).
        error = re.sub(r"Query \[id = [^\]]*\]", "Query [...]", errors[-1] if errors else "")
        observed["job_error"] = error[:200] + ("..." if len(error) > 200 else "")
        observed["job_traceback"] = "Traceback" in output
        rerun = time.monotonic()
        job.start()  # the same command again: it resumes from the checkpoint
        wait_until(
            lambda: first_batch(lambda b: b.written_at > restarted_at and covers(b, at_restart)),
            300,
            f"the rerun of {job.command} to count what the stopped job had not",
            abort=job.exited,
        )
        observed["rerun_caught_up_s"] = since(rerun)
        observed["recovery"] = (
            f"database down {DATABASE_OUTAGE_S} s; the job stopped (exit "
            f"{observed['job_exit']}{', with a traceback' if observed['job_traceback'] else ''}); "
            f"the rerun of the same command counted up to the topic in "
            f"{observed['rerun_caught_up_s']} s"
        )

    row = run_drill(
        cluster,
        "postgres_restart",
        2204,
        f"docker stop of postgres, started again {DATABASE_OUTAGE_S} s later, while the "
        f"producer sends {RATE} events/s and the job runs",
        fault,
    )
    # The job retries a batch's database write for up to --db-retry-timeout (60 s): a 10 s
    # outage must not stop it (the rerun path above only records what happened if it did).
    assert not row["job_stopped"], f"the job stopped on the database outage: {row['job_error']}"
