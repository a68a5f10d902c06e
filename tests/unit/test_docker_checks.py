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
