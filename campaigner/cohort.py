"""A campaign's audience: the cohort's checks, and its rows read chunk by chunk.

A cohort is untrusted text: it must parse as one expression inside the
allow-list of campaigner.cohort_rules, name only the customer table's columns,
and (with max_cohort_cost) stay under a planner cost, before any run is claimed.

Each chunk is one short READ ONLY transaction over a named server-side cursor,
`WHERE (<cohort>) AND key > checkpoint ORDER BY key LIMIT batch`, so no
transaction stays open while the caller waits for Kafka.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pglast
import psycopg
from psycopg import sql

from campaigner import cohort_rules, errors
from campaigner.campaigns import Campaign
from campaigner.config import IDENTIFIER, Settings
from campaigner.db import describe_error

logger = logging.getLogger(__name__)

SHAPE_PREFIX = "SELECT\n"
# "Program limit exceeded" (SQLSTATE class 54) is the cohort asking too much,
# e.g. repeat(x, 200000000), not the server failing.
PROGRAM_LIMIT_CLASS = "54"
# Clauses that turn "SELECT <expression>" into more than one expression.
FORBIDDEN_CLAUSES = (
    "fromClause", "whereClause", "groupClause", "havingClause", "windowClause",
    "sortClause", "limitCount", "limitOffset", "lockingClause", "withClause",
    "distinctClause", "intoClause", "valuesLists", "larg", "rarg",
)  # fmt: skip


def check_cohort_shape(
    name: str,
    text: str,
    *,
    columns: Mapping[str, str] | None = None,
    table: str = "user_data",
) -> None:
    """Raise InvalidCohort unless `text` is one expression inside the allow-list.

    This is PostgreSQL's own grammar (pglast): a cohort that closes the
    parenthesis around it, stacks a statement, adds clauses, or uses a function,
    operator, cast or node outside campaigner.cohort_rules is refused here, with
    the offending part and its position. With `columns` (the live table's),
    every column it names must be one of them.
    """
    if not text.strip():
        raise errors.InvalidCohort(f"campaign {name!r}: cohort is empty")
    try:
        check_parsed(name, text, columns=columns, table=table)
    except RecursionError:
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort is nested too deeply to be checked; simplify it"
        ) from None


def check_parsed(
    name: str, text: str, *, columns: Mapping[str, str] | None, table: str
) -> None:
    try:
        statements = pglast.parse_sql(f"{SHAPE_PREFIX}{text}")
    except pglast.parser.ParseError as exc:
        message, index = exc.args[0], exc.args[1] if len(exc.args) > 1 else None
        # "at or near" quotes the rest of the text: keep the message on one line.
        message = " ".join(str(message).split())
        where = f" (position {index - len(SHAPE_PREFIX) + 1})" if index else ""
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort is not valid SQL: {message}{where}"
        ) from None
    if any(token.name == "ASCII_59" for token in pglast.parser.scan(text)):
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort must be one expression; remove the ';'"
        )
    select = statements[0].stmt if len(statements) == 1 else None
    if not isinstance(select, pglast.ast.SelectStmt):
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort must be one boolean expression, not statements"
        )
    used = [clause for clause in FORBIDDEN_CLAUSES if getattr(select, clause, None)]
    targets = select.targetList or ()
    if not used and not targets:
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort has no expression, only comments"
        )
    if used or len(targets) != 1 or targets[0].name:
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort must be one boolean expression"
            " (it may not add clauses such as FROM, ORDER BY or a second column)"
        )
    try:
        cohort_rules.check_expression(
            targets[0].val, offset=len(SHAPE_PREFIX), columns=columns, table=table
        )
    except cohort_rules.Refused as refused:
        raise errors.InvalidCohort(
            f"campaign {name!r}: {refused.violation.describe()}"
        ) from None


def check_fields(name: str, fields: Sequence[str | None]) -> None:
    for field in fields:
        if field is None or not IDENTIFIER.match(field):
            raise errors.InvalidCohort(
                f"campaign {name!r}: message field {field!r} is not a column name"
            )


# Key types whose values order like numbers and fit the bigint checkpoint.
INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})


def customer_columns(conn: psycopg.Connection, settings: Settings) -> dict[str, str]:
    """The customer table's columns and their types, or ConfigurationError when the
    table is missing or its key is not an integer column."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [sql.Identifier(settings.customer_table).as_string(conn)],
        ).fetchall()
    columns = {name: kind for name, kind in rows}
    if not columns:
        raise errors.ConfigurationError(
            f"customer table {settings.customer_table!r} not found"
            " (set CAMPAIGNER_CUSTOMER_TABLE, or create the reference one with"
            " `campaigner db upgrade --reference-schema`)"
        )
    key_type = columns.get(settings.customer_key)
    if key_type not in INTEGER_TYPES:
        raise errors.ConfigurationError(
            f"customer key {settings.customer_key!r} of {settings.customer_table!r}"
            f" must be an integer column, not {key_type or 'missing'}"
            " (set CAMPAIGNER_CUSTOMER_KEY)"
        )
    return columns


