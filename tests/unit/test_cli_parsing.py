"""Parsing of the CLI's own values, without any server."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import pytest

from campaigner import cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-02T09:00", datetime(2025, 6, 2, 9, 0, tzinfo=UTC)),
        ("2025-06-02T09:00:00Z", datetime(2025, 6, 2, 9, 0, tzinfo=UTC)),
        ("2025-06-02T11:00+02:00", datetime(2025, 6, 2, 9, 0, tzinfo=UTC)),
        ("2025-06-02 09:01:40", datetime(2025, 6, 2, 9, 1, 40, tzinfo=UTC)),
    ],
)
def test_parse_instant__iso_time_in_utc(text: str, expected: datetime) -> None:
    moment = cli.parse_instant(None, None, text)  # type: ignore[arg-type]

    assert (moment, moment.tzinfo if moment else None) == (expected, UTC)


@pytest.mark.parametrize("text", ["2025-13-01", "tomorrow", "09:00", ""])
def test_parse_instant__rejects_what_is_not_an_iso_time(text: str) -> None:
    with pytest.raises(click.BadParameter, match="is not an ISO time"):
        cli.parse_instant(None, None, text)  # type: ignore[arg-type]
