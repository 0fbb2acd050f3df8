"""`campaigner demo`: the real job end to end, on throwaway or borrowed servers.

Loads seeded fake customers and a few campaigns into a fresh database, runs
`campaigner execute` in a subprocess at a fixed tick, reads every topic back and
checks that each due campaign reached every member of its cohort exactly once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import click
import confluent_kafka
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from psycopg import conninfo, sql
from rich.table import Table

from campaigner import config, db, embedded, errors, migrations
from campaigner.output import console

logger = logging.getLogger(__name__)

T = TypeVar("T")
KafkaConfig = dict[str, str | int | float | bool]
# Message keys (user ids) read back, by campaign id.
Received = dict[int, list[bytes]]

# A Monday 09:00 UTC: 09:00 UTC, 10:00 in Berlin and 18:00 in Tokyo are slots of
# the campaigns below; 07:30 in New York and midnight UTC are not.
TICK = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
# Worked out by hand from TICK, independently of campaigner's scheduler.
DUE_AT_TICK = frozenset(
    {"cart-recovery-push", "weekday-digest-dach", "vip-evening-sms"}
)
CAMPAIGNS_SQL = """
INSERT INTO campaigns (name, schedule, timezone, channel, topic, batch_size,
                       message_fields, cohort, template, created_at, updated_at)
SELECT name, schedule, timezone, channel, topic, batch_size, message_fields, cohort,
       jsonb_build_object('id', name || '-v1'), %(created)s, %(created)s