def check_campaign(
    campaign: Campaign,
    columns: dict[str, str],
    settings: Settings,
    *,
    conn: psycopg.Connection | None = None,
) -> None:
    """Everything about a campaign's audience that can be checked without reading
    it: the cohort against the allow-list and the live columns, the message
    fields, and, given a connection and a max_cohort_cost, the planner's cost."""
    check_cohort_shape(
        campaign.name,
        campaign.cohort,
        columns=columns,
        table=settings.customer_table,
    )
    check_fields(campaign.name, campaign.message_fields)
    check_fields_exist(
        campaign.name, campaign.message_fields, columns, settings.customer_table
    )
    if conn is not None and settings.max_cohort_cost is not None:
        check_cost(
            campaign.name,
            estimate(
                conn, settings, campaign_name=campaign.name, cohort=campaign.cohort
            ),
            settings,
        )


def check_fields_exist(
    name: str, fields: Sequence[str], columns: dict[str, str], table: str
) -> None:
    unknown = [field for field in fields if field not in columns]
    if unknown:
        raise errors.InvalidCohort(
            f"campaign {name!r}: message field(s) {', '.join(unknown)} are not"
            f" columns of {table!r}"
        )


def select_query(
    settings: Settings,
    *,
    cohort: str,
    fields: Sequence[str],
    after: int,
    limit: int,
    table: sql.Composable,
    until: int | None = None,
) -> sql.Composed:
    """One chunk's query. The cohort sits on lines of its own inside parentheses,
    so a trailing `--` comment cannot swallow the predicates around it; the bounds
    are literals, not parameters, so a `%` in the cohort stays a `%`. `until`
    (a shard's last key) bounds the keys from above."""
    key = sql.Identifier(settings.customer_key)
    columns = sql.SQL(", ").join([key, *(sql.Identifier(field) for field in fields)])
    upper: sql.Composable = sql.SQL("")
    if until is not None:
        upper = sql.SQL("\nAND {key} <= {until}").format(
            key=key, until=sql.Literal(until)
        )
    return sql.SQL(
        "SELECT {columns} FROM {table}\nWHERE (\n{cohort}\n)\n"
        "AND {key} > {after}{upper}\nORDER BY {key}\nLIMIT {limit}"
    ).format(
        columns=columns,
        table=table,
        cohort=sql.SQL(cohort),
        key=key,
        after=sql.Literal(after),
        upper=upper,
        limit=sql.Literal(limit),
    )


def count_query(*, cohort: str, table: sql.Composable) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {table}\nWHERE (\n{cohort}\n)").format(
        table=table,
        cohort=sql.SQL(cohort),
    )


def plan_query(
    settings: Settings, *, cohort: str, table: sql.Composable
) -> sql.Composed:
    """The whole cohort read once, as the cost guard asks the planner about it."""
    return sql.SQL(
        "EXPLAIN (FORMAT JSON) SELECT {key} FROM {table}\nWHERE (\n{cohort}\n)"
    ).format(
        key=sql.Identifier(settings.customer_key),
        table=table,
        cohort=sql.SQL(cohort),
    )


@dataclasses.dataclass(frozen=True)
class Estimate:
    """The planner's estimate for reading a whole cohort once."""

    cost: float
    rows: int


def estimate(
    conn: psycopg.Connection, settings: Settings, *, campaign_name: str, cohort: str
) -> Estimate:
    """EXPLAIN (no ANALYZE: nothing is executed) of the whole cohort."""
    with reading(conn, settings, campaign_name=campaign_name, cohort=cohort) as table:
        row = conn.execute(plan_query(settings, cohort=cohort, table=table)).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return Estimate(cost=float(plan["Total Cost"]), rows=int(plan["Plan Rows"]))


def check_cost(name: str, estimated: Estimate, settings: Settings) -> None:
    """Raise InvalidCohort when the plan costs more than max_cohort_cost."""
    ceiling = settings.max_cohort_cost
    if ceiling is not None and estimated.cost > ceiling:
        raise errors.InvalidCohort(
            f"campaign {name!r}: the cohort's estimated cost {estimated.cost:.0f}"
            f" (about {estimated.rows} rows) is above max_cohort_cost {ceiling:g};"
            " narrow it with an indexed condition, or raise --max-cohort-cost or"
            " CAMPAIGNER_MAX_COHORT_COST"
        )


