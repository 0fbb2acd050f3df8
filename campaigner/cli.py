"""The `campaigner` command line: parse, call the core, map errors to exit codes.

Exit codes: 0 ok (also: nothing due), 1 unexpected error, 2 usage,
3 configuration, 4 PostgreSQL, 5 Kafka, 6 a campaign failed for its own
reason or completed with errors, 75 stopped by SIGINT or SIGTERM.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from campaigner import errors, logs
from campaigner.config import Settings, load_settings
from campaigner.output import print_execute, print_json, print_listing, print_previews

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Far enough from datetime's limits for schedules to be evaluated around them.
EARLIEST_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(9000, 1, 1, tzinfo=UTC)

EXIT_CODES_HELP = """
\b
Exit codes:
  0   ok, including nothing due or every due slot already claimed
  1   unexpected error (a bug)
  2   usage
  3   configuration
  4   PostgreSQL unreachable or failing
  5   Kafka unreachable, or a run failed on delivery
  6   a campaign failed for its own reason, or completed with errors
  75  stopped by SIGINT or SIGTERM: the run keeps its checkpoint, to be resumed
"""


def parse_instant(
    _: click.Context, __: click.Parameter, value: str | None
) -> datetime | None:
    """An ISO time; without an offset it means UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO time such as 2026-12-03T09:00 or 2026-12-03T09:00+01:00"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    if not EARLIEST_AT <= moment <= LATEST_AT:
        raise click.BadParameter(f"{value!r} is outside the years 1970 to 9000")
    return moment.astimezone(UTC)


CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of settings and a [kafka] table of librdkafka properties."
    " [env: CAMPAIGNER_CONFIG]",
)
VERBOSE_OPTION = click.option(
    "-v",
    "--verbose",
    count=True,
    help="-v: INFO logs (one line per run); -vv: DEBUG and tracebacks."
    " [env: CAMPAIGNER_LOG_LEVEL=debug|info|warning|error]",
)
LOG_FORMAT_OPTION = click.option(
    "--log-format",
    type=click.Choice(logs.LOG_FORMATS),
    help="Logs on stderr as text or JSON lines. [env: CAMPAIGNER_LOG_FORMAT;"
    " default: text]",
)
DATABASE_OPTIONS = [
    click.option(
        "--connect-timeout",
        type=click.IntRange(min=1),
        metavar="SECONDS",
        help="How long connecting to PostgreSQL may take."
        " [env: CAMPAIGNER_CONNECT_TIMEOUT; default: 10]",
    ),
    click.option(
        "--statement-timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="How long each cohort query may take."
        " [env: CAMPAIGNER_STATEMENT_TIMEOUT; default: 300]",
    ),
    click.option(
        "--max-cohort-cost",
        type=click.FloatRange(min=0, min_open=True),
        metavar="COST",
        help="Refuse a cohort whose planner cost (see dry-run) is above this."
        " [env: CAMPAIGNER_MAX_COHORT_COST; default: no ceiling]",
    ),
]
KAFKA_OPTIONS = [
    click.option(
        "--kafka-bootstrap-servers",
        metavar="HOST:PORT[,...]",
        help="Kafka brokers. [env: CAMPAIGNER_KAFKA_BOOTSTRAP_SERVERS,"
        " KAFKA_BOOTSTRAP_SERVERS; default: localhost:9092]",
    ),
    click.option(
        "--kafka-timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="How long reaching Kafka, and each message's confirmation, may"
        " take. [env: CAMPAIGNER_KAFKA_TIMEOUT; default: 30]",
    ),
]


