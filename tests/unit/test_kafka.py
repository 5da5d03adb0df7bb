"""The Kafka adapters' pure parts."""

from __future__ import annotations

import uuid

from kafka.partitioner import DefaultPartitioner

from infra.kafka import RememberingPartitioner


class Cluster:
    """The metadata a partitioner asks: each topic's partitions."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions[topic]))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions_for_topic(topic)


def test_the_remembering_partitioner_chooses_as_the_default_one_also_after_a_topic_grows() -> None:
    remembering, default = RememberingPartitioner(), DefaultPartitioner()
    keys = [str(uuid.uuid4()).encode() for _ in range(200)]
    for cluster in (Cluster({"a": 4, "b": 7}), Cluster({"a": 4, "b": 7}), Cluster({"a": 12, "b": 7})):
        for topic in ("a", "b"):
            for key in keys:
                assert remembering.partition(topic, key, key, None, None, cluster) == default.partition(
                    topic, key, key, None, None, cluster
                )
