"""The cluster topology's figures in the docs: the drills' rows in docs/RELIABILITY.md (kept
when only some tests rerun), its section of docs/PERFORMANCE.md, and make bench keeping the
sections it did not write."""

from __future__ import annotations

import json

import pytest

from bench import cluster as bench_cluster
from bench.figures import Figure
from bench.report import with_kept_sections
from scripts import docker_report, reliability_report


def drill(name: str, **changes: object) -> dict:
    row = {
        "drill": name, "family": "bitnami", "injection": f"{name} injected", "sent": 1000,
        "acknowledged": 1000, "failed": 0, "on_topic": 1000, "distinct_event_ids": 1000,
        "counted": 1000, "database_total": 51000, "expected_total": 51000,
        "database_equals_topic": True, "printed_equals_topic": True, "lost": 0,
        "double_counted": 0, "counted_not_acknowledged": 0, "longest_without_a_batch_s": 12.5,
        "duration_s": 80.0, "job_running": True, "problems": [],
        "recovery": f"{name} recovered in 9 s",
    }  # fmt: skip
    return {**row, **changes}


@pytest.fixture
def pages(tmp_path, monkeypatch):
    results = tmp_path / "reliability"
    results.mkdir()
    doc = tmp_path / "RELIABILITY.md"
    monkeypatch.setattr(reliability_report, "RESULTS", results)
    monkeypatch.setattr(reliability_report, "DOC", doc)
    monkeypatch.setattr(reliability_report, "ROOT", tmp_path)
    return results, doc


def write(results, name: str, row: dict) -> None:
    (results / f"{name}.json").write_text(json.dumps(row))


def test_a_drill_row_shows_what_was_observed(pages):
    results, doc = pages
    doc.write_text("# Reliability\n\n## How the pipeline makes this true\n")
    write(results, "cluster_leader_kill", drill("leader_kill"))
    stopped = drill(
        "postgres_restart", job_stopped=True, job_running=True,
        job_error="error: the streaming query failed", database_equals_topic=False,
        problems=["WaitTimeoutError: timed out"],
    )  # fmt: skip
    write(results, "cluster_postgres_restart", stopped)
    assert reliability_report.main(["--cluster"]) == 0
    page = doc.read_text()
    title = reliability_report.DRILLS["cluster_leader_kill"]
    (leader,) = [line for line in page.splitlines() if line.startswith(f"| {title} |")]
    cells = [c.strip() for c in leader.strip("|").split("|")]
    assert cells[1:9] == ["leader_kill injected", "1,000", "1,000", "1,000", "1,000", "0", "0", "0"]
    assert cells[9] == "leader_kill recovered in 9 s" and cells[10] == "kept running"
    assert "equal (51,000 logins in all)" in cells[11]
    (pg,) = [line for line in page.splitlines() if line.startswith("| PostgreSQL stopped")]
    assert "stopped: `error: the streaming query failed`; rerun of the same command exact" in pg
    assert "**differ**" in pg and "**WaitTimeoutError: timed out**" in pg
    # The section sits before the page's closing part.
    assert page.index(reliability_report.CLUSTER_END) < page.index("## How the pipeline")


def test_drills_not_rerun_keep_their_rows_and_a_full_regeneration_keeps_the_section(pages):
    results, doc = pages
    doc.write_text("# Reliability\n\n## How the pipeline makes this true\n")
    for name in reliability_report.DRILLS:
        write(results, name, drill(name.removeprefix("cluster_")))
    assert reliability_report.main(["--cluster"]) == 0
    first = doc.read_text()
    # Only one drill rerun (its file new), the others' files gone, as on a fresh clone.
    for name in reliability_report.DRILLS:
        (results / f"{name}.json").unlink()
    write(results, "cluster_worker_kill", drill("worker_kill", sent=2000, acknowledged=2000))
    assert reliability_report.main(["--cluster"]) == 0
    second = doc.read_text()
    worker = reliability_report.DRILLS["cluster_worker_kill"]
    for name, title in reliability_report.DRILLS.items():
        old = [ln for ln in first.splitlines() if ln.startswith(f"| {title} |")]
        new = [ln for ln in second.splitlines() if ln.startswith(f"| {title} |")]
        assert len(new) == 1, name
        assert (new != old) == (title == worker), name
    # `make reliability` (the other tests' rows) keeps the drills' section as it is.
    for name in reliability_report.ORDER:
        write(results, name, {"fault": name, "injection": "i", "times": 1, "events": 10,
                              "lost": 0, "double_counted": 0, "note": "n"})  # fmt: skip
    (results / "cluster_worker_kill.json").unlink()
    assert reliability_report.main([]) == 0
    third = doc.read_text()
    section = second.split(reliability_report.CLUSTER_START)[1].split(
        reliability_report.CLUSTER_END
    )[0]
    assert section in third
    assert "| scram | i | 1 | 10 | 0 | 0 | n |" in third


def test_the_cluster_section_of_performance_md_judges_memory_against_6_gb():
    figures = {
        "family": "bitnami", "phases_s": {"make up": 118.4, "make clean": 24.3},
        "peak_memory_bytes": 4.01e9, "memory_samples": 546,
        "peak_memory_by_container": {"login-pipeline-kafka-1": 439e6},
        "drills": {"leader_kill": {"duration_s": 187.5}, "worker_kill": {"duration_s": 169.1}},
        "total_s": 1218.4,
    }  # fmt: skip
    section = docker_report.render_cluster(figures)
    assert "| 4.01 GB | <= 6 GB | yes |" in section
    assert "| The four drills | 357 s |" in section
    assert "| The whole test module (what CI spends) | 20.3 min |" in section
    too_much = docker_report.render_cluster({**figures, "peak_memory_bytes": 6.2e9})
    assert "| 6.20 GB | <= 6 GB | **no** |" in too_much
    assert section.startswith(docker_report.CLUSTER_START)


def test_make_bench_keeps_the_cluster_sections(tmp_path):
    page = tmp_path / "PERFORMANCE.md"
    stack = f"{docker_report.CLUSTER_START}\ndrills\n{docker_report.CLUSTER_END}"
    bench = f"{bench_cluster.START}\nratios\n{bench_cluster.END}"
    page.write_text(f"# old run\n\n{stack}\n\n{bench}\n")
    assert with_kept_sections("# new run\n", page) == f"# new run\n\n{stack}\n\n{bench}\n"


def test_the_scaling_section_gives_each_ratio_and_the_memory_target():
    figures = [
        Figure("Producer (kafka-python), replication factor 3 vs 1", 8738.0, "events/s",
               "RF 1", 13086.0, "(context)", None, detail="runs", command="python -m producer"),
        Figure("Deduplication state in the checkpoint, per event", 38.0, "bytes", "(context)",
               None, "(context)", None, detail="one batch", command="du -sb"),
    ]  # fmt: skip
    section = bench_cluster.render(
        figures, (4.2e9, {"login-pipeline-kafka-1": 4e8}), bench_cluster.FULL, False, "bitnami"
    )
    assert "| 8,738 events/s | RF 1 | 13,086 | 0.67 | runs |" in section
    assert "| 38 bytes | (context) |  |  | one batch |" in section
    assert "| 4.20 GB | target <= 6 GB | 6.00 | 0.70 | met: yes;" in section
    assert section.startswith(bench_cluster.START) and section.endswith(bench_cluster.END)
