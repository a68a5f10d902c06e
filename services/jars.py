"""Maven Central jars for the local broker and Kafka's tools, resolved by Apache Ivy.

The pyspark wheel already ships Ivy (``pyspark/jars/ivy-*.jar``), the same resolver
``spark-submit --packages`` uses, so no Maven installation and no hand-written resolver
are needed. Ivy's cache is shared with spark-submit (``spark.jars.ivy``), so the Kafka
client jars are downloaded once for both.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from services.java import require_java
from services.settings import CACHE_DIR, load_settings

IVY_HOME = CACHE_DIR / "ivy"  # spark.jars.ivy; Ivy's artifact cache is IVY_HOME/cache
CLASSPATH_DIR = CACHE_DIR / "classpaths"

Module = tuple[str, str, str]  # (organisation, name, revision)
# Kafka's jars log through SLF4J 1.7 but bring no backend; slf4j-simple writes to the log file.
SLF4J_SIMPLE: Module = ("org.slf4j", "slf4j-simple", "1.7.36")


class ResolutionError(RuntimeError):
    """Ivy could not fetch the jars; the message carries Ivy's own explanation."""


def ivy_jar() -> Path:
    """The Ivy jar inside the installed pyspark."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"))
    if not jars:
        raise ResolutionError("pyspark's Ivy jar was not found; reinstall with `make venv`")
    return jars[-1]


def _ivy_module_xml(modules: Sequence[Module]) -> str:
    dependencies = "\n".join(
        f"    <dependency org={quoteattr(org)} name={quoteattr(name)} rev={quoteattr(rev)}"
        ' conf="default->default"/>'
        for org, name, rev in modules
    )
    return (
        '<ivy-module version="2.0">\n'
        '  <info organisation="login-pipeline" module="local-tools"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        f"  <dependencies>\n{dependencies}\n  </dependencies>\n"
        "</ivy-module>\n"
    )


def kafka_modules(kafka_version: str, scala_version: str) -> list[Module]:
    """The broker (``kafka_<scala>``), Kafka's command-line tools, and a logging backend."""
    return [
        ("org.apache.kafka", f"kafka_{scala_version}", kafka_version),
        ("org.apache.kafka", "kafka-tools", kafka_version),
        SLF4J_SIMPLE,
    ]


def resolve_classpath(modules: Sequence[Module]) -> list[Path]:
    """Jars of ``modules`` and their runtime dependencies, downloading them once.

    The resolved classpath is remembered per module list; a later call only checks that
    the jars are still in the cache.
    """
    key = hashlib.sha256(repr(sorted(modules)).encode()).hexdigest()[:16]
    classpath_file = CLASSPATH_DIR / f"{key}.classpath"
    if classpath_file.exists():
        jars = [Path(p) for p in classpath_file.read_text().strip().split(":") if p]
        if jars and all(jar.exists() for jar in jars):
            return jars
    CLASSPATH_DIR.mkdir(parents=True, exist_ok=True)
    ivy_file = CLASSPATH_DIR / f"{key}.ivy.xml"
    ivy_file.write_text(_ivy_module_xml(modules))
    command = [
        str(require_java()),
        "-jar",
        str(ivy_jar()),
        "-ivy",
        str(ivy_file),
        "-confs",
        "default",
        "-cache",
        str(IVY_HOME / "cache"),
        "-cachepath",
        str(classpath_file),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not classpath_file.exists():
        problems = [line for line in result.stdout.splitlines() if "::" in line or "ERROR" in line]
        raise ResolutionError(
            "could not download "
            + ", ".join(":".join(m) for m in modules)
            + " from Maven Central (is https://repo1.maven.org reachable?):\n"
            + "\n".join(problems[-15:] or result.stderr.splitlines()[-15:])
        )
    return [Path(p) for p in classpath_file.read_text().strip().split(":") if p]


def main() -> int:
    """``python -m services.jars``: download everything the project runs on, once.

    For both image families' versions (the local path runs the Bitnami family's; the tests
    of the official images' newer ones run theirs): the local broker and Kafka's tools, and
    Spark's Kafka connector for ``--packages`` (into the same Ivy cache spark-submit reads),
    so later runs work offline.
    """

    settings = load_settings()
    groups: dict[str, list[Module]] = {}
    for family in settings.families:
        kafka = f"Kafka {family.kafka_version} broker and tools"
        groups[kafka] = kafka_modules(family.kafka_version, settings.scala_version)
        connector = settings.connector_for(family.spark_version)
        organisation, name, revision = connector.split(":")
        groups[f"Spark Kafka connector {connector}"] = [(organisation, name, revision)]
    for label, modules in groups.items():
        jars = resolve_classpath(modules)
        print(f"{label}: {len(jars)} jars in {IVY_HOME / 'cache'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
