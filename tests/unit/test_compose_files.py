"""The compose files, checked by Compose's own loader and by reading its normalized model,
for both image families (STACK=bitnami, and STACK=apache with docker-compose.apache.yml).

No Docker engine runs here; `docker-compose config` (built from the Go module proxy by
`make tools`) is the real loader that `docker compose up` uses, and needs no engine.
"""

from __future__ import annotations

import functools
import re
import subprocess

import pytest
import yaml

from consumer.options import DB_PASSWORD_ENV, build_parser
from contract.alerts import DEFAULT_ALERTS_TOPIC
from dashboard.__main__ import DB_PASSWORD_ENV as DASHBOARD_PASSWORD_ENV
from dashboard.__main__ import build_parser as dashboard_parser
from producer.config import FLAG_GROUPS
from services.settings import PROJECT_ROOT, load_settings, read_env_file
from tests.support.compose import APACHE_FILE, COMPOSE_FILES, FAMILY_FILES, compose, compose_model
from tests.support.kafka import properties_from_apache_env, properties_from_bitnami_env

SETTINGS = load_settings()
ENV = read_env_file()
DOCKERFILES = ("producer/Dockerfile", "dashboard/Dockerfile", "consumer/db-libs.Dockerfile")
FAMILIES = list(FAMILY_FILES)


@functools.cache
def merged(family: str = "bitnami") -> dict:
    """A family's files and the optional profile, as Compose models them (built on first
    use, so a missing Compose binary fails only the tests that need it, not the collection)."""
    return compose_model(*FAMILY_FILES[family], profiles=("ui",))


