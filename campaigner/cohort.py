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
from collections.abc import Iterator, Mapping, Sequence

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


# Whether the key column is NOT NULL and alone in a unique, non-partial index.
KEY_IS_UNIQUE = """
SELECT a.attnotnull AND EXISTS (
    SELECT 1 FROM pg_index i
    WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indpred IS NULL
      AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum)
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped
"""


def customer_columns(conn: psycopg.Connection, settings: Settings) -> dict[str, str]:
    """The customer table's columns and their types, or ConfigurationError when the
    table is missing or its key is not a unique, NOT NULL integer column."""
    table = sql.Identifier(settings.customer_table).as_string(conn)
    with conn.transaction():
        rows = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [table],
        ).fetchall()
        keyed = conn.execute(KEY_IS_UNIQUE, [table, settings.customer_key]).fetchone()
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
    if keyed is None or not keyed[0]:
        # Reading in key order past a checkpoint skips every row that shares a
        # key with the last one read, and never reads a NULL key.
        raise errors.ConfigurationError(
            f"customer key {settings.customer_key!r} of {settings.customer_table!r}"
            " must be NOT NULL and unique (a primary key, or a unique index on that"
            " column alone): otherwise recipients would be skipped"
            " (set CAMPAIGNER_CUSTOMER_KEY)"
        )
    return columns


def check_campaign(
    campaign: Campaign,
    columns: dict[str, str],
    settings: Settings,
    *,
    conn: psycopg.Connection | None = None,
) -> Estimate | None:
    """Everything about a campaign's audience that can be checked without reading
    it: the cohort against the allow-list and the live columns, the message
    fields, and, given a connection and a max_cohort_cost, the planner's cost.
    Returns the planner's estimate when it was asked for one."""
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
    if conn is None or settings.max_cohort_cost is None:
        return None
    estimated = estimate(
        conn, settings, campaign_name=campaign.name, cohort=campaign.cohort
    )
    check_cost(campaign.name, estimated, settings)
    return estimated


def check_fields_exist(
    name: str, fields: Sequence[str], columns: dict[str, str], table: str
) -> None:
    unknown = [field for field in fields if field not in columns]
    if unknown:
        raise errors.InvalidCohort(
            f"campaign {name!r}: message field(s) {', '.join(unknown)} are not"
            f" columns of {table!r}"
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
                " pg_catalog.set_config('search_path', %s, true),"
                # JIT compilation of a long cohort can run for many minutes and
                # cannot be interrupted, not even by the statement timeout.
                " pg_catalog.set_config('jit', 'off', true)",
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
