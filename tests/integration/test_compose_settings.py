"""The compose files' Kafka and Spark settings, proven on real processes (no Docker here).

4. The Kafka service's KAFKA_CFG_* settings, translated the way the Bitnami image does,
   with container host names mapped to localhost, boot a real broker that serves clients
   on both its listeners.
5. The job runs on a real Spark standalone cluster (Master + Worker processes), submitted
   by consumer/submit.sh with the spark-master service's environment, as `make submit` does.
"""

from __future__ import annotations

import json
import re

import pytest

from services.kafka import LocalKafka
from tests.support.compose import compose_model
from tests.support.jobs import run_job
from tests.support.kafka import (
    create_topic,
    free_port,
    produce_raw,
    properties_from_bitnami_env,
    read_topic,
)
from tests.support.spark_cluster import LocalSparkCluster
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADDRESS = re.compile(r"(?P<scheme>[A-Za-z]+://|\d+@)(?P<host>[\w.-]*):(?P<port>\d+)")


def localize(properties: dict[str, str], ports: dict[int, int]) -> dict[str, str]:
    """Container host names become localhost; container ports become free local ports."""

    def replace(match: re.Match[str]) -> str:
        host = "localhost" if match["host"] else ""
        return f"{match['scheme']}{host}:{ports[int(match['port'])]}"

    return {key: ADDRESS.sub(replace, value) for key, value in properties.items()}


@pytest.fixture(scope="module")
def compose_kafka(tmp_path_factory):
    kafka = compose_model("docker-compose.kafka.yml")["services"]["kafka"]
    properties = properties_from_bitnami_env(kafka["environment"])
    container_ports = {int(m["port"]) for v in properties.values() for m in ADDRESS.finditer(v)}
    assert container_ports == {29092, 9092, 9093}, container_ports
    ports = {port: free_port() for port in container_ports}
    heap = re.search(r"-Xmx(\S+)", kafka["environment"]["KAFKA_HEAP_OPTS"])[1]
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("compose-kafka"),
        port=ports[9092],  # the HOST listener that the compose file publishes
        custom_properties=localize(properties, ports),
        heap=heap,
    )
    broker.start()
    yield broker, ports
    broker.stop()


def test_compose_kafka_settings_boot_a_broker_serving_both_listeners(compose_kafka):
    broker, ports = compose_kafka
    props = broker.properties()
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"0@localhost:{ports[9093]}"
    assert props["auto.create.topics.enable"] == "false"
    host = f"localhost:{ports[9092]}"
    internal = f"localhost:{ports[29092]}"
    create_topic(host, "compose-check")
    produce_raw(host, "compose-check", [b"via-host-1", b"via-host-2"])
    produce_raw(internal, "compose-check", [b"via-internal"])
    values = sorted(r.value for r in read_topic(internal, "compose-check", 3))
    assert values == [b"via-host-1", b"via-host-2", b"via-internal"]
    assert sorted(r.value for r in read_topic(host, "compose-check", 3)) == values


def test_compose_kafka_refuses_unknown_topics_like_the_container_would(compose_kafka):
    broker, _ = compose_kafka
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, max_block_ms=3000)
    with pytest.raises(KafkaTimeoutError):
        producer.send("no-such-topic", b"x").get(timeout=10)
    producer.close()


def test_job_on_a_standalone_cluster_submitted_like_make_submit(kafka_broker, topic, tmp_path):
    spark = compose_model("docker-compose.spark.yml")["services"]
    master_env = spark["spark-master"]["environment"]
    worker_env = spark["spark-worker"]["environment"]
    cluster = LocalSparkCluster(
        home=tmp_path / "cluster",
        master_port=free_port(),
        master_ui_port=free_port(),
        worker_ui_port=free_port(),
        worker_cores=int(worker_env["SPARK_WORKER_CORES"]),
        worker_memory=worker_env["SPARK_WORKER_MEMORY"],
    )
    events = [
        {"event_id": f"c{i}", "user_id": f"u{i % 7}", "timestamp": ts, "success": i % 4 != 0}
        for i, ts in enumerate(
            ["2024-01-31T23:59:59.999Z", "2024-02-01T00:00:00.000Z", "2024-02-29T12:00:00.000Z"]
            * 50
        )
    ]
    produce_raw(kafka_broker.bootstrap_servers, topic, [json.dumps(e).encode() for e in events])
    produce_raw(kafka_broker.bootstrap_servers, topic, [b"{broken"])
    cluster.start()
    try:
        # The driver and executors share this folder, as master and workers share /data.
        memory = {k: master_env[k] for k in ("SPARK_DRIVER_MEMORY", "SPARK_EXECUTOR_MEMORY")}
        run = run_job(kafka_broker, topic, tmp_path, master=cluster.master_url, env=memory)
        status = cluster.status()
    finally:
        cluster.stop()
    assert run.monthly == expected_monthly(events)
    assert run.rejected == {"not_json_object": 1}
    assert f"at {cluster.master_url}" in run.result.stderr
    # The application really ran on the cluster's worker, not in local mode.
    finished = [app["name"] for app in status["completedapps"] + status["activeapps"]]
    assert "monthly_logins" in finished
    quarantined = list((tmp_path / "output" / "rejected").glob("batch=*/*.json"))
    assert len(quarantined) == 1
    record = json.loads(quarantined[0].read_text())
    assert record["reason"] == "not_json_object" and record["topic"] == topic
