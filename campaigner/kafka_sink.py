"""The producer side: idempotent, acks=all, every message confirmed by its delivery report.

A batch is a `Flight`: produced, then waited on until every one of its delivery
reports has arrived. Several flights may be on their way at once; waiting on one
serves the reports of all of them. `flush()`'s return value is never taken as
proof.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import confluent_kafka

from campaigner import errors
from campaigner.config import Settings
from campaigner.envelope import Message

logger = logging.getLogger(__name__)
# librdkafka's own log: every reconnect attempt at ERROR while a broker is down,
# which would bury the one line that matters; shown with -vv only.
client_logger = logging.getLogger("campaigner.librdkafka")

# Refusals that concern one message and will not change on retry: the recipient
# is recorded as failed and the run goes on.
PERMANENT_CODES = frozenset(
    {
        confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE,
        confluent_kafka.KafkaError.INVALID_MSG_SIZE,
        confluent_kafka.KafkaError.INVALID_RECORD,
    }
)
# How long to let the local queue drain when it is full before producing again.
BUFFER_FULL_WAIT_S = 0.05
# Longest single poll while waiting for a flight: a stop signal is seen this fast.
WAIT_POLL_S = 0.1


def producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka properties: safe defaults, then whatever the operator set."""
    timeout_ms = int(settings.kafka_timeout * 1000)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": "campaigner",
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": timeout_ms,
        "socket.connection.setup.timeout.ms": min(timeout_ms, 30_000),
        "compression.type": "lz4",
        "linger.ms": 5,
    }
    config.update(settings.kafka_properties)
    return config


@dataclasses.dataclass
class Flight:
    """One batch on its way to the broker; it grows as its messages are produced."""

    size: int = 0
    confirmed: int = 0
    # (user_id, reason) of recipients refused for good.
    refused: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    # The first error that may go away on retry (broker down, timeout, ...).
    transient_error: str | None = None
    transient_failures: int = 0

    def on_delivery(
        self, error: confluent_kafka.KafkaError | None, message: Any
    ) -> None:
        """librdkafka's delivery report; the key is the recipient's user id."""
        if error is None:  # nearly always: kept to one comparison and one addition
            self.confirmed += 1
        else:
            record_delivery(self, int(message.key()), error)

    @property
    def done(self) -> bool:
        """Every report arrived (confirmed, refused or failed)."""
        return self.pending <= 0

    @property
    def pending(self) -> int:
        return self.size - self.confirmed - len(self.refused) - self.transient_failures


class KafkaSink:
    """Produces flights to one cluster; topics are checked before use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fatal_error: str | None = None
        self.topics: set[str] | None = None
        try:
            self.producer = confluent_kafka.Producer(
                producer_config(settings), error_cb=self.on_error, logger=client_logger
            )
        except confluent_kafka.KafkaException as exc:
            raise errors.ConfigurationError(
                f"invalid Kafka configuration: {exc.args[0].str()}"
            ) from exc

    def on_error(self, error: confluent_kafka.KafkaError) -> None:
        if error.fatal():
            self.fatal_error = error.str()
        logger.debug(
            "Kafka client error: %s", error.str(), extra={"event": "kafka_error"}
        )

    def connect(self) -> None:
        """Reach the cluster and learn its topics, within the Kafka timeout."""
        try:
            metadata = self.producer.list_topics(timeout=self.settings.kafka_timeout)
        except confluent_kafka.KafkaException as exc:
            raise errors.KafkaError(
                f"cannot reach Kafka at {self.settings.kafka_bootstrap_servers}"
                f" within {self.settings.kafka_timeout:g}s: {exc.args[0].str()}"
                " (set KAFKA_BOOTSTRAP_SERVERS or CAMPAIGNER_KAFKA_BOOTSTRAP_SERVERS)"
            ) from exc
        self.topics = {
            name for name, topic in metadata.topics.items() if topic.error is None
        }

    def check_topic(self, campaign_name: str, topic: str) -> None:
        if self.topics is None:
            self.connect()
        assert self.topics is not None
        if topic not in self.topics:
            raise errors.MissingTopic(
                f"campaign {campaign_name!r}: Kafka topic {topic!r} does not exist"
                " (create it; campaigner never creates topics)"
            )

    def send(self, topic: str, messages: Iterable[Message], flight: Flight) -> None:
        """Produce messages into `flight`; their reports arrive while `poll` or
        `wait` serve them."""
        delivered = flight.on_delivery  # one callback for the batch, not one each
        produce = self.producer.produce
        sent = 0
        try:
            for message in messages:
                sent += 1
                try:
                    produce(
                        topic,
                        message.value,
                        message.key,
                        headers=message.headers,
                        on_delivery=delivered,
                    )
                except (BufferError, confluent_kafka.KafkaException):
                    # Tried again where a full queue is waited out and a message
                    # refused for good is recorded.
                    self.produce(topic, message, flight, delivered)
        finally:
            # Counted once, after the loop: reports served early (while a full
            # queue is waited out) count against the flight, and whether it is
            # done is asked only after send returns.
            flight.size += sent
        self.producer.poll(0)

    def poll(self, timeout: float) -> None:
        """Serve delivery reports for up to `timeout` seconds."""
        self.producer.poll(timeout)

    def produce(
        self,
        topic: str,
        message: Message,
        flight: Flight,
        delivered: Callable[[confluent_kafka.KafkaError | None, Any], None],
    ) -> None:
        while True:
            try:
                self.producer.produce(
                    topic,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                    on_delivery=delivered,
                )
                return
            except BufferError:
                # The local queue is full: let delivery reports drain it, never drop.
                self.producer.poll(BUFFER_FULL_WAIT_S)
            except confluent_kafka.KafkaException as exc:
                record_delivery(flight, int(message.key), exc.args[0])
                return

    def wait(self, flight: Flight, *, campaign_name: str, topic: str) -> None:
        """Poll until every report of `flight` has arrived; raise DeliveryError if any
        message was not confirmed for a reason that may go away."""
        # message.timeout.ms bounds each report; the margin covers the last poll.
        deadline = time.monotonic() + self.settings.kafka_timeout + 5
        while flight.pending > 0 and time.monotonic() < deadline:
            # poll(), not flush(): flush would wait for every flight on its way,
            # not just this one. The flight's own count is what proves delivery.
            self.producer.poll(min(WAIT_POLL_S, max(deadline - time.monotonic(), 0)))
            if self.fatal_error:
                break
        problem = self.fatal_error or flight.transient_error
        if flight.pending > 0 and problem is None:
            problem = f"no delivery report within {self.settings.kafka_timeout:g}s"
        if problem is not None:
            raise errors.DeliveryError(
                f"campaign {campaign_name!r}: delivery to topic {topic!r} failed: {problem}"
            )

    def close(self) -> None:
        self.producer.flush(min(self.settings.kafka_timeout, 10))


def record_delivery(
    flight: Flight, user_id: int, error: confluent_kafka.KafkaError | None
) -> None:
    if error is None:
        flight.confirmed += 1
    elif error.code() in PERMANENT_CODES:
        flight.refused.append((user_id, error.str()))
    else:
        flight.transient_failures += 1
        if flight.transient_error is None:
            flight.transient_error = error.str()
