"""The cron grammar as cronie reads it: value sets, its two rules that depend on
how a field is written, and the schedule in words."""

from __future__ import annotations

import pytest

from campaigner import crontab


@pytest.mark.parametrize(
    ("expression", "fixed_time", "days_and"),
    [
        ("0 9 * * *", True, True),
        ("0-59/10 2 * * *", True, True),
        ("*/10 2 * * *", False, True),
        ("0 */2 * * *", False, True),
        ("0 9 1,15 * mon", True, False),
        ("0 9 */2 * mon", True, True),
        ("0 9 1 * */1", True, True),
        ("@hourly", False, True),
        ("@daily", True, True),
        ("@weekly", True, True),
    ],
)
def test_parse__cronies_star_rules(
    expression: str, fixed_time: bool, days_and: bool
) -> None:
    parsed = crontab.parse(expression)

    assert (parsed.fixed_time, parsed.days_and) == (fixed_time, days_and)


def test_parse__value_sets() -> None:
    parsed = crontab.parse("0-59/20 */6 1-31/10 JAN-mar,Dec sun,7,Fri")

    assert (
        sorted(parsed.minutes),
        sorted(parsed.hours),
        sorted(parsed.days),
        sorted(parsed.months),
        sorted(parsed.weekdays),
    ) == ([0, 20, 40], [0, 6, 12, 18], [1, 11, 21, 31], [1, 2, 3, 12], [0, 5])


@pytest.mark.parametrize(
    ("expression", "form"),
    [
        ("*/15 9-17 * * mon-fri", ("0,15,30,45 9-17 * * 1-5", False)),
        # OR of two restricted fields.
        ("0 9 1,15 * mon", ("0 9 1,15 * 1", True)),
        # A restricted field allowing every day makes the OR every day.
        ("0 9 1-31 * mon", ("0 9 * * *", True)),
        ("0 9 15 * 0-7", ("0 9 * * *", True)),
        # '*/2' starts with '*': AND.
        (
            "0 9 */2 * mon",
            ("0 9 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 * 1", False),
        ),
    ],
)
def test_croniter_form__plain_ranges_and_day_or(
    expression: str, form: tuple[str, bool]
) -> None:
    assert crontab.parse(expression).croniter_form() == form


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 9 * * *", "At 09:00"),
        (
            "*/15 9-17 * * mon-fri",
            "Every 15 minutes, between 09:00 and 17:59, Monday through Friday",
        ),
        ("0 9 1,15 * mon", "At 09:00, on day 1 and 15 of the month, or on Monday"),
        ("0 9 */2 * mon", "At 09:00, every 2 days, only on Monday"),
        ("0 9 1-31 * mon", "At 09:00"),
        ("@hourly", "Every hour"),
        ("@yearly", "At 00:00, on day 1 of the month, only in January"),
    ],
)
def test_describe__in_words_with_crons_day_rules(expression: str, words: str) -> None:
    assert crontab.describe(crontab.parse(expression)) == words
