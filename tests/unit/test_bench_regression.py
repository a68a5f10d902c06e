"""bench/regression.py: which ratio changes `make bench` marks as regressions."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench.regression import THRESHOLD, committed_baseline, compare


def test_a_rate_that_fell_by_more_than_the_threshold_is_a_regression():
    baseline = [{"name": "drain", "ratio": 1.20}, {"name": "producer", "ratio": 0.50}]
    changes = compare(baseline, [("drain", 1.00, True), ("producer", 0.45, True)])
    assert changes["drain"].change == pytest.approx(1.00 / 1.20 - 1)  # -16.7 %
    assert changes["drain"].regressed
    assert changes["producer"].change == pytest.approx(-0.10)
    assert not changes["producer"].regressed
    assert changes["drain"].describe() == "**-17% (ratio 1.20 before): regression**"
    assert changes["producer"].describe() == "-10% (ratio 0.50 before)"


def test_for_a_time_a_higher_ratio_is_the_regression():
    baseline = [{"name": "latency", "ratio": 2.0}, {"name": "start-up", "ratio": 1.0}]
    changes = compare(baseline, [("latency", 2.5, False), ("start-up", 0.8, False)])
    assert changes["latency"].change == pytest.approx(2.0 / 2.5 - 1)  # -20 %
    assert changes["latency"].regressed
    assert changes["start-up"].change == pytest.approx(0.25)
    assert not changes["start-up"].regressed


def test_the_threshold_itself_is_not_a_regression():
    changes = compare([{"name": "x", "ratio": 1.0}], [("x", 1.0 - THRESHOLD, True)])
    assert changes["x"].change == pytest.approx(-THRESHOLD)
    assert not changes["x"].regressed


def test_new_figures_and_figures_without_a_ratio_are_not_compared():
    baseline = [{"name": "old", "ratio": 1.0}, {"name": "no ratio", "ratio": None}]
    changes = compare(baseline, [("new", 1.0, True), ("no ratio", 1.0, True), ("old", None, True)])
    assert changes == {}


def test_the_baseline_is_the_committed_file_not_the_one_on_disk(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    page = tmp_path / "docs" / "PERFORMANCE.json"
    page.parent.mkdir()
    page.write_text(json.dumps([{"name": "drain", "ratio": 1.2}]))
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "figures")
    page.write_text(json.dumps([{"name": "drain", "ratio": 0.1}]))  # a run overwrote it
    assert committed_baseline(page, tmp_path) == [{"name": "drain", "ratio": 1.2}]
    assert committed_baseline(tmp_path / "docs" / "missing.json", tmp_path) == []
