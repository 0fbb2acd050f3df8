"""`check`: one verdict per dependency, each failure with the exit code of its family
(3 configuration, 4 PostgreSQL, 5 Kafka, 6 a campaign's own problem)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import psycopg

from campaigner import admin, db, errors, migrations
from campaigner.config import Settings, mask_url
from campaigner.definitions import InvalidDefinition
from campaigner.kafka_sink import KafkaSink


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    exit_code: int = errors.EXIT_OK


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def skipped(name: str, detail: str) -> Check:
    """Not checked because a check it depends on failed: never reported as ok."""
    return Check(name, False, detail)


def failed(name: str, exc: errors.CampaignerError) -> Check:
    return Check(name, False, exc.message, exc.exit_code)


def run_checks(settings: Settings) -> list[Check]:
    """Database, schema, customer table, active campaigns, broker, topics; a check
    that depends on a failed one is reported as not checked."""
    checks: list[Check] = []
    topics: set[str] = set()
    try:
        conn = db.connect(settings, purpose="check")
    except errors.CampaignerError as exc:
        checks.append(failed("database", exc))
        checks.extend(
            skipped(name, "not checked: no database")
            for name in ("schema", "customer table", "campaigns")
        )
    else:
        with conn:
            checks.append(passed("database", describe_server(conn, settings)))
            checks.extend(database_checks(conn, settings, topics))
    # Which topics to look for is only known once the campaigns were read.
    known = any(
        c.name == "campaigns" and (c.ok or c.exit_code == errors.EXIT_CAMPAIGN)
        for c in checks
    )
    checks.extend(kafka_checks(settings, topics if known else None))
    return checks


def describe_server(conn: psycopg.Connection, settings: Settings) -> str:
    version = conn.info.server_version
    target = mask_url(settings.database_url) or "libpq defaults (PG* variables)"
    return f"PostgreSQL {version // 10000}.{version % 10000} reachable at {target}"


def database_checks(
    conn: psycopg.Connection, settings: Settings, topics: set[str]
) -> Iterator[Check]:
    schema = attempt("schema", lambda: schema_state(conn))
    yield schema
    yield attempt("customer table", lambda: customer_table(conn, settings))
    if schema.ok:
        yield attempt("campaigns", lambda: active_campaigns(conn, settings, topics))
    else:
        yield skipped("campaigns", "not checked: the schema is not up to date")


def attempt(name: str, check: Callable[[], str]) -> Check:
    try:
        return passed(name, check())
    except errors.CampaignerError as exc:
        return failed(name, exc)
    except psycopg.Error as exc:
        return failed(
            name, errors.DatabaseError(f"PostgreSQL failed: {db.describe_error(exc)}")
        )


def schema_state(conn: psycopg.Connection) -> str:
    pending = migrations.pending_migrations(conn)
    if pending:
        names = ", ".join(f"{m.version:03d}_{m.name}" for m in pending)
        raise errors.DatabaseError(
            f"{len(pending)} migration(s) pending: {names} (run `campaigner db upgrade`)"
        )
    return "up to date"


def customer_table(conn: psycopg.Connection, settings: Settings) -> str:
    from campaigner import cohort

    columns = cohort.customer_columns(conn, settings)
    return f"{settings.customer_table!r} has {len(columns)} columns"


def active_campaigns(
    conn: psycopg.Connection, settings: Settings, topics: set[str]
) -> str:
    """Every active campaign valid (its topics are checked with the broker)."""
    active = [d for d in admin.load_definitions(conn) if d.status == "active"]
    topics.update(d.topic for d in active)
    try:
        admin.check_all(conn, settings, active)
    except InvalidDefinition as exc:
        raise errors.CampaignFailed(
            "invalid active campaign(s):"
            + "".join(f"\n       {problem}" for problem in exc.problems)
        ) from None
    return f"{len(active)} active, all valid"


def kafka_checks(settings: Settings, topics: set[str] | None) -> list[Check]:
    """The broker, and the active campaigns' topics (None: they could not be read)."""
    try:
        sink = KafkaSink(settings)
        try:
            sink.connect()
        finally:
            sink.close()
    except errors.CampaignerError as exc:
        return [failed("kafka", exc), Check("topics", False, "not checked")]
    assert sink.topics is not None
    reached = passed("kafka", f"broker reachable at {settings.kafka_bootstrap_servers}")
    if topics is None:
        return [reached, skipped("topics", "not checked: campaigns not read")]
    missing = sorted(topics - sink.topics)
    if missing:
        problem = errors.MissingTopic(
            f"topic(s) of active campaigns missing: {', '.join(missing)}"
            " (create them; campaigner never creates topics)"
        )
        return [reached, failed("topics", problem)]
    return [
        reached,
        passed("topics", f"{len(topics)} topic(s) of active campaigns present"),
    ]


def exit_code(checks: list[Check]) -> int:
    return errors.worst_exit_code([c.exit_code for c in checks if not c.ok])
