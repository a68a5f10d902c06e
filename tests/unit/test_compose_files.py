"""The compose files, checked by Compose's own loader and by reading its normalized model.

No Docker engine runs here; `docker-compose config` (built from the Go module proxy by
`make tools`) is the real loader that `docker compose up` uses, and needs no engine.
"""

from __future__ import annotations

import functools
import re
import subprocess

import pytest

from consumer.options import build_parser
from producer.config import OPTION_GROUPS
from services.settings import PROJECT_ROOT, load_settings
from tests.support.compose import COMPOSE_FILES, compose, compose_model

SETTINGS = load_settings()


@functools.cache
def merged() -> dict:
    """All three files and the optional profile, as Compose models them (built on first use,
    so a missing Compose binary fails only the tests that need it, not the collection)."""
    return compose_model(*COMPOSE_FILES, profiles=("ui",))


@pytest.mark.parametrize(
    "files",
    [
        ("docker-compose.kafka.yml",),
        ("docker-compose.spark.yml",),
        ("docker-compose.kafka.yml", "docker-compose.producer.yml"),
        COMPOSE_FILES,
    ],
)
def test_compose_accepts_each_file_and_the_merge_without_warnings(files):
    args = [arg for f in files for arg in ("-f", f)]
    result = compose(*args, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_compose_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  kafka:\n    image: x\n    portz: ['1:1']\n")
    result = compose("-f", str(broken), "config", "--quiet")
    assert result.returncode != 0 and "portz" in result.stderr


def test_one_project_one_network_shared_by_all_files():
    for name in COMPOSE_FILES:
        text = (PROJECT_ROOT / name).read_text()
        assert re.search(r"^name: login-pipeline$", text, re.M), name
        assert "name: login-pipeline\n" in text.split("networks:")[-1], name
    assert merged()["name"] == "login-pipeline"
    assert merged()["networks"]["default"]["name"] == "login-pipeline"


def test_images_are_pinned_to_the_versions_in_env():
    services = merged()["services"]
    assert services["kafka"]["image"] == f"docker.io/bitnamilegacy/kafka:{SETTINGS.kafka_version}"
    for name in ("spark-master", "spark-worker", "volume-permissions"):
        assert services[name]["image"] == f"docker.io/bitnamilegacy/spark:{SETTINGS.spark_version}"
    assert services["producer"]["build"]["args"]["PYTHON_IMAGE"] == SETTINGS.python_image
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), name


