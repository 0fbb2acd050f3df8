"""Settings: flags, then CAMPAIGNER_* variables and the standard ones, then a TOML file.

Secrets (database passwords, SASL credentials) never come from flags: they
come from libpq's own sources (PG* variables, .pgpass), the environment or
the TOML file, and are masked wherever settings are shown.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from campaigner.errors import ConfigurationError

logger = logging.getLogger(__name__)

ENV_PREFIX = "CAMPAIGNER_"
# CAMPAIGNER_KAFKA__SASL_PASSWORD=... sets the librdkafka property sasl.password.
KAFKA_PROPERTY_ENV_PREFIX = "CAMPAIGNER_KAFKA__"
SECRET_WORDS = ("password", "secret", "token", "key")
CONNINFO_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


# Bounds of each timeout, in seconds. PostgreSQL takes whole milliseconds up to
# 2**31 - 1 (and 0 would mean "no timeout"); librdkafka's connection setup
# timeout is at least one second.
TIMEOUT_RANGES = {
    "connect_timeout": (1, 3600),
    "statement_timeout": (0.001, 2_147_483),
    "lock_timeout": (0.001, 2_147_483),
    "kafka_timeout": (1, 86_400),
}
# How many batches may wait for their delivery reports at once: more keeps the
# broker busy while the next batch is read; each one is repeated after a crash.
BATCHES_IN_FLIGHT_RANGE = (1, 64)
# Recipients in a shard of a large run: at least a few batches, so that claiming
# a shard costs little next to sending it.
SHARD_SIZE_RANGE = (1_000, 100_000_000)
FLAGS = {
    "connect_timeout",
    "statement_timeout",
    "kafka_timeout",
    "kafka_bootstrap_servers",
    "max_cohort_cost",
    "shard_threshold",
    "shard_size",
}


def setting_sources(name: str) -> str:
    """Where the operator can set `name`, for error messages."""
    flag = f"--{name.replace('_', '-')} or " if name in FLAGS else ""
    return f"set {flag}{ENV_PREFIX}{name.upper()}, or {name} in the config file"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything campaigner needs to reach its servers and bound its work."""

    # Empty means libpq's defaults (PGHOST, PGDATABASE, ... and .pgpass).
    database_url: str = ""
    connect_timeout: int = 10
    # Bounds each cohort chunk query and each dry-run count.
    statement_timeout: float = 300.0
    lock_timeout: float = 5.0
    customer_table: str = "user_data"
    customer_key: str = "id"
    kafka_bootstrap_servers: str = "localhost:9092"
    # How long a message may wait for the broker's confirmation, and how long
    # reaching the broker may take, before the run fails as retryable.
    kafka_timeout: float = 30.0
    kafka_properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Ceiling on the planner's total cost of reading a cohort once (EXPLAIN);
    # None: no ceiling. Off by default: a cohort is one scan of one table, so
    # any fixed number would refuse every unindexed cohort of a large table or
    # nothing on a small one; the statement timeout is the hard bound.
    max_cohort_cost: float | None = None
    # Batches produced and waiting for their delivery reports at once. Two keep
    # a broker on loopback busy (measured within 3 % of four); each more adds a
    # batch's messages to the producer's memory when the broker pauses, and to
    # what a crash may send twice. Raise it for a broker far away.
    batches_in_flight: int = 2
    # A run whose cohort the planner estimates above this many recipients is
    # split into id-range shards that several executes can share; 0: never.
    shard_threshold: int = 1_000_000
    # Recipients per shard, as estimated (the number of shards is bounded).
    shard_size: int = 250_000

    def __post_init__(self) -> None:
        for name in ("customer_table", "customer_key"):
            if not IDENTIFIER.match(getattr(self, name)):
                raise ConfigurationError(
                    f"{name} must be a plain SQL identifier, got {getattr(self, name)!r}"
                    f" ({setting_sources(name)})"
                )
        for name, (low, high) in TIMEOUT_RANGES.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigurationError(
                    f"{name} must be between {low:g} and {high:g} seconds, got"
                    f" {value!r} ({setting_sources(name)})"
                )
        cost = self.max_cohort_cost
        if cost is not None and not (math.isfinite(cost) and cost > 0):
            raise ConfigurationError(
                f"max_cohort_cost must be a positive number, got {cost!r}"
                f" ({setting_sources('max_cohort_cost')})"
            )
        low, high = BATCHES_IN_FLIGHT_RANGE
        if not low <= self.batches_in_flight <= high:
            raise ConfigurationError(
                f"batches_in_flight must be between {low} and {high}, got"
                f" {self.batches_in_flight!r} ({setting_sources('batches_in_flight')})"
            )
        self.check_sharding()

    def check_sharding(self) -> None:
        if self.shard_threshold < 0:
            raise ConfigurationError(
                f"shard_threshold must be 0 (never shard) or more, got"
                f" {self.shard_threshold!r} ({setting_sources('shard_threshold')})"
            )
        low, high = SHARD_SIZE_RANGE
        if not low <= self.shard_size <= high:
            raise ConfigurationError(
                f"shard_size must be between {low:,} and {high:,}, got"
                f" {self.shard_size!r} ({setting_sources('shard_size')})"
            )

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.shown().items())
        return f"Settings({shown})"

    def shown(self) -> dict[str, Any]:
        """The settings as a dict with every secret masked."""
        values = dataclasses.asdict(self)
        values["database_url"] = mask_url(self.database_url)
        values["kafka_properties"] = mask_properties(self.kafka_properties)
        return values


