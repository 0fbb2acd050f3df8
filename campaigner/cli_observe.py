"""Commands that only look: `runs`, `check` and `config`."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import click

from campaigner import errors
from campaigner.cli import (
    EXIT_CODES_HELP,
    build_settings,
    handle_errors,
    parse_instant,
    settings_options,
)
from campaigner.history import DEFAULT_LIMIT, RUN_STATUSES
from campaigner.output import print_json

# libpq reads these itself when no connection string says otherwise.
LIBPQ_VARIABLES = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSSLMODE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGCONNECT_TIMEOUT",
)


@click.command("runs", epilog=EXIT_CODES_HELP)
@click.option(
    "--campaign",
    "campaign_names",
    multiple=True,
    metavar="NAME",
    help="Only this campaign (repeatable).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RUN_STATUSES),
    help="Only runs with this status (repeatable).",
)
@click.option(
    "--since",
    callback=parse_instant,
    metavar="ISO-TIME",
    help="Only slots at or after this time (UTC without an offset).",
)
@click.option(
    "--until",
    callback=parse_instant,
    metavar="ISO-TIME",
    help="Only slots before this time.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="At most this many runs, newest slot first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@settings_options(kafka=False)
@handle_errors
def runs_command(
    campaign_names: tuple[str, ...],
    statuses: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
    **params: Any,
) -> int:
    """Show runs: status, manual or scheduled, counts, checkpoint, attempts, error.

    Attempts above 1 mean the run was resumed after a failure, a signal or a
    crash; the checkpoint is the last user id confirmed by the broker.

    \b
    Examples:
      campaigner runs
      campaigner runs --campaign winback-de --since 2026-12-01
      campaigner runs --status failed --status interrupted --json
    """  # fmt: skip
    from campaigner import db, history, tables

    where = history.RunFilter(campaign_names, statuses, since, until, limit)
    settings = build_settings(params)
    with (
        db.connect(settings, purpose="runs") as conn,
        db.translated("reading runs"),
    ):
        found = history.find_runs(conn, where)
    if as_json:
        print_json(found)
    else:
        tables.print_runs(found)
    return errors.EXIT_OK


@click.command("check", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@settings_options(kafka=True)
@handle_errors
def check_command(as_json: bool, **params: Any) -> int:
    """Check every dependency: database, schema, customer table, campaigns,
    broker, topics. One line each; exits with the code of the worst failure.

    \b
    Examples:
      campaigner check
      campaigner check --json | jq '.[] | select(.ok | not)'
    """
    from campaigner import health, tables

    checks = health.run_checks(build_settings(params))
    if as_json:
        print_json(checks)
    else:
        tables.print_checks(checks)
    return health.exit_code(checks)


@click.command("config", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@settings_options(kafka=True)
@handle_errors
def config_command(as_json: bool, **params: Any) -> int:
    """Show the effective settings, secrets masked; connects to nothing.

    Flags win over CAMPAIGNER_* variables, which win over DATABASE_URL, PG*
    and KAFKA_BOOTSTRAP_SERVERS, which win over the TOML file.

    \b
    Examples:
      campaigner config
      CAMPAIGNER_KAFKA__SASL_PASSWORD=x campaigner config --json
    """
    values = build_settings(params).shown()
    values["libpq_environment"] = {
        name: "***" if name == "PGPASSWORD" else os.environ[name]
        for name in LIBPQ_VARIABLES
        if os.environ.get(name)
    }
    if as_json:
        print_json(values)
    else:
        from campaigner import tables

        tables.print_settings(values)
    return errors.EXIT_OK


def register(group: click.Group) -> None:
    group.add_command(runs_command)
    group.add_command(check_command)
    group.add_command(config_command)
