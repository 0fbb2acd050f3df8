"""Errors campaigner reports, one family per exit code.

    CampaignerError (1: a bug, or nothing more specific)
    ├── ConfigurationError (3)
    ├── DatabaseError (4)
    │   └── DatabaseBusy (4): a lock held too long; the run can resume
    ├── KafkaError (5)
    │   └── DeliveryError (5): the broker did not confirm a batch
    ├── UsageError (2): a command asked for something that cannot be
    ├── CampaignFailed (6): one campaign cannot run as configured
    │   ├── InvalidSchedule
    │   ├── InvalidCohort
    │   ├── MissingTopic
    │   └── DeadlinePassed
    └── Interrupted (75): stopped by a signal; the run keeps its checkpoint

psycopg and confluent-kafka errors are translated once, where they are raised,
so the CLI only has to map a family to its exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_DATABASE = 4
EXIT_KAFKA = 5
EXIT_CAMPAIGN = 6
EXIT_INTERRUPTED = 75

# When several runs end differently, the most infrastructural cause decides the
# exit code: an operator must first fix what breaks every campaign.
EXIT_PRECEDENCE = (
    EXIT_BUG,
    EXIT_USAGE,
    EXIT_CONFIG,
    EXIT_DATABASE,
    EXIT_KAFKA,
    EXIT_INTERRUPTED,
    EXIT_CAMPAIGN,
)


class CampaignerError(Exception):
    """campaigner failed."""

    exit_code = EXIT_BUG

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)

    @property
    def message(self) -> str:
        return str(self)


class UsageError(CampaignerError):
    """The command cannot do what was asked."""

    exit_code = EXIT_USAGE


class ConfigurationError(CampaignerError):
    """The configuration is invalid."""

    exit_code = EXIT_CONFIG


class DatabaseError(CampaignerError):
    """PostgreSQL is unreachable or failing."""

    exit_code = EXIT_DATABASE


class KafkaError(CampaignerError):
    """Kafka is unreachable or failing."""

    exit_code = EXIT_KAFKA


class DatabaseBusy(DatabaseError):
    """PostgreSQL kept a lock longer than the lock timeout; retrying may succeed."""


class DeliveryError(KafkaError):
    """The broker did not confirm every message of a batch."""


class CampaignFailed(CampaignerError):
    """A campaign cannot run as configured."""

    exit_code = EXIT_CAMPAIGN


class InvalidSchedule(CampaignFailed):
    """The campaign's schedule or timezone is invalid."""


class InvalidCohort(CampaignFailed):
    """The campaign's cohort is invalid."""


class MissingTopic(CampaignFailed):
    """The campaign's Kafka topic does not exist."""


class DeadlinePassed(CampaignFailed):
    """The run's deadline passed before the end of its cohort."""


class Interrupted(CampaignerError):
    """Stopped by a signal."""

    exit_code = EXIT_INTERRUPTED


# A value echoed in a message is cut to this many characters: a file's value
# can be megabytes long, and the message only needs to point at it.
SHOWN_LIMIT = 80


def clip(text: str, limit: int = SHOWN_LIMIT) -> str:
    """`text`, cut to `limit` characters with an ellipsis if longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: object) -> str:
    """A user's value as a message shows it: its repr, clipped."""
    return clip(repr(value))


def worst_exit_code(codes: list[int]) -> int:
    """The exit code that wins when several runs ended differently."""
    present = set(codes)
    for code in EXIT_PRECEDENCE:
        if code in present:
            return code
    return EXIT_OK
