"""What the operator commands print: a campaign, its runs, an apply plan, health
checks and settings. Rich tables on a terminal, the same facts as plain columns
in a pipe; `--json` is printed by output.print_json."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from campaigner.definitions import Definition, to_mapping
from campaigner.output import console, when

if TYPE_CHECKING:
    from campaigner.admin import Step
    from campaigner.definitions import Change
    from campaigner.health import Check
    from campaigner.history import RunRecord

PLAN_MARKS = {
    "create": "+",
    "change": "~",
    "unchanged": "=",
    "delete": "-",
    "keep": "?",
}


def shown(value: Any) -> str:
    """A field's value as files write it; None (left out) is the default."""
    if value is None:
        return "(default)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def print_definition(definition: Definition, runs: Sequence[RunRecord]) -> None:
    table = Table("field", "value", title=f"campaign {definition.name}")
    for key, value in to_mapping(definition, complete=True).items():
        table.add_row(key, value if isinstance(value, str) else shown(value))
    out = console()
    out.print(table)
    if runs:
        print_runs(runs, title="latest runs")
    else:
        out.print("no runs yet")


def kind(run: RunRecord) -> str:
    return "manual" if run.manual else "scheduled"


def attempts(run: RunRecord) -> str:
    return f"{run.attempts} (resumed)" if run.attempts > 1 else str(run.attempts)


def duration(run: RunRecord) -> str:
    return "-" if run.duration_s is None else f"{run.duration_s:.1f}s"


def shards(run: RunRecord) -> str:
    """A sharded run's progress, e.g. "3/8 done"."""
    if not run.shards_total:
        return "-"
    return f"{run.shards_done}/{run.shards_total} done"


def print_runs(runs: Sequence[RunRecord], *, title: str | None = None) -> None:
    out = console()
    if not runs:
        out.print("no runs match")
        return
    table = Table(
        "run",
        "campaign",
        "slot",
        "kind",
        "status",
        "matched",
        "produced",
        "failed",
        "checkpoint",
        "attempts",
        "shards",
        "duration",
        "error",
        title=title,
    )
    for run in runs:
        table.add_row(
            str(run.id),
            run.campaign,
            when(run.scheduled_for),
            kind(run),
            run.status,
            f"{run.matched:,}",
            f"{run.produced:,}",
            f"{run.failed:,}",
            "-" if run.checkpoint is None else str(run.checkpoint),
            attempts(run),
            shards(run),
            duration(run),
            run.error or "",
        )
    out.print(table)


def print_changes(changes: Sequence[Change], indent: str = "    ") -> None:
    for change in changes:
        click.echo(
            f"{indent}{change.field}: {shown(change.old)} -> {shown(change.new)}"
        )


def print_plan(steps: Sequence[Step]) -> None:
    """One line per campaign, the changed fields below each change."""
    for step in steps:
        label = (
            "not in the file (kept; --prune deletes it)"
            if step.action == "keep"
            else step.action
        )
        click.echo(f"{PLAN_MARKS[step.action]} {step.name}: {label}")
        print_changes(step.changes)
    counts = {action: 0 for action in PLAN_MARKS}
    for step in steps:
        counts[step.action] += 1
    click.echo(
        f"plan: {counts['create']} to create, {counts['change']} to change,"
        f" {counts['unchanged']} unchanged, {counts['delete']} to delete"
    )


def print_checks(checks: Sequence[Check]) -> None:
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.exit_code else "skip")
        click.echo(f"{mark} {check.name}: {check.detail}")


def print_settings(values: Mapping[str, Any]) -> None:
    table = Table("setting", "value")
    for name, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        table.add_row(name, text)
    console().print(table)