def settings_options(*, kafka: bool) -> Callable[[F], F]:
    """The options of a command that talks to PostgreSQL (and Kafka); nothing
    connects here.

    Their CAMPAIGNER_* twins are read by campaigner.config, not by click, so that
    a bad value in the environment is a configuration error (exit 3) naming the
    variable, while a bad flag stays a usage error (exit 2).
    """
    options = [
        CONFIG_OPTION,
        *(KAFKA_OPTIONS if kafka else []),
        *DATABASE_OPTIONS,
        VERBOSE_OPTION,
        LOG_FORMAT_OPTION,
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def build_settings(params: dict[str, Any]) -> Settings:
    names = (
        "kafka_bootstrap_servers",
        "kafka_timeout",
        "connect_timeout",
        "statement_timeout",
        "max_cohort_cost",
        "shard_threshold",
        "shard_size",
    )
    return load_settings(
        flags={name: params.get(name) for name in names},
        config_file=params.get("config_file"),
    )


def handle_errors(command: Callable[..., int | None]) -> Callable[..., None]:
    """Set up logging, run the command and turn its result or error into an exit code."""

    @functools.wraps(command)
    def wrapper(**params: Any) -> None:
        try:
            logs.setup(
                verbosity=params.get("verbose") or 0,
                log_format=params.get("log_format"),
            )
            code = command(**params) or errors.EXIT_OK
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
        except KeyboardInterrupt:
            click.echo(
                "error: stopped at once by a second signal; a run going on was marked"
                " interrupted at its checkpoint, and the next execute names the"
                " command resuming it",
                err=True,
            )
            code = errors.EXIT_INTERRUPTED
        except errors.CampaignerError as exc:
            logger.debug("details", exc_info=True)
            click.echo(f"error: {exc.message}", err=True)
            code = exc.exit_code
        except Exception as exc:
            logger.debug("details", exc_info=True)
            click.echo(
                f"error: unexpected {type(exc).__name__}: {exc} (run with -vv for the traceback)",
                err=True,
            )
            code = errors.EXIT_BUG
        sys.exit(code)

    return wrapper


@click.group(epilog=EXIT_CODES_HELP)
@click.version_option(package_name="campaigner")
def cli() -> None:
    """Run scheduled campaigns: PostgreSQL cohorts into Kafka, one message per recipient.

    Settings come from flags, CAMPAIGNER_* variables (and DATABASE_URL,
    PG*, KAFKA_BOOTSTRAP_SERVERS), then the TOML file named by --config.

    \b
    Examples:
      campaigner db upgrade            # create or update campaigner's tables
      campaigner dry-run               # what would fire now, with cohort sizes
      campaigner execute               # fire what is due (cron runs this every minute)
      campaigner list                  # schedules, next fire times, last runs
      campaigner demo                  # everything end to end on throwaway servers
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--at",
    "at",
    callback=parse_instant,
    metavar="ISO-TIME",
    help="The tick as an ISO time (UTC without an offset) [default: the database's now()].",
)
@click.option(
    "--campaign",
    "campaign_name",
    metavar="NAME",
    help="Run this campaign now whatever its schedule; with --at, back-fill that"
    " slot, resuming its run at the checkpoint if an earlier attempt stopped early.",
)
@click.option(
    "--force", is_flag=True, help="With --campaign: run it even if it is paused."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the outcomes as JSON on stdout."
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus metrics here (atomically) when the execute ends, for"
    " node_exporter's textfile collector. [env: CAMPAIGNER_METRICS_FILE]",
    envvar="CAMPAIGNER_METRICS_FILE",
)
@click.option(
    "--shard-threshold",
    type=click.IntRange(min=0),
    metavar="RECIPIENTS",
    help="Split a new run whose cohort is estimated above this into shards that"
    " more executes can share; 0: never. [env: CAMPAIGNER_SHARD_THRESHOLD;"
    " default: 1000000]",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    metavar="RECIPIENTS",
    help="Recipients per shard of a split run (at most 64 shards)."
    " [env: CAMPAIGNER_SHARD_SIZE; default: 250000]",
)
@settings_options(kafka=True)
@handle_errors
def execute(
    at: datetime | None,
    campaign_name: str | None,
    force: bool,
    as_json: bool,
    metrics_file: Path | None,
    **params: Any,
) -> int:
    """Fire the campaigns due at this minute (the cron entry point).

    Each due slot is claimed once, however many executes run at the same
    tick on however many hosts; its cohort is streamed into the campaign's
    topic and every message is confirmed by the broker. A large run is split
    into shards: every execute that starts meanwhile helps with it.

    \b
    Examples:
      campaigner execute                             # what cron runs
      campaigner execute --at 2026-12-03T09:00       # as if it were 09:00 UTC
      campaigner execute --campaign welcome          # one campaign, now
      campaigner execute --campaign welcome --at 2026-12-03T09:00+01:00  # back-fill
    """
    from campaigner import metrics, progress, runner

    if force and campaign_name is None:
        raise click.UsageError("--force only makes sense with --campaign")
    settings = build_settings(params)
    with metrics.recording(metrics_file, settings) as execution:
        with progress.showing(settings, console=progress_console(as_json)):
            outcomes = runner.execute(
                settings, at=at, campaign_name=campaign_name, force=force
            )
        execution.outcomes = outcomes
        if as_json:
            print_json([outcome.__dict__ for outcome in outcomes])
        else:
            print_execute(outcomes)
        code = errors.worst_exit_code([outcome.exit_code for outcome in outcomes])
        execution.exit_code = code
    return code


def progress_console(as_json: bool) -> Console | None:
    """Bars on stderr, only when a person watches it (never under cron)."""
    return None if as_json or not sys.stderr.isatty() else Console(stderr=True)


@cli.command("dry-run", epilog=EXIT_CODES_HELP)
@click.option(
    "--at",
    "at",
    callback=parse_instant,
    metavar="ISO-TIME",
    help="The tick as an ISO time (UTC without an offset) [default: the database's now()].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@settings_options(kafka=False)
@handle_errors
def dry_run(at: datetime | None, as_json: bool, **params: Any) -> int:
    """Show what execute would do at a tick: due campaigns and their cohort sizes.

    Writes nothing and produces nothing. Campaigns whose schedule, timezone or
    cohort is invalid are listed with the reason, and the exit code is 6.

    \b
    Examples:
      campaigner dry-run
      campaigner dry-run --at 2026-12-03T09:00 --json
    """
    from campaigner import reports

    tick, previews = reports.dry_run(build_settings(params), at=at)
    if as_json:
        print_json(
            {"tick": tick, "campaigns": [preview.__dict__ for preview in previews]}
        )
    else:
        print_previews(tick, previews)
    invalid = any(preview.state == "invalid" for preview in previews)
    return errors.EXIT_CAMPAIGN if invalid else errors.EXIT_OK


@cli.command("list", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@settings_options(kafka=False)
@handle_errors
def list_command(as_json: bool, **params: Any) -> int:
    """List campaigns: status, schedule, timezone, next fire times, last run.

    \b
    Examples:
      campaigner list
      campaigner list --json | jq '.[] | select(.error != null) | .name'
    """
    from campaigner import reports

    listings = reports.list_campaigns(build_settings(params))
    if as_json:
        print_json([listing.__dict__ for listing in listings])
    else:
        print_listing(listings)
    return errors.EXIT_OK


@cli.group()
def db() -> None:
    """Manage campaigner's tables.

    \b
    Example:
      campaigner db upgrade
    """


@db.command()
@click.option(
    "--reference-schema",
    is_flag=True,
    help="Also create the reference user_data table (demo and tests).",
)
@settings_options(kafka=False)
@handle_errors
def upgrade(reference_schema: bool, **params: Any) -> int:
    """Apply the pending schema migrations; running it twice changes nothing.

    \b
    Example:
      DATABASE_URL=postgresql://campaigner@db/crm campaigner db upgrade
    """
    from campaigner import db as database
    from campaigner import migrations

    with database.connect(build_settings(params), purpose="upgrade") as conn:
        applied = migrations.upgrade(conn)
        with database.translated("creating the reference table"):
            created = reference_schema and migrations.create_reference_table(conn)
    for migration in applied:
        click.echo(f"applied {migration.version:03d}_{migration.name}")
    if created:
        click.echo(f"created the reference table {migrations.REFERENCE_TABLE}")
    if not applied and not created:
        click.echo("schema is up to date")
    return errors.EXIT_OK


@cli.command()
@click.option(
    "--users",
    type=click.IntRange(1000, 5_000_000),
    default=100_000,
    show_default=True,
    help="How many fake customers to generate.",
)
@click.option("-v", "--verbose", count=True, help="Show INFO (-v) or DEBUG (-vv) logs.")
@handle_errors
def demo(users: int, verbose: int) -> int:
    """Run the main job end to end on throwaway servers, and check what arrived.

    Starts PostgreSQL and a Kafka-compatible broker on loopback (unless
    DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS point at real ones), loads fake
    customers and a few campaigns, runs `campaigner execute` at a tick where
    several are due, reads the topics back and prints, per campaign, the
    cohort size next to the messages read back. Nothing is left running.

    \b
    Example:
      campaigner demo --users 100000
    """
    from campaigner import demo as demo_module

    return demo_module.run(users=users)


def main() -> None:
    cli(prog_name="campaigner")


# The operator commands live in modules of their own; they use the helpers above.
from campaigner import cli_manage, cli_observe  # noqa: E402

cli_manage.register(cli)
cli_observe.register(cli)
