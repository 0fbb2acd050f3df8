"""The cohort read chunk by chunk in key order, each row's message fields turned
into JSON text on the way: the path every run takes.

Most customer columns need nothing but quoting to become JSON, so PostgreSQL
hands over text, integers and booleans as they are, json and jsonb as their
text (never parsed into Python objects), and everything else (timestamps,
arrays, floats, ...) already converted by its own `to_json`; a function compiled
once per run writes each row's fields as one JSON object with no call per value
but the C encoder of the json module for strings.

Each chunk is one short READ ONLY statement, `WHERE (cohort) AND key > after
ORDER BY key LIMIT n`, read whole before any of it is produced: no transaction
stays open while Kafka is waited on, and memory holds one chunk at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from campaigner.cohort import INTEGER_TYPES, reading
from campaigner.config import Settings

logger = logging.getLogger(__name__)

# Rows read per statement: enough that a statement's own cost (a transaction,
# the planner) is spread thin, few enough to hold a chunk in memory at once.
CHUNK_ROWS = 20_000
# How often a reader waiting to hand over a chunk checks whether it should stop.
READ_AHEAD_POLL_S = 0.1

# A batch: (user id as decimal text, the message fields as a JSON object's text).
Rows = list[tuple[str, str]]

JSON_TYPES = frozenset({"json", "jsonb"})
TEXT_TYPES = frozenset({"text", "character varying", "character", "citext", "name"})
# Types read as their text form and sent as a JSON string: a reader gets the
# exact value (numeric keeps its digits, uuid and inet their usual spelling).
AS_TEXT_TYPES = frozenset({"numeric", "uuid", "inet", "cidr", "macaddr", "money"})

# How each kind of column becomes JSON: the SQL that reads it, and a Python
# expression over `value` (never None there) that writes it.
KINDS = {
    "string": ("{}", "quote(value)"),
    "as_text": ("{}::pg_catalog.text", "quote(value)"),
    "hex": ("pg_catalog.encode({}, 'hex')", "quote(value)"),
    "integer": ("{}", "f'{value}'"),
    "boolean": ("{}", "('true' if value else 'false')"),
    "json": ("{}", "value"),
    "to_json": ("pg_catalog.to_json({})", "value"),
}


def kind_of(pg_type: str) -> str:
    """The kind of a column of `pg_type`, as format_type writes it."""
    base = pg_type.split("(")[0].strip()
    if pg_type.endswith("]"):
        return "to_json"
    if base in TEXT_TYPES:
        return "string"
    if base in AS_TEXT_TYPES:
        return "as_text"
    if base == "bytea":
        return "hex"
    if base in INTEGER_TYPES:
        return "integer"
    if base == "boolean":
        return "boolean"
    if base in JSON_TYPES:
        return "json"
    return "to_json"


class FieldEncoder:
    """The SELECT list of a run's message fields, and the function turning fetched
    rows (key, *fields) into (user id text, fields JSON text) pairs."""

    def __init__(self, fields: Sequence[str], columns: Mapping[str, str]) -> None:
        kinds = [kind_of(columns[field]) for field in fields]
        self.expressions = [
            sql.SQL(KINDS[kind][0]).format(sql.Identifier(field))
            for field, kind in zip(fields, kinds, strict=True)
        ]
        self.encode_rows = compile_encoder(fields, kinds)


def compile_encoder(
    fields: Sequence[str], kinds: Sequence[str]
) -> Callable[[Sequence[Sequence[Any]]], Rows]:
    """A function writing every row's fields JSON in one expression, compiled once
    per run, as the standard library's dataclasses and namedtuple compile theirs.

    Only the JSON text of the field names (escaped, then written as Python
    literals with repr) and fixed expressions from KINDS enter the source."""
    parts = []
    for index, (field, kind) in enumerate(zip(fields, kinds, strict=True)):
        name = ("{" if index == 0 else ",") + encode_basestring(field) + ":"
        value = KINDS[kind][1].replace("value", f"row[{index + 1}]")
        parts.append(f"{name!r} + ('null' if row[{index + 1}] is None else {value})")
    body = " + ".join(parts) + " + '}'" if parts else "'{}'"
    source = f"def encode_rows(rows):\n    return [(f'{{row[0]}}', {body}) for row in rows]\n"
    namespace: dict[str, Any] = {"quote": encode_basestring}
    exec(compile(source, "<campaigner fields encoder>", "exec"), namespace)
    encode_rows: Callable[[Sequence[Sequence[Any]]], Rows] = namespace["encode_rows"]
    return encode_rows


def chunk_query(
    settings: Settings,
    encoder: FieldEncoder,
    *,
    cohort: str,
    table: sql.Composable,
    after: int | None,
    limit: int,
    until: int | None = None,
) -> sql.Composed:
    """One chunk: keys above `after` (None: from the first) up to `until` (a
    shard's last key; None: to the end). The cohort sits on lines of its own
    inside parentheses, so a trailing `--` comment cannot swallow the predicates
    around it; the bounds are literals, not parameters, so a `%` in the cohort
    stays a `%`."""
    key = sql.Identifier(settings.customer_key)
    bounds: list[sql.Composable] = []
    if after is not None:
        bounds.append(sql.SQL("\nAND {} > {}").format(key, sql.Literal(after)))
    if until is not None:
        bounds.append(sql.SQL("\nAND {} <= {}").format(key, sql.Literal(until)))
    return sql.SQL(
        "SELECT {columns} FROM {table}\nWHERE (\n{cohort}\n){bounds}\n"
        "ORDER BY {key}\nLIMIT {limit}"
    ).format(
        columns=sql.SQL(", ").join([key, *encoder.expressions]),
        table=table,
        cohort=sql.SQL(cohort),
        bounds=sql.Composed(bounds),
        key=key,
        limit=sql.Literal(limit),
    )


def read_batches(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    campaign_name: str,
    cohort: str,
    encoder: FieldEncoder,
    after: int | None,
    batch_size: int,
    until: int | None = None,
) -> Generator[Rows, None, None]:
    """Yield the cohort's rows after `after` (None: from the first key; up to `until`
    when given) in key order, `batch_size` at a time,
    each row as (user id text, fields JSON text).

    The next chunk is read by a thread while this one is produced, so that
    PostgreSQL's time and the producer's overlap; `conn` belongs to that thread
    until the iterator is exhausted or closed, and must not be in autocommit
    mode: each chunk is read in its own READ ONLY transaction.
    """
    chunk_rows = max(batch_size, CHUNK_ROWS // batch_size * batch_size)
    chunks = read_chunks(
        conn,
        settings,
        campaign_name=campaign_name,
        cohort=cohort,
        encoder=encoder,
        after=after,
        until=until,
        chunk_rows=chunk_rows,
    )
    for rows in read_ahead(chunks):
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]


def read_chunks(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    campaign_name: str,
    cohort: str,
    encoder: FieldEncoder,
    after: int | None,
    until: int | None,
    chunk_rows: int,
) -> Generator[Rows, None, None]:
    while True:
        started = time.monotonic()
        with reading(
            conn, settings, campaign_name=campaign_name, cohort=cohort
        ) as table:
            query = chunk_query(
                settings,
                encoder,
                cohort=cohort,
                table=table,
                after=after,
                until=until,
                limit=chunk_rows,
            )
            with conn.cursor() as cursor:
                # json and jsonb stay text: they are JSON already.
                cursor.adapters.register_loader("json", TextLoader)
                cursor.adapters.register_loader("jsonb", TextLoader)
                cursor.execute(query)
                fetched = cursor.fetchall()
        rows = encoder.encode_rows(fetched)
        logger.debug(
            "read %d rows in %.3fs",
            len(rows),
            time.monotonic() - started,
            extra={"event": "cohort_chunk_read", "rows": len(rows)},
        )
        if rows:
            yield rows
        if len(rows) < chunk_rows:
            return
        after = int(rows[-1][0])


def read_ahead(chunks: Generator[Rows, None, None]) -> Iterator[Rows]:
    """`chunks`, read one ahead by a thread. An error of the reader is raised here;
    closing the iterator stops the reader once its statement in progress ends
    (the statement timeout bounds it) and closes its transaction."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stopping = threading.Event()

    def hand(kind: str, item: Any) -> None:
        while not stopping.is_set():
            try:
                handoff.put((kind, item), timeout=READ_AHEAD_POLL_S)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            for rows in chunks:
                hand("rows", rows)
                if stopping.is_set():
                    break
            hand("end", None)
        except BaseException as exc:  # handed over to be raised by the consumer
            hand("error", exc)
        finally:
            chunks.close()

    reader = threading.Thread(target=read, name="campaigner-cohort-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stopping.set()
        reader.join()
