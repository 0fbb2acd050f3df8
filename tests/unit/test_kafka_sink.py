"""Delivery bookkeeping of a flight and the producer's configuration (no broker)."""

from __future__ import annotations

import confluent_kafka
import pytest

from campaigner import kafka_sink
from campaigner.config import Settings
from campaigner.kafka_sink import Flight, record_delivery


def test_record_delivery__confirmed_permanent_and_transient() -> None:
    flight = Flight(size=5)

    record_delivery(flight, 1, None)
    record_delivery(
        flight,
        2,
        confluent_kafka.KafkaError(confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE),
    )
    record_delivery(
        flight, 3, confluent_kafka.KafkaError(confluent_kafka.KafkaError._MSG_TIMED_OUT)
    )
    record_delivery(
        flight, 4, confluent_kafka.KafkaError(confluent_kafka.KafkaError._TRANSPORT)
    )

    assert (
        flight.confirmed,
        [user_id for user_id, _ in flight.refused],
        flight.transient_failures,
        flight.transient_error is not None,
        flight.pending,
    ) == (1, [2], 2, True, 1)


def test_producer_config__safe_defaults_then_operator_properties() -> None:
    settings = Settings(
        kafka_bootstrap_servers="broker-1:9092,broker-2:9092",
        kafka_timeout=12,
        kafka_properties={"compression.type": "zstd", "security.protocol": "SASL_SSL"},
    )

    config = kafka_sink.producer_config(settings)

    assert {
        key: config[key]
        for key in (
            "bootstrap.servers",
            "enable.idempotence",
            "acks",
            "message.timeout.ms",
            "compression.type",
            "security.protocol",
        )
    } == {
        "bootstrap.servers": "broker-1:9092,broker-2:9092",
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 12_000,
        "compression.type": "zstd",
        "security.protocol": "SASL_SSL",
    }


def test_kafka_sink__unknown_property_is_a_configuration_error() -> None:
    settings = Settings(kafka_properties={"no.such.property": "1"})

    with pytest.raises(kafka_sink.errors.ConfigurationError) as caught:
        kafka_sink.KafkaSink(settings)

    assert "invalid Kafka configuration" in caught.value.message
