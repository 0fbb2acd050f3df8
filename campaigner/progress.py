"""Progress bars for runs watched on a terminal, drawn from the run loop's own log
events (run_started, batch_confirmed, run_finished): the run loop knows nothing
of them, and under cron (no terminal) none is drawn.

The total is a count of the cohort, taken when a run starts (a resumed run
starts at what earlier attempts already confirmed).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from campaigner import cohort, db, errors, logs
from campaigner.config import Settings

logger = logging.getLogger(__name__)

RUN_QUERY = """
SELECT c.name, coalesce(r.cohort, c.cohort), r.matched
FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
WHERE r.id = %s
"""


class RateColumn(ProgressColumn):
    """Recipients confirmed per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s")


def new_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


class RunProgress(logging.Handler):
    """A bar per run, advanced by each confirmed batch."""

    def __init__(self, settings: Settings, progress: Progress) -> None:
        super().__init__(level=logging.DEBUG)
        self.settings = settings
        self.progress = progress
        self.tasks: dict[int, TaskID] = {}
        self.conn: psycopg.Connection | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event, run_id = (
                getattr(record, "event", None),
                getattr(record, "run_id", None),
            )
            if run_id is None:
                return
            if event == "run_started":
                self.start(run_id)
            elif event == "batch_confirmed":
                self.advance(run_id, int(getattr(record, "rows", 0)))
            elif event == "run_finished" and run_id in self.tasks:
                status = getattr(record, "status", "finished")
                task = self.tasks[run_id]
                self.progress.update(task, description=f"{self.name_of(task)} {status}")
                self.progress.stop_task(task)
        except Exception:
            self.handleError(record)

    def name_of(self, task: TaskID) -> str:
        return str(self.progress.tasks[task].fields.get("campaign", ""))

    def start(self, run_id: int) -> None:
        name, total, done = self.describe(run_id)
        self.tasks[run_id] = self.progress.add_task(
            name, total=total, completed=done, campaign=name
        )

    # TODO: when other processes share a sharded run, the bar advances with this
    # process's batches only and stops short of the total; read the run's
    # counts back instead once sharded runs are common on terminals.
    def advance(self, run_id: int, rows: int) -> None:
        if run_id not in self.tasks:
            self.start(run_id)
        self.progress.advance(self.tasks[run_id], rows)

    def describe(self, run_id: int) -> tuple[str, int | None, int]:
        """The campaign's name, the cohort's size now, and what is already confirmed."""
        try:
            conn = self.connection()
            row = conn.execute(RUN_QUERY, [run_id]).fetchone()
            if row is None:
                return f"run {run_id}", None, 0
            name, text, done = row
            size = cohort.count(conn, self.settings, campaign_name=name, cohort=text)
            return name, max(size, done), done
        except (errors.CampaignerError, psycopg.Error):
            # The bar only loses its total; the run itself reports any real problem.
            return f"run {run_id}", None, 0

    def connection(self) -> psycopg.Connection:
        if self.conn is None:
            self.conn = db.connect(self.settings, purpose="progress")
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        super().close()


@contextlib.contextmanager
def showing(settings: Settings, *, console: Console | None) -> Iterator[Any]:
    """Draw a bar per run on `console` while the block runs; None draws nothing."""
    if console is None:
        yield None
        return
    progress = new_progress(console)
    handler = RunProgress(settings, progress)
    logs.listen(handler)
    try:
        with progress:
            yield handler
    finally:
        logs.stop_listening(handler)
        handler.close()
