"""Campaign definitions as operators write them (flags, YAML, TOML): parsed, checked
field by field, compared and written back out. Pure logic; nothing here connects.

A definition names every editable column of `campaigns`. A key left out of a
file means that column's default (no rate limit, no active window, a grace of
15 minutes, ...), so a file describes campaigns completely and `apply` makes
the table match it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from campaigner import cohort, errors
from campaigner.errors import clip, shown
from campaigner.scheduling import Schedule

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Kafka's own rule for topic names (kafka.common.internals.Topic).
TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
CHANNELS = ("email", "sms", "whatsapp", "push")
STATUSES = ("active", "paused", "archived")
BATCH_SIZE_RANGE = (1, 100_000)
# Above this a per-campaign ceiling means nothing: no broker takes it from one client.
RATE_LIMIT_MAX = 1_000_000
DURATION = re.compile(
    r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$"
)
DEFAULT_GRACE = timedelta(minutes=15)
DEFAULT_DEADLINE = timedelta(hours=4)


@dataclasses.dataclass(frozen=True)
class Definition:
    """Every editable column of one campaign."""

    name: str
    schedule: str
    cohort: str
    channel: str
    topic: str
    timezone: str = "UTC"
    status: str = "active"
    template: Any = dataclasses.field(default_factory=dict)
    message_fields: tuple[str, ...] = ()
    batch_size: int = 5000
    active_from: datetime | None = None
    active_until: datetime | None = None
    grace: timedelta = DEFAULT_GRACE
    deadline: timedelta = DEFAULT_DEADLINE
    # Messages per second; None means unlimited.
    rate_limit: int | None = None


FIELDS = tuple(field.name for field in dataclasses.fields(Definition))
REQUIRED = ("name", "schedule", "cohort", "channel", "topic")


PROBLEM_LIMIT = 400


class InvalidDefinition(errors.UsageError):
    """A campaign definition was refused; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        # Each problem already clips the values it shows; this bounds the rest
        # (a message quoting a long schedule or cohort, say).
        problems = [clip(problem, PROBLEM_LIMIT) for problem in problems]
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"{problems[0]} (nothing was written)")
            return
        listed = "".join(f"\n  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problems, nothing was written:{listed}")


# -- durations -----------------------------------------------------------------


def parse_duration(value: Any) -> timedelta:
    """'15m', '4h', '1h30m', '2d', '90s', or a whole number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"{shown(value)} is not a duration such as '90s', '15m', '4h', '1h30m' or '2d'"
        )
    parts = {unit: int(amount or 0) for unit, amount in match.groupdict().items()}
    return timedelta(
        days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"]
    )


def format_duration(value: timedelta) -> str:
    """The shortest text parse_duration reads back as `value` ('1h30m')."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    text = ""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        text += f"{amount}{unit}" if amount else ""
    return text


