"""The cluster topology (TOPOLOGY=cluster) through Compose's own loader, for both image
families: three Kafka nodes that agree with each other, two Spark workers, health-gated
start, ports on 127.0.0.1 only, and volumes of its own.

No engine here (tests/integration/test_docker_cluster.py runs it on one); `docker-compose
config`, built by `make tools`, is the loader that `docker compose up` uses.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

import pytest

from consumer.options import ALERTS_OFF
from services.settings import PROJECT_ROOT, read_env_file
from tests.support.compose import (
    CLUSTER_APACHE_FILE,
    CLUSTER_FILE,
    FAMILY_FILES,
    compose,
    compose_model,
    stack_files,
)
from tests.support.kafka import properties_from_apache_env, properties_from_bitnami_env
from tests.unit.test_docker_checks import fake_bin

ENV = read_env_file()
FAMILIES = list(FAMILY_FILES)
NODES = {"kafka": 1, "kafka-2": 2, "kafka-3": 3}
NODE_PORTS = {
    "kafka": "KAFKA_HOST_PORT",
    "kafka-2": "KAFKA_2_HOST_PORT",
    "kafka-3": "KAFKA_3_HOST_PORT",
}
INTERNAL = "kafka:29092,kafka-2:29092,kafka-3:29092"


@functools.cache
def cluster(family: str) -> dict:
    return compose_model(*stack_files(family, "cluster"), profiles=("ui",))


def broker_properties(family: str, service: str) -> dict[str, str]:
    environment = cluster(family)["services"][service]["environment"]
    if family == "bitnami":
        return properties_from_bitnami_env(environment)
    return properties_from_apache_env(environment)


def cluster_id(family: str, service: str) -> str:
    environment = cluster(family)["services"][service]["environment"]
    return environment["KAFKA_KRAFT_CLUSTER_ID" if family == "bitnami" else "CLUSTER_ID"]


@pytest.mark.parametrize("family", FAMILIES)
def test_compose_accepts_the_cluster_files_without_warnings(family):
    args = [arg for name in stack_files(family, "cluster") for arg in ("-f", name)]
    result = compose(*args, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_makefile_adds_the_cluster_files_last_for_topology_cluster():
    for family in FAMILIES:
        dry_run = subprocess.run(
            ["make", "--no-print-directory", "-n", "up", f"STACK={family}", "TOPOLOGY=cluster",
             "COMPOSE=compose"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (line,) = [ln for ln in dry_run.splitlines() if " up -d --build --wait" in ln]
        assert tuple(re.findall(r"-f (\S+)", line)) == stack_files(family, "cluster"), family
    assert stack_files("apache", "cluster")[-2:] == (CLUSTER_FILE, CLUSTER_APACHE_FILE)


def test_topology_defaults_to_single_and_an_unknown_one_is_refused(tmp_path):
    assert ENV["TOPOLOGY"] == "single"
    result = subprocess.run(
        [shutil.which("make"), "--no-print-directory", "up", "STACK=bitnami", "TOPOLOGY=clustr"],
        cwd=PROJECT_ROOT,
        env={"PATH": str(fake_bin(tmp_path, "exit 0\n"))},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "error: TOPOLOGY must be single or cluster, not 'clustr'" in result.stderr


@pytest.mark.parametrize("family", FAMILIES)
def test_three_kafka_nodes_form_one_replicated_cluster(family):
    ids = {service: cluster_id(family, service) for service in NODES}
    assert set(ids.values()) == {ENV["KAFKA_CLUSTER_ID"]}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", ENV["KAFKA_CLUSTER_ID"])  # a KRaft cluster id
    for service, node in NODES.items():
        props = broker_properties(family, service)
        assert props["node.id"] == str(node)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        for internal in ("offsets.topic", "transaction.state.log",
                         "share.coordinator.state.topic"):  # fmt: skip
            assert props[f"{internal}.replication.factor"] == "3", internal
        for internal in ("transaction.state.log", "share.coordinator.state.topic"):
            assert props[f"{internal}.min.isr"] == "2", internal
        # Containers reach each node by its name; this machine on its own published port,
        # which the node advertises, on 127.0.0.1 only.
        service_model = cluster(family)["services"][service]
        (port,) = service_model["ports"]
        assert port["host_ip"] == "127.0.0.1"
        assert port["published"] == ENV[NODE_PORTS[service]]
        assert props["advertised.listeners"] == (
            f"INTERNAL://{service}:29092,HOST://localhost:{ENV[NODE_PORTS[service]]}"
        )
        assert f"HOST://:{port['target']}" in props["listeners"]
        assert service_model["hostname"] == service
        assert service_model["healthcheck"]["test"][0] == "CMD-SHELL"
        assert service_model["restart"] == "unless-stopped"


def test_both_families_give_each_node_the_same_broker_settings():
    for service in NODES:
        bitnami = broker_properties("bitnami", service)
        apache = broker_properties("apache", service)
        assert apache.pop("log.dirs") == "/var/lib/kafka/data"
        assert apache == bitnami, service
    # The Bitnami file's other settings come from docker-compose.kafka.yml (extends); the
    # official images' nodes list them again in that image's names: they must agree.
    single = properties_from_bitnami_env(
        compose_model(*FAMILY_FILES["bitnami"])["services"]["kafka"]["environment"]
    )
    cluster_only = {"node.id", "controller.quorum.voters", "listeners", "advertised.listeners"}
    for key, value in single.items():
        if key not in cluster_only and not key.endswith(("replication.factor", "min.isr")):
            assert broker_properties("bitnami", "kafka-2")[key] == value, key


@pytest.mark.parametrize("family", FAMILIES)
def test_every_client_gets_all_three_nodes_and_waits_for_them(family):
    services = cluster(family)["services"]
    for name in ("producer", "spark-master", "dashboard"):
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == INTERNAL, name
    assert services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == INTERNAL
    for node in NODES:
        assert services["producer"]["depends_on"][node]["condition"] == "service_healthy"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_detector_stays_off_on_the_topology_its_drills_do_not_cover(family):
    master = cluster(family)["services"]["spark-master"]["environment"]
    assert master["CONSUMER_ALERTS_TOPIC"] == ALERTS_OFF


@pytest.mark.parametrize("family", FAMILIES)
def test_two_workers_share_the_checkpoint_volume_with_the_driver(family):
    services = cluster(family)["services"]
    assert services["spark-worker"]["scale"] == 2
    for name in ("spark-master", "spark-worker"):
        mounts = {m["target"]: m["source"] for m in services[name]["volumes"]}
        assert mounts["/data"] == "spark_data", name
    # A range of UI ports: each worker takes one.
    (ui,) = services["spark-worker"]["ports"]
    first, last = (int(p) for p in ENV["SPARK_WORKER_UI_HOST_PORTS"].split("-"))
    assert last - first + 1 >= services["spark-worker"]["scale"]
    assert ui["host_ip"] == "127.0.0.1"


def test_each_topology_keeps_its_own_data_and_shares_the_caches():
    """The single node's checkpoint and counts belong to another Kafka cluster's topic."""
    for family, prefix in (("bitnami", "login-pipeline"), ("apache", "login-pipeline-apache")):
        single = compose_model(*stack_files(family))["volumes"]
        names = {key: volume["name"] for key, volume in cluster(family)["volumes"].items()}
        data = {"kafka_data", "kafka_2_data", "kafka_3_data", "spark_data", "postgres_data"}
        assert set(names) == data | {"ivy_cache", "spark_db_libs"}
        for key in data:
            assert names[key] == f"{prefix}-cluster_{key}", (family, key)
            assert names[key] not in {v["name"] for v in single.values()}
        for key in ("ivy_cache", "spark_db_libs"):
            assert names[key] == single[key]["name"] == f"{prefix}_{key}", (family, key)
    mounts = {
        family: {
            m["source"]: m["target"]
            for s in NODES
            for m in cluster(family)["services"][s]["volumes"]
        }
        for family in FAMILIES
    }
    assert mounts["bitnami"] == dict.fromkeys(
        ("kafka_data", "kafka_2_data", "kafka_3_data"), "/bitnami/kafka"
    )
    assert mounts["apache"] == dict.fromkeys(
        ("kafka_data", "kafka_2_data", "kafka_3_data"), "/var/lib/kafka/data"
    )


def test_the_port_check_knows_each_kafka_nodes_variable():
    from scripts import check_ports

    texts = [(PROJECT_ROOT / name).read_text() for name in stack_files("bitnami", "cluster")]
    variables = check_ports.port_variables(texts)
    assert {variables[9092], variables[9094], variables[9096]} == set(NODE_PORTS.values())


def test_the_apache_cluster_file_uses_that_images_interface():
    services = cluster("apache")["services"]
    for service in NODES:
        node = services[service]
        assert node["image"] == ENV["APACHE_KAFKA_IMAGE"]
        assert not [k for k in node["environment"] if k.startswith("KAFKA_CFG_")], service
        assert set(node["tmpfs"]) == {"/etc/kafka/secrets", "/mnt/shared/config"}, service
        assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in node["healthcheck"]["test"][1]
    lines = (PROJECT_ROOT / CLUSTER_APACHE_FILE).read_text().splitlines()
    assert not [ln for ln in lines if "bitnami" in ln.split("#")[0].lower()]
