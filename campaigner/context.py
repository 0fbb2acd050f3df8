"""What the runs of one `execute` share: its connections and its broker client,
opened when first needed and closed when it ends."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg

from campaigner import cohort, db
from campaigner.config import Settings
from campaigner.kafka_sink import KafkaSink


class Context:
    """Connections shared by the runs of one invocation, opened when first needed."""

    def __init__(self, settings: Settings, stack: ExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self.control = stack.enter_context(db.connect(settings, purpose="control"))
        self._reader: psycopg.Connection | None = None
        self._sink: KafkaSink | None = None
        self._columns: dict[str, str] | None = None

    @property
    def reader(self) -> psycopg.Connection:
        if self._reader is None:
            self._reader = self.stack.enter_context(
                db.connect(self.settings, purpose="cohort", autocommit=False)
            )
            self._reader.read_only = True
        return self._reader

    @property
    def sink(self) -> KafkaSink:
        if self._sink is None:
            sink = KafkaSink(self.settings)
            sink.connect()
            self._sink = sink
            self.stack.callback(sink.close)
        return self._sink

    def customer_columns(self) -> dict[str, str]:
        if self._columns is None:
            self._columns = cohort.customer_columns(self.control, self.settings)
        return self._columns

    def now(self) -> datetime:
        """The clock deadlines are measured on during a run: the local one, close
        enough to the database's for deadlines of minutes or hours."""
        return datetime.now(UTC)

    def database_now(self) -> datetime:
        with db.translated("reading the clock"):
            row = self.control.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0].astimezone(UTC)  # type: ignore[no-any-return]
