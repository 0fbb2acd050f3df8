"""The demo's fake customers: seeded, realistic enough for cohorts, loaded by COPY."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")

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


def load_customers(conn: psycopg.Connection, *, users: int) -> None:
    now = conn.execute("SELECT now()").fetchone()
    customers = Customers(now=now[0] if now else datetime.now(UTC))
    columns = sql.SQL(", ").join(map(sql.Identifier, CUSTOMER_COLUMNS))
    copy_sql = sql.SQL("COPY user_data ({}) FROM STDIN").format(columns)
    with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for user_id in range(1, users + 1):
            copy.write_row(customers.row(user_id))
    conn.execute("ANALYZE user_data")
