"""Cron expressions as the system cron (cronie, Vixie and Debian cron) reads them.

Five fields, each a comma list of `*`, `N`, `N-M`, `*/S` or `N-M/S`, month and
day-of-week names in English, and the `@` aliases. Everything other cron
dialects add (seconds or year fields, `?`, `L`, `W`, `#`, `H`, `R`, `~`, a step
after a single value) is refused with the reason, because system cron would
refuse it too or, worse, some library would quietly read it differently.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from collections.abc import Callable

from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)

from campaigner.errors import InvalidSchedule

# The aliases cronie accepts (`@reboot` aside: it has no slot), as the fields
# they stand for. Only @hourly counts as a wildcard-hour schedule, as in cronie.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


MONTH_NAMES = tuple(name.lower() for name in calendar.month_abbr[1:])
# Sunday is both 0 and 7, as in cronie's table of names.
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day-of-month", 1, 31),
    Field("month", 1, 12, MONTH_NAMES),
    Field("day-of-week", 0, 7, DAY_NAMES),
)

# One element of a field's comma list: `*` or a value or a range, then a step.
ELEMENT = re.compile(
    r"(?:(?P<star>\*)|(?P<first>[0-9a-z]+)(?:-(?P<last>[0-9a-z]+))?)"
    r"(?:/(?P<step>[0-9]+))?"
)

# Syntax of other cron dialects, with what to write instead.
FOREIGN_SYNTAX = (
    ("?", "'?' is Quartz syntax, not cron; write '*'"),
    ("#", "'#' (the nth weekday of the month) is not cron syntax"),
    ("~", "'~' (a random value) is not understood by every system cron"),
)
FOREIGN_LETTERS = {
    "l": "'L' (the last day) is not cron syntax",
    "lw": "'LW' (the last weekday) is not cron syntax",
    "w": "'W' (the nearest weekday) is not cron syntax",
    "h": "'H' (a hashed value) is not cron syntax",
    "r": "'R' (a random value) is not cron syntax",
}


@dataclasses.dataclass(frozen=True)
class CronExpression:
    """The sets of values a cron expression allows, and cronie's two rules that
    depend on how it was written rather than on those sets."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday; a 7 is folded into 0
    # cronie ANDs day-of-month and day-of-week when either field starts with
    # '*' (even '*/2'), and ORs them otherwise.
    days_and: bool
    # Neither minute nor hour starts with '*': cronie's daylight-saving rules
    # for fixed-time jobs apply (see scheduling.py).
    fixed_time: bool

    @property
    def fields(self) -> list[str]:
        """The five fields as written (an alias's as it stands for)."""
        return ALIASES.get(self.text, self.text).split(" ")

    def croniter_form(self) -> tuple[str, bool]:
        """An equivalent expression made of plain ranges, and croniter's
        `day_or`: croniter then applies the sets exactly as parsed here."""
        days, weekdays = self.days, self.weekdays
        if not self.days_and and (len(days) == 31 or len(weekdays) == 7):
            # One side allows every day, so the OR does too; croniter would
            # read a full list as '*' and drop it from the OR.
            days, weekdays = frozenset(range(1, 32)), frozenset(range(7))
        fields = [self.minutes, self.hours, days, self.months, weekdays]
        text = " ".join(
            as_ranges(values, field)
            for values, field in zip(fields, FIELDS, strict=True)
        )
        return text, not self.days_and


def as_ranges(values: frozenset[int], field: Field) -> str:
    """`*` for every value of the field, else a comma list of ranges."""
    high = 6 if field.name == "day-of-week" else field.high
    if values == frozenset(range(field.low, high + 1)):
        return "*"
    ordered = sorted(values)
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(
        str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs
    )