FROM (VALUES
  ('cart-recovery-push', '*/15 * * * *', 'UTC', 'push', %(push)s, 2000,
   '{push_token,first_name,language}'::text[], $$push_token IS NOT NULL
AND last_active_at > now() - interval '30 days'
AND attributes->>'plan' IN ('plus', 'pro')$$),
  ('weekday-digest-dach', '0 10 * * 1-5', 'Europe/Berlin', 'email', %(email)s, 5000,
   '{email,first_name,language,city}', $$email_consent
AND country IN ('DE', 'AT', 'CH')$$),
  ('vip-evening-sms', '0 18 * * *', 'Asia/Tokyo', 'sms', %(messaging)s, 1000,
   '{phone,first_name,language}', $$sms_consent AND country IN ('JP', 'IN')
AND (lifetime_value BETWEEN 200 AND 5000 OR attributes->'interests' ? 'travel')$$),
  ('morning-deals-whatsapp', '30 7 * * *', 'America/New_York', 'whatsapp',
   %(messaging)s, 500, '{phone,first_name}', $$whatsapp_consent
AND country IN ('US', 'MX', 'BR') AND attributes->'interests' ? 'deals'$$),
  ('pro-renewal-reminder', '@daily', 'UTC', 'email', %(email)s, 10000,
   '{email,first_name}', $$email_consent AND attributes @> '{"plan": "pro"}'
AND created_at < now() - interval '330 days'$$)
) AS demo (name, schedule, timezone, channel, topic, batch_size, message_fields, cohort)
"""
COUNT_QUERY = "SELECT count(*) FROM user_data WHERE (\n{}\n)"
CAMPAIGNS_QUERY = (
    "SELECT id, name, schedule, timezone, cohort FROM campaigns ORDER BY id"
)
RUNS_QUERY = """
SELECT c.name, r.status, r.produced, r.matched
FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
ORDER BY r.id
"""
TABLE_COLUMNS = ("campaign", "schedule", "timezone", "due", "cohort", "messages",
                 "recipients", "ok")  # fmt: skip
TOPIC_FAMILIES = ("email", "messaging", "push")
PARTITIONS = 3
KAFKA_ADMIN_TIMEOUT_S = 15.0
READ_BACK_TIMEOUT_S = 60.0

SEED = 20261207
# Faker is slow per value: a few thousand Faker profiles, recombined by a seeded
# random.Random, make any number of customers in seconds. json.dumps is slow too.
PROFILES_PER_COUNTRY = 250
ATTRIBUTE_VARIANTS = 4096
HISTORY_DAYS = 730
ACTIVITY_MEAN_DAYS = 40
DAY_S = 86_400
# Times stay clear of the last hours before each whole day ago, so that a cohort
# such as `now() - interval '30 days'` matches the same rows all demo long.
DAY_BOUNDARY_MARGIN_S = 2 * 3600
# Rates typical of a consumer app's CRM.
PHONE_RATE, EMAIL_CONSENT_RATE, SMS_CONSENT_RATE = 0.85, 0.64, 0.31
PUSH_TOKEN_RATE, NO_PURCHASE_RATE = 0.42, 0.35
INTERESTS = ("travel", "fashion", "sports", "electronics", "books", "home", "deals")


class Country(NamedTuple):
    code: str
    locale: str
    weight: int
    calling_code: int
    languages: tuple[tuple[str, int], ...]
    whatsapp_rate: float


COUNTRIES = (
    Country("US", "en_US", 28, 1, (("en", 88), ("es", 12)), 0.08),
    Country("IN", "en_IN", 12, 91, (("en", 60), ("hi", 40)), 0.45),
    Country("DE", "de_DE", 11, 49, (("de", 92), ("en", 8)), 0.30),
    Country("GB", "en_GB", 9, 44, (("en", 100),), 0.25),
    Country("BR", "pt_BR", 9, 55, (("pt", 100),), 0.55),
    Country("FR", "fr_FR", 7, 33, (("fr", 100),), 0.20),
    Country("JP", "ja_JP", 6, 81, (("ja", 100),), 0.03),
    Country("ES", "es_ES", 4, 34, (("es", 90), ("ca", 10)), 0.40),
    Country("IT", "it_IT", 4, 39, (("it", 100),), 0.40),
    Country("MX", "es_MX", 4, 52, (("es", 100),), 0.50),
    Country("AT", "de_AT", 3, 43, (("de", 100),), 0.30),
    Country("CH", "de_CH", 3, 41, (("de", 65), ("fr", 25), ("it", 10)), 0.30),
)
CUSTOMER_COLUMNS = (
    "id", "email", "phone", "first_name", "last_name", "country", "language", "city",
    "created_at", "last_active_at", "email_consent", "sms_consent", "whatsapp_consent",
    "push_token", "lifetime_value", "attributes",
)  # fmt: skip


class Profile(NamedTuple):
    first_name: str
    last_name: str
    city: str
    handle: str
    email_domain: str


class Customers:
    """Seeded customers: Faker profiles per country, recombined by random.Random."""

    def __init__(self, *, now: datetime) -> None:
        from faker import Faker

        self.now, self.rng = now, random.Random(SEED)
        self.countries = weighted({country: country.weight for country in COUNTRIES})
        self.languages = {c.code: weighted(dict(c.languages)) for c in COUNTRIES}
        self.profiles = {c.code: profiles(Faker(c.locale)) for c in COUNTRIES}
        self.attributes = [self.attributes_json() for _ in range(ATTRIBUTE_VARIANTS)]

    def row(self, user_id: int) -> tuple[Any, ...]:
        """A customer in CUSTOMER_COLUMNS order."""
        rng, chance = self.rng, self.rng.random
        country = rng.choice(self.countries)
        # Names, places and handles from different profiles: many distinct people.
        first, last, place, handle = rng.choices(self.profiles[country.code], k=4)
        phone = f"+{country.calling_code}{rng.randrange(10**8, 10**10)}"
        has_phone = chance() < PHONE_RATE
        signed_up = self.days_ago(rng.randrange(HISTORY_DAYS))
        active = min(
            self.days_ago(int(rng.expovariate(1 / ACTIVITY_MEAN_DAYS))), signed_up
        )
        return (
            user_id,
            f"{handle.handle}{user_id}@{handle.email_domain}",
            phone if has_phone else None,
            first.first_name,
            last.last_name,
            country.code,
            rng.choice(self.languages[country.code]),
            place.city,
            self.now - signed_up,
            self.now - active,
            chance() < EMAIL_CONSENT_RATE,
            has_phone and chance() < SMS_CONSENT_RATE,
            has_phone and chance() < country.whatsapp_rate,
            f"{rng.getrandbits(256):064x}" if chance() < PUSH_TOKEN_RATE else None,
            0 if chance() < NO_PURCHASE_RATE else round(rng.lognormvariate(4, 1.2), 2),
            rng.choice(self.attributes),
        )

    def days_ago(self, days: int) -> timedelta:
        margin = DAY_S - DAY_BOUNDARY_MARGIN_S
        return timedelta(seconds=days * DAY_S + self.rng.randrange(margin))

    def attributes_json(self) -> str:
        rng = self.rng
        return json.dumps({
            "plan": rng.choices(("free", "plus", "pro"), (62, 25, 13))[0],
            "interests": rng.sample(INTERESTS, rng.randrange(4)),
            "device": rng.choices(("android", "ios", "web"), (47, 38, 15))[0],
        })  # fmt: skip


def profiles(fake: Any) -> list[Profile]:
    fake.seed_instance(SEED)
    return [
        Profile(fake.first_name(), fake.last_name(), fake.city(), fake.user_name(),
                fake.free_email_domain())
        for _ in range(PROFILES_PER_COUNTRY)
    ]  # fmt: skip


def weighted(weights: dict[T, int]) -> list[T]:
    """Each value repeated by its weight, so that rng.choice draws by weight."""
    return [value for value, weight in weights.items() for _ in range(weight)]


def step(text: str) -> None:
    click.echo(text, err=True)


def run(*, users: int) -> int:
    """Run the demo; 0 when every due campaign reached its whole cohort exactly once."""
    started = time.monotonic()
    suffix = secrets.token_hex(4)
    try:
        with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
            database_url = stack.enter_context(demo_database(suffix))
            kafka = stack.enter_context(demo_kafka())
            topics = stack.enter_context(demo_topics(kafka, suffix))
            prepare_database(database_url, users=users, topics=topics)
            code = execute_job(database_url, kafka)
            if code != errors.EXIT_OK:
                return code
            step("reading every topic back…")
            received = read_back(kafka, suffix, topics)
            return report(database_url, received, started=started)
    except embedded.EmbeddedServerError as exc:
        raise errors.CampaignerError(str(exc)) from exc
    except KeyboardInterrupt:
        step("interrupted: the demo's servers, database and topics are gone")
        return errors.EXIT_INTERRUPTED


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that every cleanup still runs."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def demo_database(suffix: str) -> Iterator[str]:
    """A throwaway server, or a new database on DATABASE_URL's server, dropped after."""
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        step("starting PostgreSQL…")
        with embedded.EmbeddedPostgres() as server:
            yield server.url
        return
    name = f"campaigner_demo_{suffix}"
    step(f"creating database {name} on the server of DATABASE_URL…")
    with connect(server_url) as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise errors.DatabaseError(
                f"cannot create the demo database: {db.first_line(str(exc))}"
                " (the role of DATABASE_URL needs CREATEDB)"
            ) from exc
        try:
            yield conninfo.make_conninfo(server_url, dbname=name)
        finally:
            step(f"dropping database {name}…")
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            statement = drop.format(sql.Identifier(name))
            warn_on_failure("drop the demo database", lambda: admin.execute(statement))


