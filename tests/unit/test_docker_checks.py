"""`make up` and friends explain a missing Docker, a missing Compose v2 or an absent engine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.settings import PROJECT_ROOT


def fake_bin(tmp_path: Path, docker_script: str | None) -> Path:
    """A PATH with the shell tools make needs and, optionally, a scripted `docker`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "sh"):
        (folder / tool).symlink_to(shutil.which(tool))
    if docker_script is not None:
        docker = folder / "docker"
        docker.write_text("#!/bin/sh\n" + docker_script)
        docker.chmod(0o755)
    return folder


@pytest.mark.parametrize(
    ("docker_script", "message"),
    [
        (None, "error: docker not found"),
        ('[ "$1" = compose ] && exit 1\nexit 0\n', "Docker Compose v2 is needed"),
        ('[ "$1" = info ] && exit 1\nexit 0\n', "the Docker engine is not reachable"),
    ],
)
def test_check_docker_explains_what_is_missing(tmp_path, docker_script, message):
    path = fake_bin(tmp_path, docker_script)
    result = subprocess.run(
        [shutil.which("make"), "--no-print-directory", "up"],
        cwd=PROJECT_ROOT,
        env={"PATH": str(path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_an_unknown_stack_is_refused_before_anything_starts(tmp_path):
    path = fake_bin(tmp_path, "exit 0\n")  # docker, Compose and the engine all answer
    result = subprocess.run(
        [shutil.which("make"), "--no-print-directory", "up", "STACK=bitnam"],
        cwd=PROJECT_ROOT,
        env={"PATH": str(path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "error: STACK must be bitnami or apache, not 'bitnam'" in result.stderr


TEST_KAFKA = "login-pipeline-test/kafka:c5d1d65927e500d8"
TEST_SPARK = "login-pipeline-test/spark:0487ca4829dda37c"


@pytest.mark.parametrize(
    ("images", "marker", "left_by_the_test"),
    [
        # what a machine restart during `make test-docker` left (containers back with the engine)
        ([TEST_SPARK, "login-pipeline/dashboard:local", TEST_KAFKA], False, True),
        ([TEST_SPARK, TEST_KAFKA], True, True),
        # a user's stack: Bitnami's images, whatever the marker says
        (["bitnamilegacy/kafka:4.0.0", "login-pipeline/producer:local"], True, False),
        ([TEST_KAFKA, "bitnamilegacy/spark:4.0.0"], True, False),
        # only the images both build: nothing says the test made them
        (["login-pipeline/producer:local"], True, False),
        # volumes only: the marker alone tells
        ([], True, True),
        ([], False, False),
    ],
)
def test_only_a_stack_the_walkthrough_test_left_is_its_to_remove(images, marker, left_by_the_test):
    from tests.support import docker_stack as stack

    assert stack.left_by_the_test(images, marker) is left_by_the_test
