"""`make help` lists every target of the Makefile, each with one line."""

from __future__ import annotations

import re
import subprocess

from services.settings import PROJECT_ROOT
from tests.support.compose import make_help


def test_every_phony_target_has_a_help_line():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    phony = set(re.findall(r"^\.PHONY: (\S+)$", makefile, re.M))
    help_text = make_help()
    listed = {line.split()[0] for line in help_text.splitlines() if line.startswith("  ")}
    assert phony == listed
    assert {"demo", "test", "up", "submit", "down", "report", "bench", "audit"} <= listed


def test_make_with_no_target_shows_the_help():
    default = subprocess.run(
        ["make", "--no-print-directory"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Show this help" in default
