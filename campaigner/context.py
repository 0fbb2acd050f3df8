"""What the runs of one `execute` share: its connections and its broker client,
opened when first needed and closed when it ends."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import psycopg

from campaigner import cohort, db, errors
from campaigner.config import Settings
from campaigner.kafka_sink import KafkaSink


class Context:
    """Connections shared by the runs of one invocation, opened when first needed."""

    def __init__(self, settings: Settings, stack: ExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self.control = stack.enter_context(db.connect(settings, purpose="control"))
        keep_session_alive(self.control)
        self._reader: psycopg.Connection | None = None
        self._sink: KafkaSink | None = None
        self._columns: dict[str, str] | None = None
        # Set by SIGINT or SIGTERM: the run going on stops after its batch in flight.
        self.stop_signal: signal.Signals | None = None
        # Set by a second signal: nothing more is waited for, not even the broker.
        self.stopped_at_once = False

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
            self.stack.callback(self.close_sink)
        return self._sink

    def close_sink(self) -> None:
        """Wait for the messages on their way, unless a second signal asked to stop
        at once: the next execute sends them again from the run's checkpoint."""
        if self._sink is not None and not self.stopped_at_once:
            self._sink.close()

    def check_stop(self, what: str) -> None:
        """Raise Interrupted if a signal asked to stop; `what` says where it stops."""
        if self.stop_signal is not None:
            raise errors.Interrupted(
                f"stopped by {self.stop_signal.name} {what}; the next execute"
                " resumes what was left unfinished"
            )

    def customer_columns(self) -> dict[str, str]:
        if self._columns is None:
            self._columns = cohort.customer_columns(self.control, self.settings)
        return self._columns

    def database_now(self) -> datetime:
        with db.translated("reading the clock"):
            return db.database_now(self.control)


def keep_session_alive(conn: psycopg.Connection) -> None:
    """The control session holds its runs' advisory locks: a server-side
    idle_session_timeout must not end it between two batches, which would let
    another execute take the run over while this one still sends. Transactions
    are never kept open across waits, so idle_in_transaction_session_timeout
    needs no such care."""
    with db.translated("configuring the control session"):
        conn.execute(
            "SELECT set_config(name, '0', false) FROM pg_settings"
            " WHERE name = 'idle_session_timeout'"
        )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stopping_on_signals(context: Context) -> Iterator[None]:
    """SIGINT and SIGTERM ask the run going on to stop once its batch in flight is
    confirmed and its checkpoint saved; a second signal stops at once."""

    def ask_to_stop(signum: int, _: object) -> None:
        if context.stop_signal is not None:
            context.stopped_at_once = True
            raise KeyboardInterrupt
        context.stop_signal = signal.Signals(signum)

    try:
        previous = {sig: signal.signal(sig, ask_to_stop) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: whoever embeds us handles signals
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
