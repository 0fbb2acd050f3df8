"""Commands that write campaigns: `campaigns ...`, `show`, `apply` and `export`.

Every definition is checked in full before anything is written; a refused
definition exits 2 (usage: nothing was written, fix the input) and lists every
problem found.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import psycopg

from campaigner import errors
from campaigner.cli import (
    EXIT_CODES_HELP,
    build_settings,
    handle_errors,
    settings_options,
)
from campaigner.config import Settings
from campaigner.definitions import Definition, InvalidDefinition, convert
from campaigner.output import print_json

F = TypeVar("F", bound=Callable[..., Any])

SHOWN_RUNS = 5
CLEARS = ("none", "unlimited", "")


def definition_options(*, creating: bool) -> Callable[[F], F]:
    """The fields of a campaign as options; required ones only when creating."""
    needed = creating
    options = [
        click.option("--schedule", required=needed, help="5-field cron expression or @daily, @hourly, ..."),
        click.option("--timezone", help="IANA name the schedule is evaluated in [default: UTC]."),
        click.option("--cohort", required=needed, help="SQL boolean expression over the customer table."),
        click.option("--channel", required=needed, type=click.Choice(["email", "sms", "whatsapp", "push"])),
        click.option("--topic", required=needed, help="Kafka topic (it must exist when the campaign runs)."),
        click.option("--template", metavar="JSON", help="Passed to senders untouched, as JSON: '\"winback-v3\"' or '{\"id\": 3}'."),
        click.option("--fields", "message_fields", metavar="COL,COL", help="Customer columns copied into each message."),
        click.option("--batch-size", type=int, help="Recipients per batch, 1 to 100000 [default: 5000]."),
        click.option("--active-from", metavar="ISO-TIME", help="No slot fires before this ('none' clears it)."),
        click.option("--active-until", metavar="ISO-TIME", help="No slot fires from this on ('none' clears it)."),
        click.option("--grace", metavar="DURATION", help="How late a slot may start: 90s, 15m, 1h [default: 15m]."),
        click.option("--deadline", metavar="DURATION", help="How long after its slot a run may produce [default: 4h]."),
        click.option("--rate-limit", metavar="N|none", help="Messages per second ('none': unlimited) [default: none]."),
    ]  # fmt: skip

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def flag_fields(params: dict[str, Any]) -> dict[str, Any]:
    """The definition fields given as flags, typed; 'none' clears an optional one."""
    given = {
        key: params.pop(key)
        for key in list(params)
        if key in Definition.__dataclass_fields__ and params[key] is not None
    }
    values: dict[str, Any] = {}
    problems = []
    for key, raw in given.items():
        try:
            values[key] = typed_flag(key, raw)
        except ValueError as exc:
            problems.append(f"--{key.replace('_', '-')}: {exc}")
    if problems:
        raise InvalidDefinition(problems)
    return values


def typed_flag(key: str, raw: Any) -> Any:
    clearable = ("active_from", "active_until", "rate_limit")
    if key in clearable and isinstance(raw, str) and raw.strip().lower() in CLEARS:
        return None
    if key == "template":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(
                f"{raw!r} is not JSON; quote a plain id: '\"{raw}\"'"
            ) from None
    if key == "rate_limit":
        if not raw.strip().isdigit():
            raise ValueError(f"{raw!r} is not a whole number or 'none'")
        raw = int(raw)
    return convert(key, raw)


@contextlib.contextmanager
def session(
    params: dict[str, Any],
) -> Iterator[tuple[Settings, psycopg.Connection]]:
    """The settings and an autocommit connection (writes group their statements in
    transactions), PostgreSQL's failures translated."""
    from campaigner import db

    settings = build_settings(params)
    with (
        db.connect(settings, purpose="campaigns") as conn,
        db.translated("reading or writing campaigns"),
    ):
        yield settings, conn