def parse_instant(value: Any) -> datetime:
    """An ISO time (UTC without an offset), or a TOML/YAML datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{shown(value)} is not an ISO time such as 2026-12-01T00:00Z"
            ) from None
    else:
        raise ValueError(f"{shown(value)} is not an ISO time such as 2026-12-01T00:00Z")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# -- reading a mapping (a file's entry, or flags) ------------------------------


def from_mapping(raw: Mapping[str, Any], *, where: str) -> Definition:
    """A Definition from a file entry; every problem is listed, none is guessed."""
    problems: list[str] = []
    name = raw.get("name")
    label = f"campaign {shown(name)}" if isinstance(name, str) else "a campaign"
    label = f"{where}: {label}" if where else label
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        problems.append(
            f"{label}: unknown key(s) {', '.join(clip(str(key)) for key in unknown)}"
            f" (known: {', '.join(FIELDS)})"
        )
    missing = [key for key in REQUIRED if raw.get(key) in (None, "")]
    if missing:
        problems.append(f"{label}: missing {', '.join(missing)}")
    values: dict[str, Any] = {}
    for key in FIELDS:
        if key in raw and raw[key] is not None and key not in unknown:
            try:
                values[key] = convert(key, raw[key])
            except ValueError as exc:
                problems.append(f"{label}: {key}: {exc}")
    if problems:
        raise InvalidDefinition(problems)
    return Definition(**values)


def convert(key: str, value: Any) -> Any:
    """One value of a file or flag, typed as Definition wants it."""
    if key in ("grace", "deadline"):
        return parse_duration(value)
    if key in ("active_from", "active_until"):
        return parse_instant(value)
    if key in ("batch_size", "rate_limit"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {shown(value)}")
        return value
    if key == "message_fields":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(
            isinstance(item, str) for item in value
        ):
            raise ValueError(f"must be a list of column names, got {shown(value)}")
        return tuple(value)
    if key == "template":
        json.dumps(value, default=reject_unserialisable)
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {shown(value)}")
    return value


def reject_unserialisable(value: Any) -> Any:
    raise ValueError(f"template holds {shown(value)}, which is not a JSON value")


def to_mapping(definition: Definition, *, complete: bool = False) -> dict[str, Any]:
    """The definition as a file holds it: defaults and empty values left out
    (unless `complete`), durations as text, times as ISO text (so YAML and TOML
    read back alike)."""
    out: dict[str, Any] = {}
    defaults = Definition(name="", schedule="", cohort="", channel="", topic="")
    for key in FIELDS:
        value = getattr(definition, key)
        if value is None or (
            not complete
            and key not in REQUIRED
            and key != "status"
            and value == getattr(defaults, key)
        ):
            continue
        if isinstance(value, timedelta):
            value = format_duration(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


# -- checking ------------------------------------------------------------------


def problems_of(definition: Definition) -> list[str]:
    """Everything wrong with a definition that can be told without a database."""
    found: list[str] = []
    label = f"campaign {shown(definition.name)}"
    if not NAME.match(definition.name):
        found.append(
            f"{label}: name must be 1 to 128 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    try:
        Schedule.parse(definition.schedule, definition.timezone)
    except errors.InvalidSchedule as exc:
        found.append(f"{label}: {exc.message}")
    try:
        cohort.check_cohort_shape(definition.name, definition.cohort)
        cohort.check_fields(definition.name, list(definition.message_fields))
    except errors.InvalidCohort as exc:
        found.append(exc.message)
    found.extend(f"{label}: {problem}" for problem in field_problems(definition))
    return found


def field_problems(d: Definition) -> list[str]:
    found = []
    if d.channel not in CHANNELS:
        found.append(
            f"channel must be one of {', '.join(CHANNELS)}, not {shown(d.channel)}"
        )
    if d.status not in STATUSES:
        found.append(
            f"status must be one of {', '.join(STATUSES)}, not {shown(d.status)}"
        )
    if not TOPIC.match(d.topic) or d.topic in (".", ".."):
        found.append(
            f"topic {shown(d.topic)} is not a Kafka topic name (1 to 249 letters, digits,"
            " '.', '_' or '-', and not '.' or '..')"
        )
    low, high = BATCH_SIZE_RANGE
    if not low <= d.batch_size <= high:
        found.append(f"batch_size must be {low} to {high:,}, not {d.batch_size}")
    if d.rate_limit is not None and not 1 <= d.rate_limit <= RATE_LIMIT_MAX:
        found.append(
            f"rate_limit must be 1 to {RATE_LIMIT_MAX:,} messages per second"
            f" (or left out for unlimited), not {d.rate_limit}"
        )
    if d.active_from and d.active_until and d.active_from >= d.active_until:
        found.append("active_from must be before active_until")
    if d.grace < timedelta(0):
        found.append("grace must not be negative")
    if d.deadline <= timedelta(0):
        found.append("deadline must be longer than 0s")
    if len(set(d.message_fields)) != len(d.message_fields):
        found.append("message_fields lists a column twice")
    return found


def check(definition: Definition) -> None:
    problems = problems_of(definition)
    if problems:
        raise InvalidDefinition(problems)


# -- comparing -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Change:
    """One field whose value differs between the table and the file."""

    field: str
    old: Any
    new: Any


def differences(current: Definition, wanted: Definition) -> list[Change]:
    """The fields that differ, in the order of FIELDS, with values as files show them."""
    old, new = to_mapping(current), to_mapping(wanted)
    return [
        Change(key, old.get(key), new.get(key))
        for key in FIELDS
        if old.get(key) != new.get(key)
    ]
