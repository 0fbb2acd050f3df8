"""PostgreSQL connections: bounded connect, application name, errors translated once."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

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
    except psycopg.ProgrammingError:
        # libpq's parse errors quote the text around the mistake, which may be
        # the password: say only where to look.
        raise errors.ConfigurationError(
            "the database connection string is malformed (check DATABASE_URL or"
            " CAMPAIGNER_DATABASE_URL: a postgresql:// URL or key=value pairs)"
        ) from None
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


# PostgreSQL quotes the values it chokes on, and a cohort can make it choke on
# customer data (`email::int`, `phone::regclass`): such values never reach logs
# or errors. Data exceptions (SQLSTATE class 22) always quote a value.
DATA_EXCEPTION_CLASS = "22"
QUOTED = re.compile(r'"[^"]*"')
EMAIL_LIKE = re.compile(r"[^\s@\"']+@[^\s@\"']+")
PHONE_LIKE = re.compile(r"\+?\d[\d ().-]{5,}\d")
WITHHELD = "(value withheld)"


def database_now(conn: psycopg.Connection) -> datetime:
    """The database's clock: with several hosts, the one that decides the tick."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0].astimezone(UTC)  # type: ignore[no-any-return]


def describe_error(exc: psycopg.Error, *, known_text: str | None = None) -> str:
    """PostgreSQL's message, first line only, with quoted values withheld.

    With `known_text` (the cohort, say), a quoted part is kept only when it
    appears in that text, i.e. when the operator wrote it; otherwise only data
    exceptions are redacted. Anything shaped like an email or a phone number is
    withheld in every case.
    """
    message = first_line(str(exc)) or type(exc).__name__
    if (exc.sqlstate or "").startswith(DATA_EXCEPTION_CLASS) and '"' in message:
        # They end with the value, quoted: withhold from its opening quote on.
        message = message[: message.index('"')] + WITHHELD
    elif known_text is not None:
        message = withhold_quoted(message, known_text)
    message = EMAIL_LIKE.sub(WITHHELD, message)
    return PHONE_LIKE.sub(WITHHELD, message)


def withhold_quoted(message: str, known_text: str) -> str:
    # A value holding double quotes makes the spans ambiguous: withhold from the
    # first quote on.
    if message.count('"') % 2:
        return message[: message.index('"')] + WITHHELD

    def keep_if_known(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if inner and inner in known_text else WITHHELD

    return QUOTED.sub(keep_if_known, message)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
