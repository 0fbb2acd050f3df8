"""What commands print on stdout: rich tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from campaigner.reports import Listing, Preview
    from campaigner.runner import Outcome


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=to_jsonable, indent=2) + "\n")


def console() -> Console:
    # Off a terminal (pipes, cron mail) rich would wrap at 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


def print_execute(outcomes: Sequence[Outcome]) -> None:
    """On a terminal, a table of the runs; under cron, nothing (errors went to the log)."""
    if not sys.stdout.isatty() or not outcomes:
        return
    table = Table(
        "campaign", "slot", "status", "matched", "produced", "failed", "seconds"
    )
    for outcome in outcomes:
        table.add_row(
            outcome.campaign,
            when(outcome.scheduled_for),
            outcome.status,
            *(
                "?" if count is None else str(count)
                for count in (outcome.matched, outcome.produced, outcome.failed)
            ),
            f"{outcome.duration_s:.1f}",
        )
    console().print(table)


def print_previews(tick: dt.datetime, previews: Sequence[Preview]) -> None:
    out = console()
    if not previews:
        out.print(f"tick {when(tick)}: nothing due")
        return
    table = Table(
        "campaign",
        "slot",
        "state",
        "cohort size",
        "estimate",
        "problem",
        title=f"tick {when(tick)}",
    )
    for preview in previews:
        estimate = preview.estimate
        table.add_row(
            preview.campaign,
            when(preview.scheduled_for),
            preview.state,
            "-" if preview.cohort_size is None else str(preview.cohort_size),
            f"cost {estimate.cost:.0f}, ~{estimate.rows} rows" if estimate else "-",
            preview.error or "",
        )
    out.print(table)


def print_listing(listings: Sequence[Listing]) -> None:
    out = console()
    if not listings:
        out.print("no campaigns")
        return
    table = Table(
        "name", "status", "schedule", "timezone", "next fires (local)", "last run"
    )
    for listing in listings:
        last = listing.last_run
        table.add_row(
            listing.name,
            listing.status if listing.error is None else f"{listing.status}, invalid",
            listing.schedule
            + (f"\n{listing.description}" if listing.description else ""),
            listing.timezone,
            listing.error or "\n".join(when(moment) for moment in listing.next_fires),
            f"{last.status} {when(last.scheduled_for)} ({last.produced}/{last.matched})"
            if last
            else "never",
        )
    out.print(table)
