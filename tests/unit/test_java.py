"""A missing or too old Java gets an error that says what to install."""

from __future__ import annotations

import pytest

from services.java import JavaError, java_major_version, require_java


def fake_jdk(tmp_path, version_line: str):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_402"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2" 2019-01-15', 11),
    ],
)
def test_reads_the_major_version(tmp_path, line, major):
    assert java_major_version(fake_jdk(tmp_path, line) / "bin" / "java") == major


def test_too_old_java_is_refused_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_jdk(tmp_path, 'openjdk version "11.0.2"')))
    with pytest.raises(JavaError, match=r"is Java 11, but Kafka 4 and Spark 4 need Java 17"):
        require_java()


def test_java_home_pointing_nowhere_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "missing"))
    with pytest.raises(JavaError, match="does not exist"):
        require_java()


def test_no_java_on_path(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaError, match=r"Java was not found.*install"):
        require_java()


def test_the_java_here_is_accepted():
    assert require_java().name == "java"