@contextlib.contextmanager
def demo_kafka() -> Iterator[KafkaConfig]:
    """librdkafka settings for a throwaway broker, or for KAFKA_BOOTSTRAP_SERVERS."""
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if servers:
        step("using Kafka at KAFKA_BOOTSTRAP_SERVERS…")
        # CAMPAIGNER_KAFKA__* properties (SASL, TLS) apply to a real cluster.
        yield {
            "bootstrap.servers": servers,
            **config.kafka_properties_from_env(os.environ),
        }
        return
    step("starting Kafka (Tansu)…")
    with embedded.EmbeddedKafka() as broker:
        yield {"bootstrap.servers": broker.bootstrap_servers}


@contextlib.contextmanager
def demo_topics(kafka: KafkaConfig, suffix: str) -> Iterator[dict[str, str]]:
    """A topic per channel family, unique to this demo: campaigner never creates any."""
    topics = {family: f"campaigner-demo-{suffix}.{family}" for family in TOPIC_FAMILIES}
    admin = AdminClient(kafka, logger=logger)
    try:
        admin.list_topics(timeout=KAFKA_ADMIN_TIMEOUT_S)
    except confluent_kafka.KafkaException as exc:
        raise errors.KafkaError(
            f"cannot reach Kafka at {kafka['bootstrap.servers']}: {exc.args[0].str()}"
            " (check KAFKA_BOOTSTRAP_SERVERS, or unset it to use a throwaway broker)"
        ) from exc
    step(f"creating {len(topics)} topics with {PARTITIONS} partitions each…")
    try:
        new = [NewTopic(name, num_partitions=PARTITIONS) for name in topics.values()]
        wait_for(admin.create_topics(new, operation_timeout=KAFKA_ADMIN_TIMEOUT_S))
        yield topics
    finally:
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            step("deleting the demo topics…")
            names = list(topics.values())
            delete = lambda: wait_for(admin.delete_topics(names))  # noqa: E731
            warn_on_failure("delete the demo topics", delete)


