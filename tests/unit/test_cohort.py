"""The cohort's shape check and the chunk query around it (no server needed)."""

from __future__ import annotations

import pytest
from psycopg import sql

from campaigner import cohort, errors
from campaigner.config import Settings


@pytest.mark.parametrize(
    "text",
    [
        "country = 'DE' OR country = 'FR'",
        "country = 'DE' -- a comment",
        "email_consent AND country IN ('DE', 'FR')\n-- trailing comment\n",
        "/* leading */ true",
        "lifetime_value > 10 AND last_active_at > now() - interval '30 days'",
        "attributes ->> 'segment' = '2'",
        "email LIKE '%@example.test'",
        "true",
    ],
)
def test_check_cohort_shape__accepts_one_expression(text: str) -> None:
    cohort.check_cohort_shape("spring-sale", text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "cohort is empty"),
        ("   \n\t", "cohort is empty"),
        ("true) OR (true", "cohort is not valid SQL"),
        ("true; DROP TABLE user_data", "cohort must be one expression; remove the ';'"),
        ("country = 'DE';", "cohort must be one expression; remove the ';'"),
        ("true FROM pg_shadow", "one boolean expression"),
        ("1 AS x", "one boolean expression"),
        ("true, false", "one boolean expression"),
        ("true ORDER BY 1", "one boolean expression"),
        ("true UNION SELECT true", "one boolean expression"),
        ("true FOR UPDATE", "one boolean expression"),
        ("true /* unterminated", "cohort is not valid SQL"),
    ],
)
def test_check_cohort_shape__rejects(text: str, fragment: str) -> None:
    with pytest.raises(errors.InvalidCohort) as caught:
        cohort.check_cohort_shape("spring-sale", text)

    assert (
        caught.value.message.startswith("campaign 'spring-sale': "),
        fragment in caught.value.message,
    ) == (
        True,
        True,
    )


# DESIGN.md §6: functions and sub-queries outside an allow-list are refused.
@pytest.mark.parametrize(
    "text",
    [
        "pg_sleep(10) IS NOT NULL",
        "set_config('statement_timeout', '0', false) IS NOT NULL",
        "EXISTS (SELECT 1 FROM pg_shadow)",
        "pg_read_file('/etc/passwd') IS NOT NULL",
        "nextval('campaigns_id_seq') > 0",
    ],
)
def test_check_cohort_shape__rejects_forbidden_functions(text: str) -> None:
    with pytest.raises(errors.InvalidCohort):
        cohort.check_cohort_shape("spring-sale", text)


def test_select_query__cohort_on_its_own_lines_in_parentheses() -> None:
    query = cohort.select_query(
        Settings(),
        cohort="country = 'DE' OR country = 'FR' -- a comment",
        fields=["email"],
        after=1234,
        limit=500,
        table=sql.Identifier("public", "user_data"),
    )

    text = query.as_string(None)

    assert text == (
        'SELECT "id", "email" FROM "public"."user_data"\n'
        "WHERE (\n"
        "country = 'DE' OR country = 'FR' -- a comment\n"
        ")\n"
        'AND "id" > 1234\n'
        'ORDER BY "id"\n'
        "LIMIT 500"
    )


@pytest.mark.parametrize("field", ["email", "first_name", "_x1"])
def test_check_fields__accepts_column_names(field: str) -> None:
    cohort.check_fields("spring-sale", [field])


@pytest.mark.parametrize("field", ['email"', "email, phone", "1st", "e-mail", ""])
def test_check_fields__rejects_what_is_not_a_column_name(field: str) -> None:
    with pytest.raises(errors.InvalidCohort) as caught:
        cohort.check_fields("spring-sale", [field])

    assert caught.value.message == (
        f"campaign 'spring-sale': message field {field!r} is not a column name"
    )
