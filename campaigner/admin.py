"""Writing campaigns: create, update, change status, delete and apply a plan, each
definition checked in full (schedule, cohort against the live table, fields)
before anything is written."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from campaigner import cohort, errors, ledger
from campaigner.campaigns import Campaign, UnknownCampaign
from campaigner.config import Settings
from campaigner.definitions import (
    FIELDS,
    Change,
    Definition,
    InvalidDefinition,
    differences,
    problems_of,
)

EDITABLE = [field for field in FIELDS if field != "name"]


def as_definition(campaign: Campaign) -> Definition:
    values = {field: getattr(campaign, field) for field in FIELDS}
    values["message_fields"] = tuple(campaign.message_fields)
    return Definition(**values)


def load_definitions(conn: psycopg.Connection) -> list[Definition]:
    """Every campaign, archived ones included, in name order."""
    from campaigner.campaigns import COLUMNS

    with conn.cursor(row_factory=class_row(Campaign)) as cur:
        cur.execute(f"SELECT {COLUMNS} FROM campaigns ORDER BY name")
        return [as_definition(campaign) for campaign in cur.fetchall()]


def find_definition(conn: psycopg.Connection, name: str) -> Definition | None:
    return next((d for d in load_definitions(conn) if d.name == name), None)


def check_all(
    conn: psycopg.Connection, settings: Settings, definitions: Sequence[Definition]
) -> None:
    """Raise InvalidDefinition listing every problem of every definition: its own
    fields, then its cohort and message fields against the live customer table."""
    problems: list[str] = []
    names = [d.name for d in definitions]
    problems.extend(
        f"campaign {name!r} is defined more than once"
        for name in sorted({n for n in names if names.count(n) > 1})
    )
    columns = cohort.customer_columns(conn, settings) if definitions else {}
    for definition in definitions:
        problems.extend(problems_of(definition))
        if audience_parses(definition):
            problems.extend(live_problems(conn, settings, definition, columns))
    if problems:
        raise InvalidDefinition(problems)


def audience_parses(definition: Definition) -> bool:
    """Whether the cohort and fields are fit to be shown to PostgreSQL at all."""
    try:
        cohort.check_cohort_shape(definition.name, definition.cohort)
        cohort.check_fields(definition.name, list(definition.message_fields))
    except errors.InvalidCohort:
        return False
    return True


def live_problems(
    conn: psycopg.Connection,
    settings: Settings,
    definition: Definition,
    columns: dict[str, str],
) -> list[str]:
    """The cohort planned (never run) by PostgreSQL in a READ ONLY transaction, so an
    unknown column or a type error is found now rather than at the first run."""
    campaign = Campaign(id=0, **dataclasses.asdict(definition))
    found = []
    try:
        # The cohort's shape already passed: what fails here is about live columns.
        cohort.check_campaign(campaign, columns, settings)
    except errors.CampaignFailed as exc:
        found.append(exc.message)
        # PostgreSQL would only repeat what the checks found, in its own words.
        return found
    try:
        cohort.estimate(
            conn, settings, campaign_name=definition.name, cohort=definition.cohort
        )
    except errors.CampaignFailed as exc:
        found.append(exc.message)
    return found


def column_values(definition: Definition) -> dict[str, Any]:
    values = {field: getattr(definition, field) for field in FIELDS}
    values["template"] = Jsonb(definition.template)
    values["message_fields"] = list(definition.message_fields)
    return values


def insert(conn: psycopg.Connection, definition: Definition) -> None:
    values = column_values(definition)
    try:
        conn.execute(
            sql.SQL("INSERT INTO campaigns ({}) VALUES ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, values)),
                sql.SQL(", ").join(map(sql.Placeholder, values)),
            ),
            values,
        )
    except psycopg.errors.UniqueViolation:
        raise errors.UsageError(
            f"campaign {definition.name!r} exists (created by someone else just now);"
            " nothing was written"
        ) from None


def update(conn: psycopg.Connection, definition: Definition) -> None:
    values = column_values(definition)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(field), sql.Placeholder(field))
        for field in EDITABLE
    )
    conn.execute(
        sql.SQL(
            "UPDATE campaigns SET {}, updated_at = now() WHERE name = %(name)s"
        ).format(assignments),
        values,
    )


def delete(conn: psycopg.Connection, name: str) -> None:
    """Delete a campaign and its run history, unless one of its runs is alive."""
    alive = conn.execute(
        f"""
        SELECT r.id FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
        WHERE c.name = %s AND r.status = 'running' AND {ledger.RUN_LOCK_HELD}
        """,
        [name, ledger.RUN_LOCK_CLASS, ledger.LOCK_KEY_MODULUS],
    ).fetchone()
    if alive is not None:
        raise errors.UsageError(
            f"campaign {name!r} is running right now (run {alive[0]}); pause it,"
            " wait for the run to stop, then delete it"
        )
    conn.execute("DELETE FROM campaigns WHERE name = %s", [name])


def require(conn: psycopg.Connection, name: str) -> Definition:
    found = find_definition(conn, name)
    if found is None:
        raise UnknownCampaign(f"no campaign named {name!r} (see `campaigner list`)")
    return found


# -- plans ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """What apply does to one campaign: create, change, unchanged, delete or keep
    (in the table, not in the file, and no --prune)."""

    action: str
    name: str
    changes: tuple[Change, ...] = ()
    definition: Definition | None = None


def plan(
    current: Sequence[Definition], wanted: Sequence[Definition], *, prune: bool
) -> list[Step]:
    """The steps that make the table hold exactly `wanted` (and, with prune, nothing
    else), in the file's order, then the table's extra campaigns by name."""
    existing = {d.name: d for d in current}
    steps = []
    for definition in wanted:
        old = existing.get(definition.name)
        if old is None:
            steps.append(Step("create", definition.name, definition=definition))
            continue
        changes = tuple(differences(old, definition))
        action = "change" if changes else "unchanged"
        steps.append(Step(action, definition.name, changes, definition))
    named = {d.name for d in wanted}
    for name in sorted(set(existing) - named):
        steps.append(Step("delete" if prune else "keep", name))
    return steps


def carry_out(conn: psycopg.Connection, steps: Sequence[Step]) -> None:
    """Apply every step in one transaction: all of the plan, or none of it."""
    with conn.transaction():
        for step in steps:
            if step.action == "create" and step.definition:
                insert(conn, step.definition)
            elif step.action == "change" and step.definition:
                update(conn, step.definition)
            elif step.action == "delete":
                delete(conn, step.name)
