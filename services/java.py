"""Finding a Java runtime new enough for Kafka 4 and Spark 4, with an error that says what to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

MINIMUM_JAVA = 17  # Kafka 4.0 brokers and Spark 4.0 both require Java 17+.
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


class JavaError(RuntimeError):
    """No usable Java; the message explains how to get one."""


def find_java() -> Path:
    """``$JAVA_HOME/bin/java`` if JAVA_HOME is set, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return candidate
        raise JavaError(
            f"JAVA_HOME is {java_home}, but {candidate} does not exist. "
            f"Point JAVA_HOME at a JDK {MINIMUM_JAVA}+ or unset it."
        )
    found = shutil.which("java")
    if not found:
        raise JavaError(
            f"Java was not found. Kafka and Spark need Java {MINIMUM_JAVA} or newer: install "
            f"a JDK (e.g. `apt install openjdk-{MINIMUM_JAVA}-jdk-headless` or "
            f"`brew install openjdk@{MINIMUM_JAVA}`) and put it on PATH or in JAVA_HOME."
        )
    return Path(found)


def java_major_version(java: Path) -> int:
    """The feature release of ``java`` (8 for 1.8, 17 for 17.0.15)."""
    try:
        output = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise JavaError(f"could not run {java}: {exc}") from None
    match = _VERSION.search(output)
    if not match:
        raise JavaError(f"could not read the version of {java}: {output.strip()[:200]!r}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def require_java(minimum: int = MINIMUM_JAVA) -> Path:
    """A Java path of at least ``minimum``, or :class:`JavaError` saying what to install."""
    java = find_java()
    major = java_major_version(java)
    if major < minimum:
        raise JavaError(
            f"{java} is Java {major}, but Kafka 4 and Spark 4 need Java {minimum} or newer. "
            f"Install a JDK {minimum}+ and set JAVA_HOME to it."
        )
    return java
