"""The cohort allow-list alone: every hostile or broken cohort refused with its
reason and position, every realistic one accepted (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigner import cohort, cohort_rules, errors
from tests.cohort_cases import ACCEPTED, HOSTILE

# The reference user_data table's columns (sql/reference/user_data.sql).
COLUMNS = dict.fromkeys(
    [
        "id", "email", "phone", "first_name", "last_name", "country", "language",
        "city", "created_at", "last_active_at", "email_consent", "sms_consent",
        "whatsapp_consent", "push_token", "lifetime_value", "attributes",
    ],
    "text",
)  # fmt: skip


def test_cases__enough_of_each_kind() -> None:
    assert (len(HOSTILE) >= 40, len(ACCEPTED) >= 20) == (True, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_check_cohort_shape__refuses_hostile_cohorts(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidCohort) as caught:
        cohort.check_cohort_shape("hostile", text, columns=COLUMNS)

    assert caught.value.message == f"campaign 'hostile': {message}"


@pytest.mark.parametrize(
    "text", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED]
)
def test_check_cohort_shape__accepts_realistic_cohorts(text: str) -> None:
    cohort.check_cohort_shape("realistic", text, columns=COLUMNS)


@pytest.mark.parametrize(
    "text",
    [
        # PostgreSQL nests comments: all of this is comment, so nothing is hidden.
        "true /* /* */ pg_sleep(10) */",
        "true /* ) OR (true */",
        # Dollar quoting only makes a string.
        "country = $$'; DROP TABLE user_data; --$$",
        "country = $q$DE$q$",
        "email LIKE '%;%'",
    ],
)
def test_check_cohort_shape__text_inside_comments_and_strings_is_inert(
    text: str,
) -> None:
    cohort.check_cohort_shape("inert", text, columns=COLUMNS)


def test_check_cohort_shape__position_counts_characters_not_bytes() -> None:
    # pg_sleep is the 24th character, the 25th byte in UTF-8.
    with pytest.raises(errors.InvalidCohort) as caught:
        cohort.check_cohort_shape("umlauts", "city = 'Düsseldorf' OR pg_sleep(1)")

    assert caught.value.message == (
        "campaign 'umlauts': function pg_sleep is not allowed (position 24)"
    )


def test_check_cohort_shape__columns_unchecked_without_the_live_table() -> None:
    cohort.check_cohort_shape("saved", "no_such_column = 'DE'")


@pytest.mark.parametrize(
    "text",
    [
        "pg_catalog.lower(email) = 'x'",
        "id OPERATOR(pg_catalog.=) 1",
        "id::pg_catalog.int8 > 0",
        "now() - pg_catalog.make_interval(days => 30) < last_active_at",
    ],
)
def test_check_cohort_shape__pg_catalog_qualified_builtins_are_accepted(
    text: str,
) -> None:
    cohort.check_cohort_shape("qualified", text, columns=COLUMNS)


def test_allow_list__no_name_is_both_allowed_and_dangerous() -> None:
    dangerous = {
        "pg_sleep", "pg_read_file", "set_config", "current_setting", "dblink",
        "lo_import", "lo_export", "nextval", "setval", "pg_cancel_backend",
        "pg_terminate_backend", "query_to_xml", "random", "setseed",
        "pg_advisory_lock", "pg_notify", "txid_current", "regclass", "oid",
        "regproc", "xml",
    }  # fmt: skip

    allowed = {name for _, names in cohort_rules.allowed_names() for name in names}

    assert allowed & dangerous == set()


def test_readme__lists_every_allowed_function_and_operator() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Cohorts: what they may contain") :]
    listed = dict(cohort_rules.allowed_names())

    missing = [
        name
        for name in [*listed["functions"], *listed["operators"]]
        if f"`{name}`" not in section
    ]

    assert missing == []