def wait_for(futures: dict[str, Any]) -> None:
    for topic, future in futures.items():
        try:
            future.result(timeout=KAFKA_ADMIN_TIMEOUT_S)
        except confluent_kafka.KafkaException as exc:
            raise errors.KafkaError(f"topic {topic}: {exc.args[0].str()}") from exc
        except TimeoutError as exc:
            raise errors.KafkaError(
                f"topic {topic}: no answer within {KAFKA_ADMIN_TIMEOUT_S:.0f} s"
            ) from exc


def warn_on_failure(what: str, action: Callable[[], object]) -> None:
    """Cleanup goes on past a failed step, which is reported rather than raised."""
    try:
        action()
    except Exception as exc:
        step(f"warning: could not {what}: {exc}")


def connect(database_url: str) -> psycopg.Connection:
    return db.connect(config.Settings(database_url=database_url), purpose="demo")


def prepare_database(database_url: str, *, users: int, topics: dict[str, str]) -> None:
    with connect(database_url) as conn:
        step("applying the schema…")
        migrations.upgrade(conn, reference_schema=True)
        step(f"loading {users:,} customers…")
        load_customers(conn, users=users)
        step("inserting 5 campaigns…")
        # Created a minute before the tick: no earlier slot may count as missed.
        conn.execute(CAMPAIGNS_SQL, {**topics, "created": TICK - timedelta(minutes=1)})


def load_customers(conn: psycopg.Connection, *, users: int) -> None:
    now = conn.execute("SELECT now()").fetchone()
    customers = Customers(now=now[0] if now else datetime.now(UTC))
    columns = sql.SQL(", ").join(map(sql.Identifier, CUSTOMER_COLUMNS))
    copy_sql = sql.SQL("COPY user_data ({}) FROM STDIN").format(columns)
    with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for user_id in range(1, users + 1):
            copy.write_row(customers.row(user_id))
    conn.execute("ANALYZE user_data")


def execute_job(database_url: str, kafka: KafkaConfig) -> int:
    """The real cron entry point, in its own process, at the demo's tick."""
    step(f"running `campaigner execute --at {TICK:%Y-%m-%dT%H:%MZ}`…")
    # The caller's own CAMPAIGNER_* settings would win over this demo's servers...
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGNER_")}
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        # ...except the librdkafka properties a real cluster needs.
        prefix = config.KAFKA_PROPERTY_ENV_PREFIX
        env |= {k: v for k, v in os.environ.items() if k.startswith(prefix)}
    env |= {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": str(kafka["bootstrap.servers"]),
    }
    command = [sys.executable, "-m", "campaigner", "execute", "--at", TICK.isoformat()]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != errors.EXIT_OK:
        sys.stderr.write(done.stderr)
        step(f"demo failed: campaigner execute exited with code {done.returncode}")
    return done.returncode


