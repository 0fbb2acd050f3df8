"""`db upgrade`: the numbered SQL files, applied once each."""

from __future__ import annotations

from typing import Any

import psycopg

from campaigner import migrations
from tests.conftest import run_cli

CATALOG = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), '', ''
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1, 2, 3
"""


def catalog(url: str) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return (
            conn.execute(CATALOG).fetchall(),
            conn.execute(
                "SELECT version, name, applied_at FROM campaigner_migrations ORDER BY version"
            ).fetchall(),
        )


def test_db_upgrade__twice_changes_nothing(empty_database_url: str) -> None:
    first = run_cli(
        "db", "upgrade", "--reference-schema", database_url=empty_database_url
    )
    after_first = catalog(empty_database_url)

    second = run_cli(
        "db", "upgrade", "--reference-schema", database_url=empty_database_url
    )

    names = [f"{m.version:03d}_{m.name}" for m in migrations.available_migrations()]
    assert first == (
        0,
        "".join(f"applied {name}\n" for name in names)
        + "created the reference table user_data\n",
        "",
    )
    assert second == (0, "schema is up to date\n", "")
    assert catalog(empty_database_url) == after_first
    assert [f"{version:03d}_{name}" for version, name, _ in after_first[1]] == names


def test_db_upgrade__creates_the_tables(empty_database_url: str) -> None:
    run_cli("db", "upgrade", database_url=empty_database_url)

    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
    assert tables == [
        "campaign_run_failures",
        "campaign_run_shards",
        "campaign_runs",
        "campaigner_migrations",
        "campaigns",
    ]


def test_db_upgrade__template_database_matches_a_fresh_upgrade(
    empty_database_url: str, database_url: str
) -> None:
    run_cli("db", "upgrade", "--reference-schema", database_url=empty_database_url)

    assert catalog(empty_database_url)[0] == catalog(database_url)[0]
