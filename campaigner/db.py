"""PostgreSQL connections: bounded connect, application name, errors translated once."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

import psycopg

from campaigner import errors
from campaigner.config import Settings, mask_url

logger = logging.getLogger(__name__)

APPLICATION_NAME = "campaigner"


def connect(
    settings: Settings, *, purpose: str, autocommit: bool = True
) -> psycopg.Connection:
    """Open a connection, or raise DatabaseError naming the setting to fix."""
    try:
        conn = psycopg.connect(
            settings.database_url,
            connect_timeout=settings.connect_timeout,
            application_name=f"{APPLICATION_NAME} {purpose}",
            autocommit=autocommit,
        )
    except psycopg.Error as exc:
        target = mask_url(settings.database_url) or "libpq defaults (PG* variables)"
        reason = first_line(str(exc)) or type(exc).__name__
        raise errors.DatabaseError(
            f"cannot connect to PostgreSQL at {target}: {reason}"
            " (set DATABASE_URL or CAMPAIGNER_DATABASE_URL, or PGHOST/PGPORT/PGDATABASE)"
        ) from exc
    logger.debug(
        "connected to PostgreSQL for %s", purpose, extra={"event": "db_connected"}
    )
    return conn


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn psycopg's operational errors into DatabaseError("while <action>: ...")."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise errors.DatabaseError(
            f"PostgreSQL failed while {action}: {describe_error(exc)}"
        ) from exc
    except psycopg.errors.UndefinedTable as exc:
        raise errors.DatabaseError(
            f"PostgreSQL failed while {action}: {first_line(str(exc))}"
            " (run `campaigner db upgrade`)"
        ) from exc


# Data exceptions (SQLSTATE class 22) quote the offending value, which may be a
# customer's email or phone number: such values never reach logs or errors.
DATA_EXCEPTION_CLASS = "22"
QUOTED_VALUE = re.compile(r'"[^"]*"')


def describe_error(exc: psycopg.Error) -> str:
    """PostgreSQL's message, first line only, with any quoted data value withheld."""
    message = first_line(str(exc)) or type(exc).__name__
    if (exc.sqlstate or "").startswith(DATA_EXCEPTION_CLASS):
        message = QUOTED_VALUE.sub("(value withheld)", message)
    return message


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
