"""Progress bars driven by the run loop's log events, on real servers."""

from __future__ import annotations

import io
import logging
from typing import Any

import psycopg
from rich.console import Console

from campaigner import progress, runner
from campaigner.config import Settings
from tests.conftest import TICK, insert_campaign, insert_users


def terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=120), screen


def test_progress__a_bar_per_run_up_to_the_cohort_size(
    db: psycopg.Connection[Any], settings: Settings, topic: str
) -> None:
    insert_users(db, 1_200)
    insert_campaign(db, name="everyone", topic=topic, batch_size=250)
    insert_campaign(
        db, name="germans", topic=topic, cohort="country = 'DE'", batch_size=50
    )
    console, screen = terminal()

    with progress.showing(settings, console=console) as bars:
        outcomes = runner.execute(settings, at=TICK)

    tasks = {task.fields["campaign"]: task for task in bars.progress.tasks}
    assert [o.status for o in outcomes] == ["succeeded", "succeeded"]
    assert {name: (t.completed, t.total) for name, t in tasks.items()} == {
        "everyone": (1_200, 1_200),
        "germans": (200, 200),
    }
    assert [t.description for t in tasks.values()] == [
        "everyone succeeded",
        "germans succeeded",
    ]
    assert "1200/1200" in screen.getvalue()


def test_progress__gone_after_the_run(settings: Settings) -> None:
    console, _ = terminal()
    root = logging.getLogger("campaigner")

    with progress.showing(settings, console=console) as bars:
        during = bars in root.handlers

    assert (during, bars in root.handlers, root.level) == (True, False, logging.WARNING)


def test_progress__no_console_no_bars(settings: Settings) -> None:
    with progress.showing(settings, console=None) as bars:
        handlers = list(logging.getLogger("campaigner").handlers)

    assert (bars, [h for h in handlers if isinstance(h, progress.RunProgress)]) == (
        None,
        [],
    )
