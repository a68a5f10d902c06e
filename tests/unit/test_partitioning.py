"""The producer's memoized partitioner picks what kafka-python's (and Java's) default does."""

from __future__ import annotations

from kafka.partitioner.default import DefaultPartitioner

from producer.delivery import KeyPartitions


class Cluster:
    """Just enough cluster metadata for DefaultPartitioner."""

    def __init__(self, partitions: int) -> None:
        self._partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"logins"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions


def test_same_partition_as_the_default_partitioner_for_every_key():
    for count in (1, 3, 7, 12):
        ours = KeyPartitions(range(count))
        theirs = DefaultPartitioner()
        cluster = Cluster(count)
        for i in range(3000):
            key = f"user{i}".encode()
            expected = theirs.partition("logins", None, key, None, None, cluster)
            assert ours(key) == expected
            assert ours(key) == expected  # memoized answer, same result


def test_java_client_compatibility_vectors():
    # murmur2 values published by Kafka's Java client tests; partition = positive % count.
    for key, java_murmur2 in [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
    ]:
        assert KeyPartitions(range(1000))(key) == (java_murmur2 & 0x7FFFFFFF) % 1000


def test_memo_is_bounded():
    partitions = KeyPartitions([0, 1, 2])
    partitions.MAX_KEYS = 10
    for i in range(100):
        partitions(f"k{i}".encode())
    assert len(partitions._cache) == 10