def read_back(kafka: KafkaConfig, suffix: str, topics: dict[str, str]) -> Received:
    """Each message's key (the user id) by the campaign id in its headers."""
    reader = {"group.id": f"demo-{suffix}", "enable.partition.eof": True}
    # No Python logger here: Ctrl-C inside its callback surfaces as a SystemError.
    consumer = confluent_kafka.Consumer(kafka | reader | {"enable.auto.commit": False})
    received: Received = {}
    try:
        for message in messages_to_end(consumer, list(topics.values())):
            campaign_id = int(dict(message.headers() or []).get("campaign_id") or 0)
            received.setdefault(campaign_id, []).append(message.key() or b"")
    finally:
        consumer.close()
    return received


def messages_to_end(consumer: Any, topics: list[str]) -> Iterator[Any]:
    """Every message of every partition, until each has reported its end: by
    end-of-partition events, not watermarks, which some brokers get wrong."""
    start = confluent_kafka.OFFSET_BEGINNING
    assigned = [
        confluent_kafka.TopicPartition(topic, partition, start)
        for topic in topics
        for partition in range(PARTITIONS)
    ]
    unread: set[tuple[str | None, int | None]]
    unread = {(p.topic, p.partition) for p in assigned}
    consumer.assign(assigned)
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    while unread and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            where, error = (message.topic(), message.partition()), message.error()
            if error is None:
                unread.add(where)
                yield message
            elif error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                unread.discard(where)
            else:
                raise errors.KafkaError(f"reading {where[0]} back: {error.str()}")
    if unread:
        step(f"warning: {len(unread)} partition(s) not read to their end in time")


class Outcome(NamedTuple):
    """One campaign at the tick: its cohort next to what was read back."""

    name: str
    schedule: str
    timezone: str
    due: bool
    cohort: int | None
    messages: int
    recipients: int

    @property
    def ok(self) -> bool:
        if not self.due:
            return self.messages == 0
        return 0 < self.messages == self.recipients == self.cohort


def report(database_url: str, received: Received, *, started: float) -> int:
    """Print each campaign's outcome and the run ledger; 0 when every outcome is ok."""
    with connect(database_url) as conn:
        campaigns = conn.execute(CAMPAIGNS_QUERY).fetchall()
        outcomes = [compare(conn, row, received) for row in campaigns]
        runs = conn.execute(RUNS_QUERY).fetchall()
    print_outcomes(outcomes)
    ledger = ", ".join(
        f"{name} {status} {produced:,}/{matched:,}"
        for name, status, produced, matched in runs
    )
    elapsed = time.monotonic() - started
    console().print(
        f"done in {elapsed:.1f} s; campaign_runs (produced/matched): {ledger or 'none'}"
    )
    failed = [outcome.name for outcome in outcomes if not outcome.ok]
    if failed:
        step(f"demo failed: what was read back does not match {', '.join(failed)}")
        return errors.EXIT_BUG
    return errors.EXIT_OK


def compare(conn: psycopg.Connection, campaign: Any, received: Received) -> Outcome:
    campaign_id, name, schedule, timezone, cohort = campaign
    keys = received.get(campaign_id, [])
    due = name in DUE_AT_TICK
    size = cohort_size(conn, cohort) if due else None
    return Outcome(name, schedule, timezone, due, size, len(keys), len(set(keys)))


def cohort_size(conn: psycopg.Connection, cohort: str) -> int:
    """Counted here, independently of campaigner's own cohort code."""
    query = sql.SQL(COUNT_QUERY).format(sql.SQL(cohort))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def print_outcomes(outcomes: list[Outcome]) -> None:
    out = console()
    marks = ("✓", "✗") if out.encoding.lower().startswith("utf") else ("ok", "FAIL")
    table = Table(
        *TABLE_COLUMNS, title=f"campaigner demo: tick {TICK:%Y-%m-%d %H:%M} UTC"
    )
    for outcome in outcomes:
        local = TICK.astimezone(ZoneInfo(outcome.timezone))
        table.add_row(
            *outcome[:3],
            f"yes, {local:%a %H:%M %Z}" if outcome.due else "no",
            "-" if outcome.cohort is None else f"{outcome.cohort:,}",
            f"{outcome.messages:,}",
            f"{outcome.recipients:,}",
            marks[0] if outcome.ok else marks[1],
        )
    out.print(table)