def confirm(question: str, *, yes: bool) -> bool:
    """--yes, or a yes typed on a terminal; without a terminal, refuse (exit 2)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise errors.UsageError(
            "no terminal to confirm on; nothing was changed (add --yes to go ahead"
            " without asking)"
        )
    return click.confirm(question, default=False)


@click.group()
def campaigns() -> None:
    """Create, change, pause, resume, archive and delete campaigns.

    \b
    Examples:
      campaigner campaigns create welcome --schedule '0 9 * * *' \\
          --cohort "country = 'DE'" --channel email --topic campaigns.email
      campaigner campaigns update welcome --schedule '30 9 * * 1-5'
      campaigner campaigns pause welcome
    """


@campaigns.command(epilog=EXIT_CODES_HELP)
@click.argument("name")
@definition_options(creating=True)
@click.option("--paused", is_flag=True, help="Create it paused: it fires once resumed.")
@settings_options(kafka=False)
@handle_errors
def create(name: str, paused: bool, **params: Any) -> int:
    """Create a campaign, every field checked first (cohort against the live table).

    \b
    Example:
      campaigner campaigns create winback-de --schedule '0 10 * * 1-5' \\
          --timezone Europe/Berlin --channel email --topic campaigns.email \\
          --cohort "country = 'DE' AND email_consent" --fields email,first_name
    """
    from campaigner import admin

    fields = flag_fields(params)
    if paused:
        fields["status"] = "paused"
    definition = Definition(name=name, **fields)
    with session(params) as (settings, conn):
        if admin.find_definition(conn, name) is not None:
            raise errors.UsageError(
                f"campaign {name!r} exists; change it with `campaigner campaigns update`"
            )
        admin.check_all(conn, settings, [definition])
        admin.insert(conn, definition)
    click.echo(f"created campaign {name!r} ({definition.status})")
    return errors.EXIT_OK


@campaigns.command(epilog=EXIT_CODES_HELP)
@click.argument("name")
@definition_options(creating=False)
@settings_options(kafka=False)
@handle_errors
def update(name: str, **params: Any) -> int:
    """Change some fields of a campaign; the result is checked in full first.

    A run going on keeps what it started with; the change applies from the next run.

    \b
    Examples:
      campaigner campaigns update winback-de --cohort "country IN ('DE', 'AT')"
      campaigner campaigns update winback-de --rate-limit 500
      campaigner campaigns update winback-de --rate-limit none --active-until none
    """
    from campaigner import admin, tables
    from campaigner.definitions import differences

    fields = flag_fields(params)
    with session(params) as (settings, conn):
        current = admin.require(conn, name)
        wanted = dataclasses.replace(current, **fields)
        changes = differences(current, wanted)
        if not changes:
            click.echo(f"campaign {name!r} unchanged")
            return errors.EXIT_OK
        admin.check_all(conn, settings, [wanted])
        admin.update(conn, wanted)
    click.echo(f"updated campaign {name!r}:")
    tables.print_changes(changes, indent="  ")
    return errors.EXIT_OK


def status_command(verb: str, status: str, summary: str) -> click.Command:
    @click.argument("name")
    @settings_options(kafka=False)
    @handle_errors
    def command(name: str, **params: Any) -> int:
        from campaigner import admin

        with session(params) as (settings, conn):
            current = admin.require(conn, name)
            if current.status == status:
                click.echo(f"campaign {name!r} is already {status}")
                return errors.EXIT_OK
            wanted = dataclasses.replace(current, status=status)
            if status == "active":
                admin.check_all(conn, settings, [wanted])
            admin.update(conn, wanted)
        click.echo(f"campaign {name!r}: {current.status} -> {status}")
        return errors.EXIT_OK

    command.__doc__ = (
        f"{summary}\n\n\b\nExample:\n  campaigner campaigns {verb} winback-de\n"
    )
    return click.command(verb, epilog=EXIT_CODES_HELP)(command)


campaigns.add_command(
    status_command(
        "pause", "paused", "Pause a campaign: no new run starts until it is resumed."
    )
)
campaigns.add_command(
    status_command(
        "resume", "active", "Make a campaign active again (checked in full first)."
    )
)
campaigns.add_command(
    status_command(
        "archive",
        "archived",
        "Archive a campaign: it never fires, `list` hides it, its runs stay.",
    )
)


@campaigns.command(epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@settings_options(kafka=False)
@handle_errors
def delete(name: str, yes: bool, **params: Any) -> int:
    """Delete a campaign and its run history (archive keeps the history).

    \b
    Example:
      campaigner campaigns delete old-promo --yes
    """
    from campaigner import admin

    with session(params) as (_, conn):
        admin.require(conn, name)
        if not confirm(f"delete campaign {name!r} and its run history?", yes=yes):
            click.echo("nothing deleted")
            return errors.EXIT_OK
        admin.delete(conn, name)
    click.echo(f"deleted campaign {name!r}")
    return errors.EXIT_OK


def show_command(command_name: str) -> click.Command:
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
    @settings_options(kafka=False)
    @handle_errors
    def show(name: str, as_json: bool, **params: Any) -> int:
        """Show a campaign's fields and its latest runs.

        \b
        Examples:
          campaigner show winback-de
          campaigner show winback-de --json | jq .campaign.cohort
        """
        from campaigner import admin, history, tables
        from campaigner.definitions import to_mapping

        with session(params) as (_, conn):
            definition = admin.require(conn, name)
            runs = history.find_runs(
                conn, history.RunFilter(campaigns=[name], limit=SHOWN_RUNS)
            )
        if as_json:
            print_json(
                {"campaign": to_mapping(definition, complete=True), "runs": runs}
            )
        else:
            tables.print_definition(definition, runs)
        return errors.EXIT_OK

    return click.command(command_name, epilog=EXIT_CODES_HELP)(show)


campaigns.add_command(show_command("show"))


@click.command("apply", epilog=EXIT_CODES_HELP)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--prune", is_flag=True, help="Also delete campaigns the files do not name."
)
@click.option(
    "--yes", is_flag=True, help="Apply without asking (needed without a terminal)."
)
@settings_options(kafka=False)
@handle_errors
def apply_command(path: Path, prune: bool, yes: bool, **params: Any) -> int:
    """Make the campaigns table match a YAML or TOML file (or a folder of them).

    Prints the plan first: each campaign created, changed (field by field),
    unchanged, and with --prune deleted. Applies it, in one transaction, only
    with --yes or a yes typed on a terminal. If any campaign of the files is
    invalid, nothing is applied and every problem is listed (exit 2).

    \b
    Examples:
      campaigner apply campaigns.yaml               # plan, then ask
      campaigner apply campaigns/ --prune --yes     # in CI: a folder, no questions
    """
    from campaigner import admin, tables
    from campaigner.campaign_file import read_definitions

    wanted = read_definitions(path)
    if not wanted:
        # An empty file is far more often a mistake (a failed template, a
        # truncated checkout) than a wish to delete every campaign.
        raise errors.UsageError(
            f"{path} holds no campaign; nothing was applied"
            " (to delete campaigns, use `campaigner campaigns delete`)"
        )
    with session(params) as (settings, conn):
        admin.check_all(conn, settings, wanted)
        steps = admin.plan(admin.load_definitions(conn), wanted, prune=prune)
        tables.print_plan(steps)
        if all(step.action in ("unchanged", "keep") for step in steps):
            click.echo("nothing to apply")
            return errors.EXIT_OK
        if not confirm("apply this plan?", yes=yes):
            click.echo("nothing applied")
            return errors.EXIT_OK
        admin.carry_out(conn, steps)
    click.echo("applied")
    return errors.EXIT_OK


@click.command("export", epilog=EXIT_CODES_HELP)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["yaml", "toml"]),
    help="[default: from -o's suffix, else yaml]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)
@settings_options(kafka=False)
@handle_errors
def export_command(file_format: str | None, output: Path | None, **params: Any) -> int:
    """Write every campaign out as a file `apply` reads back unchanged.

    \b
    Examples:
      campaigner export > campaigns.yaml
      campaigner export -o campaigns.toml && campaigner apply campaigns.toml
    """  # fmt: skip
    from campaigner import admin
    from campaigner.campaign_file import (
        check_output,
        dump,
        format_of,
        write_atomically,
    )

    kind = format_of(output, file_format)
    if output is not None:
        check_output(output)
    with session(params) as (_, conn):
        definitions = admin.load_definitions(conn)
    text = dump(definitions, kind)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomically(output, text)
        click.echo(f"wrote {len(definitions)} campaign(s) to {output}", err=True)
    return errors.EXIT_OK


def register(group: click.Group) -> None:
    from campaigner.cli import list_command

    # `campaigns list` is where a user of `campaigns create` looks first.
    campaigns.add_command(list_command, "list")
    group.add_command(campaigns)
    group.add_command(show_command("show"))
    group.add_command(apply_command)
    group.add_command(export_command)
