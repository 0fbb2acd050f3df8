"""Applies the numbered SQL files of `sql/` once each, recording them in the database."""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import re

import psycopg

from campaigner import errors

logger = logging.getLogger(__name__)

MIGRATION_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Serialises concurrent upgrades from several hosts; any constant unlikely to be
# used by another application will do.
UPGRADE_LOCK_KEY = 0x63616D70  # "camp"

REFERENCE_TABLE = "user_data"
CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS campaigner_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    found = []
    for entry in importlib.resources.files("campaigner.sql").iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match:
            found.append(
                Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    return sorted(found, key=lambda migration: migration.version)


def reference_schema_sql() -> str:
    """The reference customer table used by the demo and the tests."""
    path = importlib.resources.files("campaigner.sql") / "reference" / "user_data.sql"
    return path.read_text(encoding="utf-8")


def create_reference_table(conn: psycopg.Connection) -> bool:
    """Create the reference customer table unless it exists; True if created."""
    if table_exists(conn, REFERENCE_TABLE):
        return False
    conn.execute(reference_schema_sql())
    return True


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
    return bool(row and row[0])


def applied_versions(conn: psycopg.Connection) -> set[int]:
    if not table_exists(conn, "campaigner_migrations"):
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM campaigner_migrations")}


def pending_migrations(conn: psycopg.Connection) -> list[Migration]:
    done = applied_versions(conn)
    return [
        migration
        for migration in available_migrations()
        if migration.version not in done
    ]


def upgrade(
    conn: psycopg.Connection, *, reference_schema: bool = False
) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", [UPGRADE_LOCK_KEY])
        try:
            conn.execute(CREATE_LEDGER)
            applied = [apply(conn, migration) for migration in pending_migrations(conn)]
            if reference_schema:
                create_reference_table(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [UPGRADE_LOCK_KEY])
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"schema upgrade failed: {exc}".strip()) from exc
    return applied


def apply(conn: psycopg.Connection, migration: Migration) -> Migration:
    with conn.transaction():
        conn.execute(migration.sql)
        conn.execute(
            "INSERT INTO campaigner_migrations (version, name) VALUES (%s, %s)",
            [migration.version, migration.name],
        )
    logger.info(
        "applied migration %03d_%s",
        migration.version,
        migration.name,
        extra={"event": "migration_applied", "version": migration.version},
    )
    return migration