@pytest.mark.parametrize(
    "files",
    [
        ("docker-compose.kafka.yml",),
        ("docker-compose.spark.yml",),
        ("docker-compose.kafka.yml", "docker-compose.producer.yml"),
        COMPOSE_FILES,
        FAMILY_FILES["apache"],
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


@pytest.mark.parametrize("family", FAMILIES)
def test_one_project_one_network_shared_by_all_files(family):
    for name in (*COMPOSE_FILES, APACHE_FILE):
        text = (PROJECT_ROOT / name).read_text()
        assert re.search(r"^name: login-pipeline$", text, re.M), name
        assert "name: login-pipeline\n" in text.split("networks:")[-1], name
    assert merged(family)["name"] == "login-pipeline"
    assert merged(family)["networks"]["default"]["name"] == "login-pipeline"


@pytest.mark.parametrize("family", FAMILIES)
def test_images_are_pinned_to_the_versions_in_env(family):
    services = merged(family)["services"]
    versions = SETTINGS.family(family)
    kafka, spark = {
        "bitnami": (
            f"docker.io/bitnamilegacy/kafka:{versions.kafka_version}",
            f"docker.io/bitnamilegacy/spark:{versions.spark_version}",
        ),
        "apache": (
            f"docker.io/apache/kafka:{versions.kafka_version}",
            # The documented tag form: Spark, Scala and Java versions, Python, Ubuntu.
            f"docker.io/apache/spark:{versions.spark_version}-scala{SETTINGS.scala_version}"
            "-java17-python3-ubuntu",
        ),
    }[family]
    assert services["kafka"]["image"] == kafka == versions.kafka_image
    for name in ("spark-master", "spark-worker", "volume-permissions"):
        assert services[name]["image"] == spark == versions.spark_image, name
    for name in ("producer", "dashboard", "spark-db-libs"):
        assert services[name]["build"]["args"]["PYTHON_IMAGE"] == SETTINGS.python_image, name
    assert services["postgres"]["image"] == (
        f"docker.io/library/postgres:{ENV['POSTGRES_VERSION']}-bookworm"
    )
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), name


def test_the_makefile_merges_each_familys_files_in_this_order():
    """`make up STACK=...` runs Compose on exactly the files these tests check."""
    for family, files in FAMILY_FILES.items():
        dry_run = subprocess.run(
            ["make", "--no-print-directory", "-n", "up", f"STACK={family}", "COMPOSE=compose"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (line,) = [ln for ln in dry_run.splitlines() if " up -d --build --wait" in ln]
        assert tuple(re.findall(r"-f (\S+)", line)) == files, family


def test_stack_defaults_to_bitnami():
    assert ENV["STACK"] == SETTINGS.stack == "bitnami"
    assert [family.name for family in SETTINGS.families] == FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_dependencies_wait_for_health(family):
    services = merged(family)["services"]
    assert services["producer"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka-ui"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["spark-worker"]["depends_on"]["spark-master"]["condition"] == "service_healthy"
    assert services["spark-master"]["depends_on"]["volume-permissions"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("spark-master", "dashboard"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert services["spark-master"]["depends_on"]["spark-db-libs"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("kafka", "spark-master", "spark-worker", "postgres", "dashboard"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    # Ready means ready over TCP: the image's first start runs a socket-only server.
    assert "--host=127.0.0.1" in services["postgres"]["healthcheck"]["test"]


# Every port the stack publishes, and the .env variable that moves it (check_ports.py names it).
HOST_PORTS = {
    ("kafka", 9092): "KAFKA_HOST_PORT",
    ("postgres", 5432): "POSTGRES_HOST_PORT",
    ("dashboard", 8050): "DASHBOARD_HOST_PORT",
    ("spark-master", 8080): "SPARK_MASTER_UI_HOST_PORT",
    ("spark-master", 4040): "SPARK_JOB_UI_HOST_PORT",
    ("spark-worker", 8081): "SPARK_WORKER_UI_HOST_PORTS",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_published_port_is_bound_to_localhost_only(family):
    published = [
        (name, port)
        for name, service in merged(family)["services"].items()
        for port in service.get("ports", [])
    ]
    assert published, "expected published ports"
    assert all(port["host_ip"] == "127.0.0.1" for _, port in published), published
    kafka_port = merged(family)["services"]["kafka"]["ports"][0]
    assert kafka_port["published"] == SETTINGS.bootstrap_servers.rsplit(":", 1)[1]
    found = {
        (name, port["target"]): port["published"]
        for name, port in published
        if name != "kafka-ui"  # optional, profile "ui"
    }
    assert found == {key: ENV[variable] for key, variable in HOST_PORTS.items()}


def test_the_port_check_knows_the_variable_behind_every_published_port():
    from scripts import check_ports

    texts = [(PROJECT_ROOT / name).read_text() for name in COMPOSE_FILES]
    variables = check_ports.port_variables(texts)
    assert variables == {target: variable for (_, target), variable in HOST_PORTS.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_data_lives_in_named_volumes_and_code_is_mounted_read_only(family):
    volumes = set(merged(family)["volumes"])
    assert volumes == {"kafka_data", "spark_data", "ivy_cache", "postgres_data", "spark_db_libs"}
    for name, service in merged(family)["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "volume":
                assert mount["source"] in volumes, (name, mount)
            else:
                assert mount["type"] == "bind" and mount["read_only"], (name, mount)
                assert mount["source"] in (
                    str(PROJECT_ROOT / "consumer"),
                    str(PROJECT_ROOT / "contract"),
                    str(PROJECT_ROOT / "postgres" / "initdb"),
                )
    # The state store is written by executors: the same volume at the same path everywhere.
    data_mounts = {
        name: m["target"]
        for name, s in merged(family)["services"].items()
        for m in s.get("volumes", [])
        if m.get("source") == "spark_data"
    }
    assert data_mounts == {
        "volume-permissions": "/data",
        "spark-master": "/data",
        "spark-worker": "/data",
    }
    postgres_mounts = {m["target"]: m for m in merged(family)["services"]["postgres"]["volumes"]}
    assert postgres_mounts["/var/lib/postgresql/data"]["source"] == "postgres_data"
    assert postgres_mounts["/docker-entrypoint-initdb.d"]["read_only"]
    libs = {
        name: (m["target"], m.get("read_only", False))
        for name, s in merged(family)["services"].items()
        for m in s.get("volumes", [])
        if m.get("source") == "spark_db_libs"
    }
    assert libs == {
        "spark-db-libs": ("/target", False),
        "spark-master": ("/opt/pipeline/db-libs", True),
    }
    master_env = merged(family)["services"]["spark-master"]["environment"]
    assert master_env["CONSUMER_PYTHONPATH"] == "/opt/pipeline/db-libs"
    assert master_env["CONSUMER_CHECKPOINT_DIR"].startswith("/data/")
    assert master_env["CONSUMER_OUTPUT_DIR"].startswith("/data/")
    assert master_env["SPARK_IVY_DIR"] == "/ivy"
    # Kafka's data where each image keeps it (/bitnami/kafka holds its data/ folder).
    (kafka_mount,) = merged(family)["services"]["kafka"]["volumes"]
    assert (kafka_mount["source"], kafka_mount["target"]) == (
        "kafka_data", {"bitnami": "/bitnami/kafka", "apache": "/var/lib/kafka/data"}[family]
    )  # fmt: skip


def test_each_family_keeps_its_own_volumes():
    """A switch of STACK never hands one image's data to the other (other users, versions)."""
    names = {
        family: {key: volume["name"] for key, volume in merged(family)["volumes"].items()}
        for family in FAMILIES
    }
    assert names["bitnami"] == {key: f"login-pipeline_{key}" for key in names["bitnami"]}
    assert names["apache"] == {key: f"login-pipeline-apache_{key}" for key in names["apache"]}


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


# The official Spark image's: Spark's own Worker reads these (no SPARK_MODE there).
APACHE_SPARK_ENV = {"SPARK_WORKER_CORES", "SPARK_WORKER_MEMORY"}
IMAGE_SPARK_ENV = {"bitnami": BITNAMI_SPARK_ENV, "apache": APACHE_SPARK_ENV}


@pytest.mark.parametrize("family", FAMILIES)
def test_environment_names_are_the_ones_the_code_reads(family):
    image_env = IMAGE_SPARK_ENV[family]
    services = merged(family)["services"]
    producer_env = {o.env for options in FLAG_GROUPS.values() for o in options}
    assert set(services["producer"]["environment"]) <= producer_env
    job_env = env_names_in_help(build_parser({}))
    master_env = set(services["spark-master"]["environment"])
    job_env |= {DB_PASSWORD_ENV}  # from postgres/job.env, when it exists
    assert master_env <= job_env | SUBMIT_ENV | image_env, master_env - job_env - SUBMIT_ENV
    dashboard_env = set(services["dashboard"]["environment"])
    assert dashboard_env <= env_names_in_help(dashboard_parser({})) | {DASHBOARD_PASSWORD_ENV}
    assert set(services["spark-worker"]["environment"]) <= image_env | {"PYSPARK_PYTHON"}
    kafka_env = services["kafka"]["environment"]
    prefix = {"bitnami": "KAFKA_CFG_", "apache": "KAFKA_"}[family]
    assert all(k.startswith(prefix) or k == "KAFKA_HEAP_OPTS" for k in kafka_env), kafka_env


def test_both_kafka_images_get_the_same_broker_settings():
    """The apache/kafka environment is the Bitnami one in that image's names: both images
    write the same server.properties, but for where each keeps its data."""
    bitnami = merged("bitnami")["services"]["kafka"]["environment"]
    apache = merged("apache")["services"]["kafka"]["environment"]
    ours = properties_from_bitnami_env(bitnami)
    theirs = properties_from_apache_env(apache)
    assert theirs.pop("log.dirs") == "/var/lib/kafka/data"
    assert "log.dirs" not in ours  # Bitnami's image sets /bitnami/kafka/data itself
    assert theirs == ours
    assert apache["KAFKA_HEAP_OPTS"] == bitnami["KAFKA_HEAP_OPTS"]


def test_the_apache_services_use_that_images_interface():
    """No Bitnami variables or paths; python3 (the image has no `python`); Kafka's scripts
    by their path (not on PATH); the master and worker through Spark's own spark-class."""
    services = merged("apache")["services"]
    for name in ("spark-master", "spark-worker"):
        service = services[name]
        assert not set(service["environment"]) & (BITNAMI_SPARK_ENV - APACHE_SPARK_ENV), name
        assert service["environment"]["PYSPARK_PYTHON"] == "python3", name
        assert service["healthcheck"]["test"][:2] == ["CMD", "python3"], name
        assert service["command"][:1] == ["/opt/spark/bin/spark-class"], name
    assert services["spark-master"]["command"][1] == "org.apache.spark.deploy.master.Master"
    assert services["spark-worker"]["command"][1:] == [
        "org.apache.spark.deploy.worker.Worker", "spark://spark-master:7077"
    ]  # fmt: skip
    assert "chown -R spark:spark /data /ivy" in services["volume-permissions"]["entrypoint"][-1]
    kafka = services["kafka"]
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in kafka["healthcheck"]["test"][1]
    # The image's two other volumes get a mount, so no container leaves anonymous volumes.
    assert set(kafka["tmpfs"]) == {"/etc/kafka/secrets", "/mnt/shared/config"}
    lines = (PROJECT_ROOT / APACHE_FILE).read_text().splitlines()
    assert not [ln for ln in lines if "bitnami" in ln.split("#")[0].lower()]


@pytest.mark.parametrize("family", FAMILIES)
def test_containers_reach_kafka_on_its_internal_listener(family):
    services = merged(family)["services"]
    kafka_env = properties_from_bitnami_env(services["kafka"]["environment"]) or (
        properties_from_apache_env(services["kafka"]["environment"])
    )
    assert "INTERNAL://kafka:29092" in kafka_env["advertised.listeners"]
    assert f"HOST://{SETTINGS.bootstrap_servers}" in kafka_env["advertised.listeners"]
    for name in ("producer", "spark-master", "dashboard"):
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == (
        "kafka:29092"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_only_the_volume_permission_step_runs_as_root_and_no_secrets_are_committed(family):
    for name, service in merged(family)["services"].items():
        if name in ("volume-permissions", "spark-db-libs"):  # one-shot steps on volumes
            assert service["user"] == "0" and service["network_mode"] == "none"
        else:
            assert service.get("user") in (None, ""), name
    for path, uid in (("producer/Dockerfile", 10001), ("dashboard/Dockerfile", 10002)):
        assert re.search(rf"^USER {uid}$", (PROJECT_ROOT / path).read_text(), re.M), path
    for name in (*COMPOSE_FILES, APACHE_FILE):
        assert not re.search(
            r"(?i)(password|secret|token)\s*[:=]", (PROJECT_ROOT / name).read_text()
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_kafka_ui_is_optional(family):
    default = compose_model(*FAMILY_FILES[family])
    assert "kafka-ui" not in default["services"]
    assert "kafka-ui" in merged(family)["services"]


def hadolint(path) -> subprocess.CompletedProcess[str]:
    import sys
    from pathlib import Path

    binary = Path(sys.executable).parent / "hadolint"
    return subprocess.run([str(binary), str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("path", [*DOCKERFILES, "tests/images/postgres/Dockerfile"])
def test_dockerfiles_pass_hadolint(path):
    result = hadolint(PROJECT_ROOT / path)
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
    for dockerfile in DOCKERFILES:
        for copied in re.findall(r"^COPY (.+) \S+$", (PROJECT_ROOT / dockerfile).read_text(), re.M):
            for source in copied.split():
                folder = source.split("/", 1)[0] + "/"
                assert source in admitted or folder in admitted, (dockerfile, source)


@pytest.mark.parametrize("dockerfile", ["producer/Dockerfile", "dashboard/Dockerfile"])
def test_the_image_gets_every_package_that_pyproject_lists(dockerfile):
    """`pip install .` in the image fails if a listed package directory is missing."""
    import tomllib

    packages = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    admitted = {line[1:] for line in dockerignore_entries() if line.startswith("!")}
    copied = re.findall(r"^COPY (\S+) ", (PROJECT_ROOT / dockerfile).read_text(), re.M)
    for package in packages:
        init = f"{package}/__init__.py"
        assert init in admitted or f"{package}/" in admitted, package
        assert init in copied or f"{package}/" in copied, package


@pytest.mark.parametrize("family", FAMILIES)
def test_the_job_writes_to_postgres_only_with_the_dashboard_file(family):
    """The Spark file alone (an existing Kafka, say) has no database to write to."""
    alone = compose_model("docker-compose.spark.yml")["services"]["spark-master"]["environment"]
    assert alone["CONSUMER_DB_URL"] == "off"
    master = merged(family)["services"]["spark-master"]["environment"]
    assert master["CONSUMER_DB_URL"] == "postgresql+pg8000://pipeline@postgres:5432/logins"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_detector_runs_where_the_database_is_and_publishes_to_the_usual_topic(family):
    alone = compose_model("docker-compose.spark.yml")["services"]["spark-master"]["environment"]
    assert "CONSUMER_ALERTS_TOPIC" not in alone  # no database, no ledger: the job refuses
    master = merged(family)["services"]["spark-master"]["environment"]
    assert master["CONSUMER_ALERTS_TOPIC"] == DEFAULT_ALERTS_TOPIC


def test_each_role_is_the_one_the_server_creates_with_the_password_its_client_gets():
    from sqlalchemy.engine import make_url

    services = merged()["services"]
    server = services["postgres"]["environment"]
    for client, url_variable, role_variable in (
        ("spark-master", "CONSUMER_DB_URL", "JOB_ROLE"),
        ("dashboard", "DASHBOARD_DB_URL", "DASHBOARD_ROLE"),
    ):
        url = make_url(services[client]["environment"][url_variable])
        assert url.password is None, client  # the password comes from an env file
        assert (url.username, url.host, url.port, url.database) == (
            server[role_variable], "postgres", 5432, server["POSTGRES_DB"]
        )  # fmt: skip
    # Compose's model merges the files' variables into `environment`: read the file itself.
    raw = yaml.safe_load((PROJECT_ROOT / "docker-compose.dashboard.yml").read_text())
    env_files = {
        name: [(f["path"], f["required"]) for f in s["env_file"]]
        for name, s in raw["services"].items()
        if "env_file" in s
    }
    # Not required, so `compose config` works before `make up` has made them; without them
    # the server refuses to start (no superuser password) and says so.
    assert env_files == {
        "postgres": [
            ("postgres/postgres.env", False),
            ("postgres/job.env", False),
            ("postgres/dashboard.env", False),
        ],
        "spark-master": [("postgres/job.env", False)],
        "dashboard": [("postgres/dashboard.env", False)],
    }


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("postgres", "POSTGRES_PASSWORD"),
        ("job", DB_PASSWORD_ENV),
        ("dashboard", DASHBOARD_PASSWORD_ENV),
    ],
)
def test_password_files_have_committed_examples_and_are_never_committed(name, variable):
    example = PROJECT_ROOT / "postgres" / f"{name}.env.example"
    lines = [ln for ln in example.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines == [f"{variable}=change-me"]  # the placeholder `make up` replaces
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"postgres/{name}.env"], cwd=PROJECT_ROOT, check=False
    )
    assert ignored.returncode == 0, f"postgres/{name}.env is not ignored by git"
    assert subprocess.run(
        ["git", "check-ignore", "-q", f"postgres/{name}.env.example"], cwd=PROJECT_ROOT,
        check=False,
    ).returncode == 1  # fmt: skip
    init = (PROJECT_ROOT / "postgres/initdb/10-roles.sh").read_text()
    if variable != "POSTGRES_PASSWORD":  # the official image's own variable
        assert f"\\getenv {'job' if name == 'job' else 'reader'}_password {variable}" in init


def test_make_up_creates_the_password_files_with_random_passwords(tmp_path):
    """The Makefile's rule, run in a copy of the folder: new files, one password each."""
    import shutil

    shutil.copytree(
        PROJECT_ROOT / "postgres", tmp_path / "postgres", ignore=shutil.ignore_patterns("*.env")
    )
    shutil.copy(PROJECT_ROOT / "Makefile", tmp_path / "Makefile")
    files = ["postgres/postgres.env", "postgres/job.env", "postgres/dashboard.env"]
    result = subprocess.run(
        ["make", "--no-print-directory", *files], cwd=tmp_path, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    passwords = []
    for name in files:
        path = tmp_path / name
        assert path.stat().st_mode & 0o077 == 0, name  # readable by its owner only
        (line,) = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
        passwords.append(line.split("=", 1)[1])
    assert all(re.fullmatch(r"[0-9a-f]{48}", p) for p in passwords), passwords
    assert len(set(passwords)) == 3
    again = subprocess.run(
        ["make", "--no-print-directory", *files], cwd=tmp_path, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert "Created" not in again.stdout  # kept, never regenerated