def test_dependencies_wait_for_health():
    services = merged()["services"]
    assert services["producer"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka-ui"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["spark-worker"]["depends_on"]["spark-master"]["condition"] == "service_healthy"
    assert services["spark-master"]["depends_on"]["volume-permissions"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("kafka", "spark-master", "spark-worker"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_every_published_port_is_bound_to_localhost_only():
    published = [
        (name, port)
        for name, service in merged()["services"].items()
        for port in service.get("ports", [])
    ]
    assert published, "expected published ports"
    assert all(port["host_ip"] == "127.0.0.1" for _, port in published), published
    kafka_port = merged()["services"]["kafka"]["ports"][0]
    assert kafka_port["published"] == SETTINGS.bootstrap_servers.rsplit(":", 1)[1]


def test_data_lives_in_named_volumes_and_code_is_mounted_read_only():
    volumes = set(merged()["volumes"])
    assert volumes == {"kafka_data", "spark_data", "ivy_cache"}
    for name, service in merged()["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "volume":
                assert mount["source"] in volumes, (name, mount)
            else:
                assert mount["type"] == "bind" and mount["read_only"], (name, mount)
                assert mount["source"] in (
                    str(PROJECT_ROOT / "consumer"),
                    str(PROJECT_ROOT / "contract"),
                )
    # The state store is written by executors: the same volume at the same path everywhere.
    data_mounts = {
        name: m["target"]
        for name, s in merged()["services"].items()
        for m in s.get("volumes", [])
        if m.get("source") == "spark_data"
    }
    assert data_mounts == {
        "volume-permissions": "/data",
        "spark-master": "/data",
        "spark-worker": "/data",
    }
    master_env = merged()["services"]["spark-master"]["environment"]
    assert master_env["CONSUMER_CHECKPOINT_DIR"].startswith("/data/")
    assert master_env["CONSUMER_OUTPUT_DIR"].startswith("/data/")
    assert master_env["SPARK_IVY_DIR"] == "/ivy"


def env_names_in_help(parser) -> set[str]:
    return set(re.findall(r"\[([A-Z][A-Z0-9_]+)\]", parser.format_help().replace("\n", " ")))


SUBMIT_ENV = set(re.findall(r"\$\{([A-Z_]+)", (PROJECT_ROOT / "consumer/submit.sh").read_text()))
# The Bitnami Spark image's own interface (bitnami/spark README and spark-env.sh).
BITNAMI_SPARK_ENV = {
    "SPARK_MODE",
    "SPARK_MASTER_URL",
    "SPARK_WORKER_CORES",
    "SPARK_WORKER_MEMORY",
    "SPARK_RPC_AUTHENTICATION_ENABLED",
    "SPARK_RPC_ENCRYPTION_ENABLED",
    "SPARK_LOCAL_STORAGE_ENCRYPTION_ENABLED",
    "SPARK_SSL_ENABLED",
}


def test_environment_names_are_the_ones_the_code_reads():
    producer_env = {o.env for options in OPTION_GROUPS.values() for o in options}
    assert set(merged()["services"]["producer"]["environment"]) <= producer_env
    job_env = env_names_in_help(build_parser({}))
    master_env = set(merged()["services"]["spark-master"]["environment"])
    assert master_env <= job_env | SUBMIT_ENV | BITNAMI_SPARK_ENV, (
        master_env - job_env - SUBMIT_ENV - BITNAMI_SPARK_ENV
    )
    assert set(merged()["services"]["spark-worker"]["environment"]) <= BITNAMI_SPARK_ENV | {
        "PYSPARK_PYTHON"
    }
    kafka_env = merged()["services"]["kafka"]["environment"]
    assert all(k.startswith("KAFKA_CFG_") or k == "KAFKA_HEAP_OPTS" for k in kafka_env)


def test_containers_reach_kafka_on_its_internal_listener():
    kafka_env = merged()["services"]["kafka"]["environment"]
    assert "INTERNAL://kafka:29092" in kafka_env["KAFKA_CFG_ADVERTISED_LISTENERS"]
    assert f"HOST://{SETTINGS.bootstrap_servers}" in kafka_env["KAFKA_CFG_ADVERTISED_LISTENERS"]
    for name in ("producer", "spark-master"):
        assert merged()["services"][name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert merged()["services"]["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == (
        "kafka:29092"
    )


def test_only_the_volume_permission_step_runs_as_root_and_no_secrets_are_committed():
    for name, service in merged()["services"].items():
        if name == "volume-permissions":
            assert service["user"] == "0" and service["network_mode"] == "none"
        else:
            assert service.get("user") in (None, ""), name
    dockerfile = (PROJECT_ROOT / "producer/Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    for name in COMPOSE_FILES:
        assert not re.search(
            r"(?i)(password|secret|token)\s*[:=]", (PROJECT_ROOT / name).read_text()
        )


def test_kafka_ui_is_optional():
    default = compose_model(*COMPOSE_FILES)
    assert "kafka-ui" not in default["services"]
    assert "kafka-ui" in merged()["services"]


def hadolint(path) -> subprocess.CompletedProcess[str]:
    import sys
    from pathlib import Path

    binary = Path(sys.executable).parent / "hadolint"
    return subprocess.run([str(binary), str(path)], capture_output=True, text=True, check=False)


def test_producer_dockerfile_passes_hadolint():
    result = hadolint(PROJECT_ROOT / "producer/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "Using latest is prone to errors"


def dockerignore_entries() -> list[str]:
    text = (PROJECT_ROOT / ".dockerignore").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_dockerignore_admits_only_what_the_image_needs():
    lines = dockerignore_entries()
    assert lines[0] == "*", "the context must start from nothing and admit what it needs"
    admitted = {line[1:] for line in lines if line.startswith("!")}
    assert ".env" not in admitted and ".venv/" not in admitted
    for copied in re.findall(
        r"^COPY (.+) \S+$", (PROJECT_ROOT / "producer/Dockerfile").read_text(), re.M
    ):
        for source in copied.split():
            assert source in admitted, source


def test_the_image_gets_every_package_that_pyproject_lists():
    """`pip install .` in the image fails if a listed package directory is missing."""
    import tomllib

    packages = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    admitted = {line[1:] for line in dockerignore_entries() if line.startswith("!")}
    copied = re.findall(r"^COPY (\S+) ", (PROJECT_ROOT / "producer/Dockerfile").read_text(), re.M)
    for package in packages:
        init = f"{package}/__init__.py"
        assert init in admitted or f"{package}/" in admitted, package
        assert init in copied or f"{package}/" in copied, package
