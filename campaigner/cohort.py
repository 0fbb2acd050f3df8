"""A campaign's audience: the cohort's shape check, and its rows read chunk by chunk.

Each chunk is one short READ ONLY transaction over a named server-side cursor,
`WHERE (<cohort>) AND key > checkpoint ORDER BY key LIMIT batch`, so no
transaction stays open while the caller waits for Kafka.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pglast
import psycopg
from psycopg import sql

from campaigner import errors
from campaigner.config import IDENTIFIER, Settings
from campaigner.db import describe_error

logger = logging.getLogger(__name__)

SHAPE_PREFIX = "SELECT\n"
# Clauses that turn "SELECT <expression>" into more than one expression.
FORBIDDEN_CLAUSES = (
    "fromClause", "whereClause", "groupClause", "havingClause", "windowClause",
    "sortClause", "limitCount", "limitOffset", "lockingClause", "withClause",
    "distinctClause", "intoClause", "valuesLists", "larg", "rarg",
)  # fmt: skip


def check_cohort_shape(name: str, text: str) -> None:
    """Raise InvalidCohort unless `text` parses as exactly one SQL expression.

    This is PostgreSQL's own grammar (pglast): a cohort that closes the
    parenthesis around it, stacks a statement, or adds clauses is refused here.
    """
    # TODO: only the shape is checked; functions, sub-queries and other tables
    # are not yet refused by an allow-list. The READ ONLY transaction and the
    # statement timeout still bound what a cohort can do. Remove once the
    # allow-list checker lands.
    if not text.strip():
        raise errors.InvalidCohort(f"campaign {name!r}: cohort is empty")
    try:
        statements = pglast.parse_sql(f"{SHAPE_PREFIX}{text}\n")
    except pglast.parser.ParseError as exc:
        message, index = exc.args[0], exc.args[1] if len(exc.args) > 1 else None
        where = f" (position {index - len(SHAPE_PREFIX) + 1})" if index else ""
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort is not valid SQL: {message}{where}"
        ) from None
    select = statements[0].stmt if len(statements) == 1 else None
    if not isinstance(select, pglast.ast.SelectStmt):
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort must be one boolean expression, not statements"
        )
    used = [clause for clause in FORBIDDEN_CLAUSES if getattr(select, clause, None)]
    targets = select.targetList or ()
    if used or len(targets) != 1 or targets[0].name:
        raise errors.InvalidCohort(
            f"campaign {name!r}: cohort must be one boolean expression"
            " (it may not add clauses such as FROM, ORDER BY or a second column)"
        )


def check_fields(name: str, fields: Sequence[str]) -> None:
    for field in fields:
        if not IDENTIFIER.match(field):
            raise errors.InvalidCohort(
                f"campaign {name!r}: message field {field!r} is not a column name"
            )


def select_query(
    settings: Settings, *, cohort: str, fields: Sequence[str], after: int, limit: int
) -> sql.Composed:
    """One chunk's query. The cohort sits on lines of its own inside parentheses,
    so a trailing `--` comment cannot swallow the predicates around it; the bounds
    are literals, not parameters, so a `%` in the cohort stays a `%`."""
    key = sql.Identifier(settings.customer_key)
    columns = sql.SQL(", ").join([key, *(sql.Identifier(field) for field in fields)])
    return sql.SQL(
        "SELECT {columns} FROM {table}\nWHERE (\n{cohort}\n)\n"
        "AND {key} > {after}\nORDER BY {key}\nLIMIT {limit}"
    ).format(
        columns=columns,
        table=sql.Identifier(settings.customer_table),
        cohort=sql.SQL(cohort),
        key=key,
        after=sql.Literal(after),
        limit=sql.Literal(limit),
    )


def count_query(settings: Settings, *, cohort: str) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {table}\nWHERE (\n{cohort}\n)").format(
        table=sql.Identifier(settings.customer_table),
        cohort=sql.SQL(cohort),
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
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield the cohort's rows after `after` in key order, `batch_size` at a time.

    `conn` must not be in autocommit mode; each batch is read in its own
    READ ONLY transaction, closed before the batch is yielded.
    """
    while True:
        started = time.monotonic()
        query = select_query(
            settings, cohort=cohort, fields=fields, after=after, limit=batch_size
        )
        with (
            reading(conn, settings, campaign_name=campaign_name),
            conn.cursor(name="campaigner_cohort") as cursor,
        ):
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
    with reading(conn, settings, campaign_name=campaign_name):
        row = conn.execute(count_query(settings, cohort=cohort)).fetchone()
    return int(row[0]) if row else 0


class reading:
    """A READ ONLY transaction bounded by the statement and lock timeouts, with
    PostgreSQL's errors translated: the cohort's fault is InvalidCohort, the
    server's is DatabaseError."""

    def __init__(
        self, conn: psycopg.Connection, settings: Settings, *, campaign_name: str
    ):
        self.conn = conn
        self.settings = settings
        self.campaign_name = campaign_name
        self.transaction: Any = None

    def __enter__(self) -> None:
        try:
            self.transaction = self.conn.transaction()
            self.transaction.__enter__()
            self.conn.execute(
                "SELECT set_config('statement_timeout', %s, true),"
                " set_config('lock_timeout', %s, true)",
                [
                    f"{int(self.settings.statement_timeout * 1000)}ms",
                    f"{int(self.settings.lock_timeout * 1000)}ms",
                ],
            )
        except psycopg.Error as exc:
            raise translate(exc, self.campaign_name) from exc

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self.transaction.__exit__(kind, exc, tb)
        except psycopg.Error as error:
            raise translate(error, self.campaign_name) from error
        if isinstance(exc, psycopg.Error):
            raise translate(exc, self.campaign_name) from exc


def translate(exc: psycopg.Error, campaign_name: str) -> errors.CampaignerError:
    message = describe_error(exc)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return errors.InvalidCohort(
            f"campaign {campaign_name!r}: cohort query was cancelled ({message});"
            " simplify the cohort or raise CAMPAIGNER_STATEMENT_TIMEOUT"
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return errors.InvalidCohort(
            f"campaign {campaign_name!r}: cohort query waited too long for a lock ({message})"
        )
    if isinstance(exc, psycopg.OperationalError | psycopg.errors.AdminShutdown):
        return errors.DatabaseError(
            f"PostgreSQL failed while reading the cohort: {message}"
        )
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return errors.DatabaseError(
            f"customer table not found: {message} (set CAMPAIGNER_CUSTOMER_TABLE)"
        )
    return errors.InvalidCohort(
        f"campaign {campaign_name!r}: PostgreSQL rejected the cohort: {message}"
    )
