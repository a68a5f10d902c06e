"""Which state store a checkpoint gets, and how an existing checkpoint's store is read back."""

from __future__ import annotations

import json

import pytest

from consumer.options import parse_options
from consumer.state_store import (
    CHANGELOG_CONF,
    HEAP_BYTES_PER_ID,
    HEAP_SHARE,
    MEMORY,
    PROVIDER_CONF,
    PROVIDERS,
    ROCKSDB,
    checkpoint_store,
    choose_store,
    store_settings,
)

GIB = 2**30


def test_a_drain_whose_ids_fit_in_a_quarter_of_the_heap_keeps_them_there():
    fits = int(HEAP_SHARE * GIB / HEAP_BYTES_PER_ID)
    assert choose_store("auto", drain=True, records=fits, heap_bytes=GIB) == MEMORY
    assert choose_store("auto", drain=True, records=fits + 1, heap_bytes=GIB) == ROCKSDB
    assert choose_store("auto", drain=True, records=4 * fits, heap_bytes=4 * GIB) == MEMORY


def test_a_live_run_or_an_unknown_backlog_gets_rocksdb_and_a_choice_is_kept():
    assert choose_store("auto", drain=False, records=0, heap_bytes=GIB) == ROCKSDB
    assert choose_store("auto", drain=True, records=None, heap_bytes=GIB) == ROCKSDB
    assert choose_store("memory", drain=False, records=None, heap_bytes=GIB) == MEMORY
    assert choose_store("rocksdb", drain=True, records=10, heap_bytes=GIB) == ROCKSDB


def test_rocksdb_writes_changelogs_and_never_counts_its_rows():
    live = store_settings(ROCKSDB)
    assert live[PROVIDER_CONF].endswith("RocksDBStateStoreProvider")
    assert live[CHANGELOG_CONF] == "true"
    assert live["spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows"] == "false"
    assert store_settings(ROCKSDB, changelog=False)[CHANGELOG_CONF] == "false"
    assert store_settings(MEMORY, changelog=True) == {PROVIDER_CONF: PROVIDERS[MEMORY]}


def offset_log(conf: dict[str, str]) -> str:
    metadata = {"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": conf}
    return "v1\n" + json.dumps(metadata) + '\n{"logins":{"0":5}}'


@pytest.mark.parametrize("store", [MEMORY, ROCKSDB])
def test_an_existing_checkpoint_reports_the_store_spark_recorded(tmp_path, store):
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    (offsets / "0").write_text(offset_log({PROVIDER_CONF: PROVIDERS[ROCKSDB]}))
    (offsets / "1").write_text(offset_log({PROVIDER_CONF: PROVIDERS[store]}))
    (offsets / ".1.crc").write_text("")
    assert checkpoint_store(tmp_path) == store  # the newest entry is what Spark restores


def test_a_new_checkpoint_has_no_store_and_an_unknown_class_is_named(tmp_path):
    assert checkpoint_store(tmp_path) is None
    (tmp_path / "offsets").mkdir()
    assert checkpoint_store(tmp_path) is None
    (tmp_path / "offsets" / "0").write_text(offset_log({PROVIDER_CONF: "com.example.Store"}))
    assert checkpoint_store(tmp_path) == "com.example.Store"
    (tmp_path / "offsets" / "0").write_text(offset_log({}))  # before Spark recorded it
    assert checkpoint_store(tmp_path) == MEMORY


def test_the_flag_and_its_variable():
    assert parse_options([], {}).state_store == "auto"
    assert parse_options([], {"CONSUMER_STATE_STORE": "memory"}).state_store == "memory"
    assert parse_options(["--state-store", "rocksdb"], {}).state_store == "rocksdb"
    with pytest.raises(SystemExit):
        parse_options(["--state-store", "disk"], {})
