"""Where the query keeps its state (every event id of the dedupe window, and the counts):
chosen once per checkpoint, for the workload that starts it.

Spark has two stores. The default one keeps the state on the JVM heap: each id costs a
few hundred bytes of heap, and a batch that adds a million ids is cheap. RocksDB keeps it
off the heap, on local disk: any size, but every lookup and every write is a native call,
several times the default store's cost per record (docs/PERFORMANCE.md has both). So a
backlog drain (``--trigger available-now``) on a new checkpoint, whose state is the ids it
drains, gets the heap store when they fit comfortably in the heap, and a live run (whose
state grows to its rate times the window) gets RocksDB. ``--state-store`` chooses
explicitly. Spark records the store in the checkpoint and restores it on every later run,
so a checkpoint keeps the store it started with whatever the later runs' triggers are;
:func:`checkpoint_store` reads it back from there, so older checkpoints are covered too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MEMORY = "memory"
ROCKSDB = "rocksdb"
AUTO = "auto"
STORES = (AUTO, MEMORY, ROCKSDB)

PROVIDER_CONF = "spark.sql.streaming.stateStore.providerClass"
PROVIDERS = {
    MEMORY: "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider",
    ROCKSDB: "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
}
CHANGELOG_CONF = "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"

# Heap per event id in the heap store (the id as an UnsafeRow, its expiry, the map entry),
# rounded up from what Spark reports for it (docs/PERFORMANCE.md, --steps profile); a
# drain takes the heap store only if its ids would fill at most HEAP_SHARE of the heap.
HEAP_BYTES_PER_ID = 250
HEAP_SHARE = 0.25


def store_settings(store: str, changelog: bool = True) -> dict[str, str]:
    """Spark settings for ``store``.

    RocksDB with changelog checkpointing writes what each batch changed instead of
    uploading a snapshot per batch: what small, frequent live batches need. A drain's one
    big batch costs the same CPU either way (docs/PERFORMANCE.md), so the job keeps it on;
    ``changelog`` is for the benchmark's comparison. Counting the store's rows would cost a
    lookup on every write, and nothing reads that count.
    """
    settings = {PROVIDER_CONF: PROVIDERS[store]}
    if store == ROCKSDB:
        settings[CHANGELOG_CONF] = str(changelog).lower()
        settings["spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows"] = "false"
    return settings


def checkpoint_store(query_dir: Path) -> str | None:
    """The store an existing checkpoint runs on (from Spark's offset log), or None if new.

    Spark writes its settings that a checkpoint must keep, the store among them, into
    every offset-log entry and restores them from the newest one. A store that is not one
    of :data:`PROVIDERS` is returned as its class name.
    """
    offsets = query_dir / "offsets"
    batches = [int(p.name) for p in offsets.glob("*") if p.name.isdigit()]
    if not batches:
        return None
    try:
        lines = (offsets / str(max(batches))).read_text().splitlines()
        conf: dict[str, Any] = json.loads(lines[1]).get("conf", {})
    except (OSError, IndexError, ValueError):
        return None
    provider = conf.get(PROVIDER_CONF)
    if provider is None:  # written before Spark recorded it: Spark's default store
        return MEMORY
    names = {cls: name for name, cls in PROVIDERS.items()}
    return names.get(provider, provider)


def choose_store(requested: str, drain: bool, records: int | None, heap_bytes: int) -> str:
    """The store for a new checkpoint: ``requested`` unless it is ``auto``.

    ``auto``: the heap store for a drain whose ``records`` (all of the backlog, None if
    unknown) fit in :data:`HEAP_SHARE` of ``heap_bytes``; RocksDB otherwise.
    """
    if requested != AUTO:
        return requested
    if drain and records is not None and records * HEAP_BYTES_PER_ID <= HEAP_SHARE * heap_bytes:
        return MEMORY
    return ROCKSDB


def describe(store: str) -> str:
    """How the job names a store in its output."""
    return {
        MEMORY: "in memory (Spark's default store, on the JVM heap)",
        ROCKSDB: "RocksDB (off the JVM heap, on local disk)",
    }.get(store, store)


def backlog_records(
    spark: Any, properties: dict[str, str], topic: str, starting: str
) -> int | None:
    """How many records a new checkpoint's first run will drain (None if Kafka won't say).

    The topic's end offsets minus where a new checkpoint starts (its earliest offsets, or
    none for ``--starting-offsets latest``), with the Kafka client on the driver's
    classpath, as :func:`consumer.guards.check_kafka` uses it.
    """
    if starting == "latest":
        return 0
    jvm = spark.sparkContext._jvm  # py4j gateway: how PySpark code reaches JVM classes
    props = jvm.java.util.Properties()
    for key, value in properties.items():
        props.setProperty(key, value)
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
        seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
        topics = admin.describeTopics(jvm.java.util.List.of(topic)).allTopicNames()
        partitions = topics.get(30, seconds).get(topic).partitions()
        offset_spec = jvm.org.apache.kafka.clients.admin.OffsetSpec
        specs = {"earliest": jvm.java.util.HashMap(), "latest": jvm.java.util.HashMap()}
        for info in partitions:
            partition = jvm.org.apache.kafka.common.TopicPartition(topic, info.partition())
            specs["earliest"].put(partition, offset_spec.earliest())
            specs["latest"].put(partition, offset_spec.latest())
        ends = {}
        for name, spec in specs.items():
            answer = admin.listOffsets(spec).all().get(30, seconds)
            ends[name] = {str(k): v.offset() for k, v in answer.items()}
        return sum(ends["latest"][p] - ends["earliest"].get(p, 0) for p in ends["latest"])
    except Exception:  # the check for Kafka itself reports Kafka's errors
        return None
    finally:
        if admin is not None:
            admin.close()