def read_batches(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    campaign_name: str,
    cohort: str,
    fields: Sequence[str],
    after: int,
    batch_size: int,
    until: int | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield the cohort's rows after `after` (up to `until`, when given) in key
    order, `batch_size` at a time.

    `conn` must not be in autocommit mode; each batch is read in its own
    READ ONLY transaction, closed before the batch is yielded.
    """
    while True:
        started = time.monotonic()
        with (
            reading(
                conn, settings, campaign_name=campaign_name, cohort=cohort
            ) as table,
            conn.cursor(name="campaigner_cohort") as cursor,
        ):
            query = select_query(
                settings,
                cohort=cohort,
                fields=fields,
                after=after,
                limit=batch_size,
                table=table,
                until=until,
            )
            cursor.execute(query)
            rows = cursor.fetchmany(batch_size)
        logger.debug(
            "read %d rows in %.3fs",
            len(rows),
            time.monotonic() - started,
            extra={"event": "cohort_chunk_read", "rows": len(rows)},
        )
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


def count(
    conn: psycopg.Connection, settings: Settings, *, campaign_name: str, cohort: str
) -> int:
    """How many customers the cohort matches now."""
    with reading(conn, settings, campaign_name=campaign_name, cohort=cohort) as table:
        row = conn.execute(count_query(cohort=cohort, table=table)).fetchone()
    return int(row[0]) if row else 0


# Only PostgreSQL's own functions, operators and types resolve in a cohort:
# pg_catalog is searched first and alone (pg_temp, listed last, is never
# searched for functions or operators), so nothing created in another schema
# can shadow `=` or `lower` with an overload that matches a column's type
# better. The customer table is named with its schema instead.
COHORT_SEARCH_PATH = "pg_catalog, pg_temp"
TABLE_SCHEMA = (
    "SELECT n.nspname FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = pg_catalog.to_regclass(%s)"
)


@contextlib.contextmanager
def reading(
    conn: psycopg.Connection, settings: Settings, *, campaign_name: str, cohort: str
) -> Iterator[sql.Composable]:
    """A READ ONLY transaction bounded by the statement and lock timeouts, on
    PostgreSQL's built-ins only, with its errors translated. Yields the customer
    table's name qualified by its schema."""
    try:
        with conn.transaction():
            table = qualified_table(conn, settings)
            # Set in every transaction, before the cohort is parsed: pglast
            # parses strings as if standard_conforming_strings were on.
            conn.execute(
                "SELECT pg_catalog.set_config('statement_timeout', %s, true),"
                " pg_catalog.set_config('lock_timeout', %s, true),"
                " pg_catalog.set_config('standard_conforming_strings', 'on', true),"
                " pg_catalog.set_config('search_path', %s, true)",
                [
                    f"{int(settings.statement_timeout * 1000)}ms",
                    f"{int(settings.lock_timeout * 1000)}ms",
                    COHORT_SEARCH_PATH,
                ],
            )
            yield table
    except psycopg.Error as exc:
        raise translate(
            exc, settings, campaign_name=campaign_name, cohort=cohort
        ) from exc


def qualified_table(conn: psycopg.Connection, settings: Settings) -> sql.Composable:
    """The customer table as the connection's own search_path finds it, with its
    schema, so that it is still found under the cohorts' search_path."""
    name = settings.customer_table
    row = conn.execute(TABLE_SCHEMA, [sql.Identifier(name).as_string(conn)]).fetchone()
    if row is None:
        raise errors.ConfigurationError(
            f"customer table {name!r} not found (set CAMPAIGNER_CUSTOMER_TABLE)"
        )
    return sql.Identifier(row[0], name)


def translate(
    exc: psycopg.Error, settings: Settings, *, campaign_name: str, cohort: str
) -> errors.CampaignerError:
    """The cohort's fault is InvalidCohort (this campaign fails, others go on);
    the server's is DatabaseError (the invocation stops)."""
    table = settings.customer_table
    message = describe_error(exc, known_text=f"{cohort}\n{table}")
    if isinstance(exc, psycopg.errors.UndefinedTable) and f'"{table}"' in message:
        return errors.ConfigurationError(
            f"customer table {table!r} not found: {message}"
            " (set CAMPAIGNER_CUSTOMER_TABLE)"
        )
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return errors.InvalidCohort(
            f"campaign {campaign_name!r}: cohort query was cancelled ({message});"
            " simplify the cohort or raise CAMPAIGNER_STATEMENT_TIMEOUT"
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return errors.DatabaseBusy(
            f"campaign {campaign_name!r}: the customer table stayed locked longer"
            f" than the lock timeout ({message}); the run can be resumed"
        )
    if (exc.sqlstate or "").startswith(PROGRAM_LIMIT_CLASS):
        return errors.InvalidCohort(
            f"campaign {campaign_name!r}: PostgreSQL rejected the cohort: {message}"
        )
    if isinstance(exc, psycopg.OperationalError | psycopg.errors.AdminShutdown):
        return errors.DatabaseError(
            f"campaign {campaign_name!r}: PostgreSQL failed while reading the"
            f" cohort: {message}"
        )
    return errors.InvalidCohort(
        f"campaign {campaign_name!r}: PostgreSQL rejected the cohort: {message}"
    )