FIELD_TYPES: dict[str, type] = {
    "database_url": str,
    "connect_timeout": int,
    "statement_timeout": float,
    "lock_timeout": float,
    "customer_table": str,
    "customer_key": str,
    "kafka_bootstrap_servers": str,
    "kafka_timeout": float,
    "max_cohort_cost": float,
    "batches_in_flight": int,
    "shard_threshold": int,
    "shard_size": int,
}
KIND_NAMES = {int: "a whole number", float: "a number", str: "text"}
STANDARD_ENV = {
    "database_url": "DATABASE_URL",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
}


def load_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge flags > CAMPAIGNER_* > standard variables > TOML file > defaults."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = Path(environ[f"{ENV_PREFIX}CONFIG"])
    from_file = read_config_file(config_file) if config_file else {}

    values: dict[str, Any] = {}
    for name, kind in FIELD_TYPES.items():
        raw = pick(name, flags or {}, environ, from_file)
        if raw is not None:
            values[name] = convert(name, raw, kind)

    properties = dict(from_file.get("kafka_properties", {}))
    properties.update(kafka_properties_from_env(environ))
    values["kafka_properties"] = {str(k): str(v) for k, v in properties.items()}
    return Settings(**values)


def pick(
    name: str,
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    from_file: Mapping[str, Any],
) -> Any:
    if flags.get(name) is not None:
        return flags[name]
    env_name = f"{ENV_PREFIX}{name.upper()}"
    if environ.get(env_name):
        return environ[env_name]
    if name in STANDARD_ENV and environ.get(STANDARD_ENV[name]):
        return environ[STANDARD_ENV[name]]
    return from_file.get(name)


def convert(name: str, raw: Any, kind: type) -> Any:
    # TOML gives typed values: refuse a bool for a number, or 1.9 for a whole number.
    wrong_type = isinstance(raw, bool) or (
        kind is int and isinstance(raw, float) and not raw.is_integer()
    )
    try:
        if wrong_type:
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{name} must be {KIND_NAMES[kind]}, got {raw!r}"
            f" (check {ENV_PREFIX}{name.upper()} or the config file)"
        ) from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read the TOML file: top-level keys named like the settings, and a [kafka] table
    of librdkafka properties."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read config file {path}: {exc.strerror}"
        ) from exc
    except UnicodeDecodeError:
        raise ConfigurationError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"config file {path} is not valid TOML: {exc}"
        ) from exc

    warn_if_readable_by_others(path)
    unknown = set(document) - set(FIELD_TYPES) - {"kafka"}
    if unknown:
        raise ConfigurationError(
            f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}"
        )
    kafka = document.pop("kafka", {})
    if not isinstance(kafka, dict):
        raise ConfigurationError(
            f"config file {path}: [kafka] must be a table of properties"
        )
    document["kafka_properties"] = kafka
    return document


def warn_if_readable_by_others(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        logger.warning(
            "config file %s can be read by other users; it may hold secrets"
            " (chmod 600 %s)",
            path,
            path,
            extra={"event": "config_file_readable"},
        )


def kafka_properties_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(KAFKA_PROPERTY_ENV_PREFIX) :].lower().replace("_", "."): value
        for name, value in environ.items()
        if name.startswith(KAFKA_PROPERTY_ENV_PREFIX)
    }


def mask_url(url: str) -> str:
    """The connection string with any password replaced, for display."""
    if not url:
        return url
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None and "password=" not in parts.query:
            return url
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hosts = netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
        query = re.sub(r"(password=)[^&]*", r"\1***", parts.query)
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
    # key=value form; a quoted value may hold spaces and escaped quotes.
    return CONNINFO_PASSWORD.sub("password=***", url)


def mask_properties(properties: Mapping[str, str]) -> dict[str, str]:
    return {
        name: "***" if any(word in name for word in SECRET_WORDS) else value
        for name, value in properties.items()
    }
