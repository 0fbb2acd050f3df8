"""The cost guard (the planner's estimate, a ceiling checked before the claim) and
the least-privilege role the README describes, on a real server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from campaigner import cohort, reports
from campaigner.config import Settings
from tests.conftest import (
    TICK,
    TICK_TEXT,
    insert_campaign,
    insert_users,
    invoke_cli,
    read_back,
    run_cli,
    run_rows,
    user_ids,
)

USERS = 5_000
# A scan of every customer, and an index lookup of one.
COSTLY = "lower(email) LIKE '%7%'"
CHEAP = "id = 42"


def estimated(settings: Settings, text: str) -> cohort.Estimate:
    with psycopg.connect(settings.database_url, autocommit=False) as conn:
        return cohort.estimate(conn, settings, campaign_name="probe", cohort=text)


@pytest.fixture
def costly_and_cheap(db: psycopg.Connection[Any], topic: str) -> None:
    """Two campaigns due at TICK, on fresh planner statistics."""
    insert_users(db, USERS)
    db.execute("ANALYZE user_data")
    insert_campaign(db, name="costly", topic=topic, cohort=COSTLY)
    insert_campaign(db, name="cheap", topic=topic, cohort=CHEAP)


def test_dry_run__shows_the_planners_estimate_for_each_cohort(
    db: psycopg.Connection[Any], settings: Settings, costly_and_cheap: None
) -> None:
    costly, cheap = estimated(settings, COSTLY), estimated(settings, CHEAP)

    _, previews = reports.dry_run(settings, at=TICK)

    assert {p.campaign: (p.state, p.estimate) for p in previews} == {
        "costly": ("due", costly),
        "cheap": ("due", cheap),
    }
    assert (cheap.rows, cheap.cost < costly.cost, costly.rows > 100) == (1, True, True)


def test_execute__cohort_above_max_cohort_cost_is_refused_before_the_claim(
    db: psycopg.Connection[Any], settings: Settings, topic: str, costly_and_cheap: None
) -> None:
    costly, cheap = estimated(settings, COSTLY), estimated(settings, CHEAP)
    ceiling = (costly.cost + cheap.cost) / 2

    result = invoke_cli(
        "execute",
        "--at",
        TICK_TEXT,
        settings=settings,
        env={"CAMPAIGNER_MAX_COHORT_COST": str(ceiling)},
    )

    messages = read_back(settings.kafka_bootstrap_servers, topic, expected=1)
    naming = [line for line in result.stderr.splitlines() if "'costly'" in line]
    assert result.exit_code == 6
    assert len(naming) == 1, result.stderr
    assert naming[0].split(" ", 2)[2] == (
        f"campaign 'costly': the cohort's estimated cost {costly.cost:.0f}"
        f" (about {costly.rows} rows) is above max_cohort_cost {ceiling:g};"
        " narrow it with an indexed condition, or raise --max-cohort-cost or"
        " CAMPAIGNER_MAX_COHORT_COST"
    )
    assert [(r["status"], r["matched"]) for r in run_rows(db)] == [("succeeded", 1)]
    assert [int(key) for key, _, _ in messages] == [42]


def test_dry_run_cli__max_cohort_cost_marks_the_costly_cohort_invalid(
    db: psycopg.Connection[Any], settings: Settings, costly_and_cheap: None
) -> None:
    costly, cheap = estimated(settings, COSTLY), estimated(settings, CHEAP)
    ceiling = (costly.cost + cheap.cost) / 2

    result = invoke_cli(
        "dry-run", "--at", TICK_TEXT, "--max-cohort-cost", str(ceiling),
        settings=settings,
    )  # fmt: skip

    rows = {
        cells[0]: cells[1:]
        for line in result.stdout.splitlines()
        if line.startswith("│")
        for cells in [[cell.strip() for cell in line.strip("│").split("│")]]
    }
    assert result.exit_code == 6
    assert rows["cheap"][1:4] == ["due", "1", f"cost {cheap.cost:.0f}, ~1 rows"]
    assert rows["costly"][1:4] == [
        "invalid",
        "-",
        f"cost {costly.cost:.0f}, ~{costly.rows} rows",
    ]
    assert rows["costly"][4].startswith("campaign 'costly': the cohort's estimated")
    assert run_rows(db) == []


@pytest.mark.parametrize("value", ["0", "-5", "nan", "lots"])
def test_execute__bad_max_cohort_cost_is_a_configuration_error(
    settings: Settings, value: str
) -> None:
    result = invoke_cli(
        "execute", settings=settings, env={"CAMPAIGNER_MAX_COHORT_COST": value}
    )

    assert result.exit_code == 3
    assert "CAMPAIGNER_MAX_COHORT_COST" in result.stderr


# -- least privilege ------------------------------------------------------------

# The README's grants ("A role that can only read customers"), for a role and
# database of the test's own.
README_GRANTS = """
GRANT CONNECT ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON user_data TO {role};
GRANT SELECT ON campaigns, campaigner_migrations TO {role};
GRANT SELECT, INSERT, UPDATE ON campaign_runs, campaign_run_failures,
    campaign_run_shards TO {role};
"""


@pytest.fixture
def campaigner_role(db: psycopg.Connection[Any], database_url: str) -> Iterator[str]:
    """A LOGIN role with the README's grants; roles are cluster-wide, so the name
    is unique and the role is dropped after the test. Yields its database URL."""
    role = f"campaigner_test_role_{uuid.uuid4().hex[:12]}"
    database = db.info.dbname
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        db.execute(
            sql.SQL(README_GRANTS).format(
                role=sql.Identifier(role), database=sql.Identifier(database)
            )
        )
        yield make_conninfo(database_url, user=role)
    finally:
        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_execute__as_the_readme_role_runs_but_cannot_write_customers_or_read_more(
    db: psycopg.Connection[Any],
    settings: Settings,
    topic: str,
    campaigner_role: str,
) -> None:
    insert_users(db, 300)
    db.execute("CREATE TABLE payment_cards (user_id bigint, number text)")
    insert_campaign(db, name="germany", topic=topic, cohort="country = 'DE'")
    expected = user_ids(db, "country = 'DE'")

    code, stdout, stderr = run_cli(
        "execute",
        "--at",
        TICK_TEXT,
        database_url=campaigner_role,
        kafka_bootstrap=settings.kafka_bootstrap_servers,
    )

    messages = read_back(settings.kafka_bootstrap_servers, topic, len(expected))
    assert (code, stdout, stderr) == (0, "", "")
    assert sorted(int(key) for key, _, _ in messages) == expected
    assert [(r["status"], r["produced"]) for r in run_rows(db)] == [
        ("succeeded", len(expected))
    ]
    with psycopg.connect(campaigner_role, autocommit=True) as conn:
        user = conn.execute("SELECT current_user").fetchone()
        refusals = [
            refused(conn, "UPDATE user_data SET email_consent = true"),
            refused(conn, "DELETE FROM user_data"),
            refused(conn, "SELECT count(*) FROM payment_cards"),
            refused(conn, "UPDATE campaigns SET status = 'paused'"),
        ]
    assert user is not None and user[0].startswith("campaigner_test_role_")
    assert refusals == [
        "permission denied for table user_data",
        "permission denied for table user_data",
        "permission denied for table payment_cards",
        "permission denied for table campaigns",
    ]


def refused(conn: psycopg.Connection[Any], statement: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement)
    return re.sub(r"\s+", " ", str(caught.value).splitlines()[0])
