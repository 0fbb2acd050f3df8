"""Campaign values as stored in the `campaigns` table, and the queries loading them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row

from campaigner.errors import UsageError

COLUMNS = """
    id, name, status, schedule, timezone, cohort, channel, topic, template,
    message_fields, batch_size, active_from, active_until, grace, deadline, rate_limit
"""


@dataclasses.dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    status: str
    schedule: str
    timezone: str
    cohort: str
    channel: str
    topic: str
    template: Any
    message_fields: list[str]
    batch_size: int
    active_from: datetime | None
    active_until: datetime | None
    grace: timedelta
    deadline: timedelta
    # Messages per second; None means unlimited.
    rate_limit: int | None = None


class UnknownCampaign(UsageError):
    """No campaign has that name."""


def load_campaigns(
    conn: psycopg.Connection, *, statuses: tuple[str, ...]
) -> list[Campaign]:
    """Campaigns with one of `statuses`, in id order."""
    with conn.cursor(row_factory=class_row(Campaign)) as cur:
        cur.execute(
            f"SELECT {COLUMNS} FROM campaigns WHERE status = ANY(%s) ORDER BY id",
            [list(statuses)],
        )
        return cur.fetchall()


def load_campaign(conn: psycopg.Connection, name: str) -> Campaign:
    with conn.cursor(row_factory=class_row(Campaign)) as cur:
        cur.execute(f"SELECT {COLUMNS} FROM campaigns WHERE name = %s", [name])
        campaign = cur.fetchone()
    if campaign is None:
        raise UnknownCampaign(f"no campaign named {name!r} (see `campaigner list`)")
    return campaign
