"""Build the test images that stand in for the Bitnami, Apache and Python images (tests only).

    python -m tests.images.build        # builds what is missing, prints KAFKA_IMAGE=... lines

No registry is reachable here, so nothing is pulled: a Debian root filesystem is made by
``mmdebstrap`` from this machine's own apt sources and loaded with ``docker import``; the
images in ``tests/images/*/`` are built on it. Every tag is a hash of what went into the
image (Dockerfile, scripts, versions, jar and wheel names, the host's CA bundles), so a
rerun with nothing changed only asks the engine whether the tags exist.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from services.settings import CACHE_DIR, load_settings

HERE = Path(__file__).resolve().parent
REPOSITORY = "login-pipeline-test"
ENV_FILE = CACHE_DIR / "docker" / "test-images.env"
# Everything the three images need; one root filesystem keeps the build to one mmdebstrap.
PACKAGES = (
    "ca-certificates",
    "openjdk-17-jre-headless",
    "python3",
    "python3-pip",
    "python3-venv",
    "python-is-python3",
    "procps",
    "libnss-wrapper",
)
# The PostgreSQL stand-in has a root filesystem of its own: adding Debian's postgresql to the
# one above would rebuild the Kafka and Spark images and grow them for nothing.
POSTGRES_PACKAGES = ("postgresql",)
HOST_CA_FILES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),
    Path("/etc/ssl/certs/java/cacerts"),
)


class BuildError(RuntimeError):
    """A test image could not be built; the message says what to do."""


def digest(*parts: bytes | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:16]


def tree_digest(folder: Path) -> list[bytes | str]:
    """Names, modes and contents of every file below ``folder``, in a stable order."""
    parts: list[bytes | str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        parts += [path.relative_to(folder).as_posix(), oct(path.stat().st_mode), path.read_bytes()]
    return parts


def run(command: Iterable[str], **kwargs: object) -> None:
    command = list(command)
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise BuildError(
            f"{' '.join(command[:3])} ... failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


def image_exists(tag: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", tag], capture_output=True, check=False
        ).returncode
        == 0
    )


def apt_sources() -> list[Path]:
    """This machine's apt source files (one-line and deb822), as apt itself lists them."""
    folder = Path("/etc/apt")
    files = [folder / "sources.list", *sorted((folder / "sources.list.d").glob("*"))]
    return [
        f
        for f in files
        if f.suffix in (".list", ".sources") and f.is_file() and f.read_text().strip()
    ]


def debian_suite() -> str:
    release = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    if release.get("ID") != "debian" or not release.get("VERSION_CODENAME"):
        raise BuildError(
            "the test images are built from this machine's Debian apt sources, but this is "
            f"{release.get('PRETTY_NAME', 'not Debian')}. Run `make test-docker` on Debian."
        )
    return release["VERSION_CODENAME"].strip('"')


def rootfs_image(packages: tuple[str, ...] = PACKAGES, name: str = "rootfs") -> str:
    """An imported root filesystem (mmdebstrap), built once per package list and sources."""
    suite = debian_suite()
    sources = apt_sources()
    tag = f"{REPOSITORY}/{name}:" + digest(suite, *packages, *(s.read_bytes() for s in sources))
    if image_exists(tag):
        return tag
    if shutil.which("mmdebstrap") is None:
        raise BuildError(
            "mmdebstrap is missing: `apt-get install mmdebstrap` (tests/images/engine.sh does)"
        )
    print(f"Building {tag} with mmdebstrap (about a minute)...", flush=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as work:
        tarball = Path(work) / "rootfs.tar"
        run(
            [
                "mmdebstrap",
                "--variant=apt",
                f"--include={','.join(packages)}",
                suite,
                str(tarball),
                *(str(s) for s in sources),
            ]
        )
        run(["docker", "import", str(tarball), tag])
    return tag


def build(name: str, context: Path, tag_parts: list[bytes | str], **build_args: str) -> str:
    tag = f"{REPOSITORY}/{name}:" + digest(
        *tag_parts, *sorted(f"{k}={v}" for k, v in build_args.items())
    )
    if image_exists(tag):
        return tag
    print(f"Building {tag}...", flush=True)
    arguments = [arg for k, v in build_args.items() for arg in ("--build-arg", f"{k}={v}")]
    run(
        ["docker", "build", "-q", *arguments, "-t", tag, str(context)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    return tag


def staged(source: Path, work: Path) -> Path:
    """A copy of ``source`` to add generated files to (build contexts stay read-only)."""
    target = work / source.name
    shutil.copytree(source, target)
    return target


def build_all() -> dict[str, str]:
    """Build (or find) the test images; ``{env name: tag}`` for the compose files."""
    settings = load_settings()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        work = Path(tmp)
        base_context = staged(HERE / "base", work)
        for ca_file in HOST_CA_FILES:
            shutil.copy(ca_file, base_context / ca_file.name)
        rootfs = rootfs_image()
        base = build(
            "base", base_context, [rootfs, *tree_digest(base_context)], ROOTFS_IMAGE=rootfs
        )

        python = build("python", HERE / "python", tree_digest(HERE / "python"), BASE_IMAGE=base)

        bitnami = settings.family("bitnami")
        kafka = build_kafka("kafka", bitnami.kafka_version, work, base)
        spark = build_spark("spark", bitnami.spark_version, work, base)
        postgres_rootfs = rootfs_image(POSTGRES_PACKAGES, "postgres-rootfs")
        major = settings_value("POSTGRES_VERSION").split(".")[0]
        postgres = build(
            "postgres",
            HERE / "postgres",
            [postgres_rootfs, *tree_digest(HERE / "postgres")],
            ROOTFS_IMAGE=postgres_rootfs,
            POSTGRES_MAJOR=major,
        )
        apache = settings.family("apache")
        apache_kafka = build_kafka("apache-kafka", apache.kafka_version, work, base)
        apache_spark = build_spark("apache-spark", apache.spark_version, work, base)
    images = {
        "KAFKA_IMAGE": kafka,
        "SPARK_IMAGE": spark,
        "APACHE_KAFKA_IMAGE": apache_kafka,
        "APACHE_SPARK_IMAGE": apache_spark,
        "PYTHON_IMAGE": python,
        "POSTGRES_IMAGE": postgres,
    }
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in images.items()))
    return images


def build_kafka(name: str, version: str, work: Path, base: str) -> str:
    """A Kafka stand-in (``tests/images/<name>/``) with Kafka ``version``'s Maven Central jars
    and the tool scripts both Kafka stand-ins share (``kafka-bin/``)."""
    from services.kafka import kafka_classpath

    context = staged(HERE / name, work)
    shutil.copytree(HERE / "kafka-bin", context / "bin")
    (context / "libs").mkdir()
    for jar in kafka_classpath(version):
        shutil.copy(jar, context / "libs" / jar.name)
    return build(name, context, [version, *tree_digest(context)], BASE_IMAGE=base)


def build_spark(name: str, version: str, work: Path, base: str) -> str:
    """A Spark stand-in (``tests/images/<name>/``) from the pyspark ``version`` wheel."""
    context = staged(HERE / name, work)
    wheels = context / "wheels"
    # pip's cache makes this local after the first time; the image build needs no network.
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(wheels), f"pyspark=={version}"])
    parts = [*tree_digest(HERE / name), *sorted(p.name for p in wheels.iterdir())]
    return build(name, context, parts, BASE_IMAGE=base, SPARK_VERSION=version)


def settings_value(name: str) -> str:
    from services.settings import read_env_file

    return read_env_file()[name]


def main() -> int:
    try:
        images = build_all()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, tag in images.items():
        print(f"{name}={tag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