def parse(expression: str) -> CronExpression:
    """Read a cron expression as cronie does, or raise InvalidSchedule saying why."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text not in ALIASES:
            raise InvalidSchedule(
                f"unknown schedule alias {text!r} (use one of {', '.join(ALIASES)})"
            )
        return parse_fields(text, ALIASES[text].split(" "))
    fields = text.split(" ") if text else []
    if len(fields) != len(FIELDS):
        raise InvalidSchedule(
            f"schedule {text!r} has {len(fields)} fields; cron expressions have"
            " exactly 5 (minute hour day-of-month month day-of-week)"
            + (
                "; a seconds or year field is not cron syntax"
                if len(fields) in (6, 7)
                else ""
            )
        )
    return parse_fields(text, fields)


def parse_fields(text: str, fields: list[str]) -> CronExpression:
    values = [
        parse_field(text, field, raw) for field, raw in zip(FIELDS, fields, strict=True)
    ]
    weekdays = frozenset(day % 7 for day in values[4])
    expression = CronExpression(
        text=text,
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        days_and=fields[2].startswith("*") or fields[4].startswith("*"),
        fixed_time=not (fields[0].startswith("*") or fields[1].startswith("*")),
    )
    check_can_fire(expression)
    return expression


def parse_field(text: str, field: Field, raw: str) -> frozenset[int]:
    values: set[int] = set()
    for element in raw.split(","):
        values.update(parse_element(text, field, element))
    return frozenset(values)


def parse_element(text: str, field: Field, element: str) -> range:
    def refuse(why: str) -> InvalidSchedule:
        return InvalidSchedule(
            f"schedule {text!r}: {field.name} field {element!r}: {why}"
        )

    for mark, why in FOREIGN_SYNTAX:
        if mark in element:
            raise refuse(why)
    match = ELEMENT.fullmatch(element.lower())
    if match is None:
        raise refuse("not a value, a range or a step (such as 5, 1-5, */15, 0-30/10)")
    if match["star"]:
        first, last = field.low, field.high
    else:
        first = parse_value(field, match["first"], refuse)
        last = (
            first
            if match["last"] is None
            else parse_value(field, match["last"], refuse)
        )
        if match["step"] is not None and match["last"] is None:
            raise refuse(
                f"a step needs a range or '*' (write {first}-{field.high}/{match['step']})"
            )
        if first > last:
            raise refuse(f"the range {first}-{last} is reversed (write {last}-{first})")
    step = 1 if match["step"] is None else int(match["step"])
    if step == 0:
        raise refuse("a step of 0 never advances")
    return range(first, last + 1, step)


def parse_value(
    field: Field, token: str, refuse: Callable[[str], InvalidSchedule]
) -> int:
    if token.isdigit():
        value = int(token)
        if not field.low <= value <= field.high:
            raise refuse(f"{value} is out of range ({field.low}-{field.high})")
        return value
    if token in field.names:
        return field.low + field.names.index(token)
    bare = token.lstrip("0123456789")
    if bare in FOREIGN_LETTERS:
        raise refuse(FOREIGN_LETTERS[bare])
    known = f" (names: {', '.join(dict.fromkeys(field.names))})" if field.names else ""
    raise refuse(f"{token!r} is not a number{known}")


# The longest each month can be, leap years included: cron fires on 29 February.
MONTH_LENGTHS = {month: calendar.monthrange(2000, month)[1] for month in range(1, 13)}


def check_can_fire(expression: CronExpression) -> None:
    """Refuse day and month combinations that never occur, such as 30 February.

    Over 28 years every date falls on every weekday, so with AND-ed days only
    the dates matter; OR-ed days always fire on the allowed weekdays.
    """
    if not expression.days_and:
        return
    if any(
        day <= MONTH_LENGTHS[month]
        for month in expression.months
        for day in expression.days
    ):
        return
    months = ", ".join(calendar.month_name[m] for m in sorted(expression.months))
    raise InvalidSchedule(
        f"schedule {expression.text!r} never fires: no day"
        f" {format_values(expression.days)} in {months}"
    )


def format_values(values: frozenset[int]) -> str:
    return ",".join(str(value) for value in sorted(values))


def describe(expression: CronExpression) -> str:
    """The expression in English words (cron-descriptor), with cron's rules
    for days applied first: the library knows only the OR of both days."""
    minute, hour, day, month, weekday = expression.fields
    if not expression.days_and and (
        len(expression.days) == 31 or len(expression.weekdays) == 7
    ):
        day, weekday = "*", "*"  # either side allows every day: so does the OR
    options = Options()
    options.use_24hour_time_format = True
    try:
        if expression.days_and and day != "*" and weekday != "*":
            # Both restricted yet AND-ed, since one starts with '*' ('*/2').
            every_day = ExpressionDescriptor(
                f"{minute} {hour} {day} {month} *", options
            ).get_description()
            weekdays = ExpressionDescriptor(
                f"{minute} {hour} * {month} {weekday}", options
            ).get_day_of_week_description()
            return f"{every_day}{weekdays}"
        return str(
            ExpressionDescriptor(
                f"{minute} {hour} {day} {month} {weekday}", options
            ).get_description()
        )
    except (
        FormatException,
        MissingFieldException,
        WrongArgumentException,
        ValueError,
        KeyError,
        IndexError,
    ):
        # A wording the library cannot produce is no reason to hide the campaign.
        return expression.text
