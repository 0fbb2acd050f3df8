"""The cohort's shape check and the chunk query around it (no server needed)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Generator

import pytest
from psycopg import sql

from campaigner import cohort, cohort_stream, errors
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


def test_chunk_query__cohort_on_its_own_lines_in_parentheses() -> None:
    encoder = cohort_stream.FieldEncoder(
        ["email", "signed_up", "tags"],
        {"email": "text", "signed_up": "timestamp with time zone", "tags": "text[]"},
    )

    query = cohort_stream.chunk_query(
        Settings(),
        encoder,
        cohort="country = 'DE' OR country = 'FR' -- a comment",
        table=sql.Identifier("public", "user_data"),
        after=1234,
        limit=500,
    )

    assert query.as_string(None) == (
        'SELECT "id", "email", pg_catalog.to_json("signed_up"),'
        ' pg_catalog.to_json("tags") FROM "public"."user_data"\n'
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


@pytest.mark.parametrize(
    ("pg_type", "kind"),
    [
        ("text", "string"),
        ("character varying(255)", "string"),
        ("numeric(12,2)", "as_text"),
        ("uuid", "as_text"),
        ("bigint", "integer"),
        ("boolean", "boolean"),
        ("jsonb", "json"),
        ("bytea", "hex"),
        ("timestamp with time zone", "to_json"),
        ("double precision", "to_json"),
        ("text[]", "to_json"),
    ],
)
def test_kind_of__how_each_type_travels(pg_type: str, kind: str) -> None:
    assert cohort_stream.kind_of(pg_type) == kind


def test_encode_rows__one_json_object_per_row_nulls_included() -> None:
    encode_rows = cohort_stream.compile_encoder(
        ["name", "visits", "vip", "attributes"],
        ["string", "integer", "boolean", "json"],
    )

    rows = encode_rows(
        [
            (7, 'A "quoted"\nname', 3, True, '{"plan": "pro"}'),
            (8, None, None, False, None),
        ]
    )

    assert rows == [
        (
            "7",
            '{"name":"A \\"quoted\\"\\nname","visits":3,"vip":true,'
            '"attributes":{"plan": "pro"}}',
        ),
        ("8", '{"name":null,"visits":null,"vip":false,"attributes":null}'),
    ]
    assert cohort_stream.compile_encoder([], [])([(9,)]) == [("9", "{}")]


def test_read_ahead__yields_in_order_and_raises_the_readers_error() -> None:
    def chunks() -> Generator[cohort_stream.Rows, None, None]:
        yield [("1", "{}")]
        yield [("2", "{}")]
        raise errors.InvalidCohort("campaign 'c': cohort query was cancelled")

    got = []
    with pytest.raises(errors.InvalidCohort, match="was cancelled"):
        for rows in cohort_stream.read_ahead(chunks()):
            got.append(rows)

    assert got == [[("1", "{}")], [("2", "{}")]]


def test_read_ahead__closing_early_stops_and_closes_the_reader() -> None:
    closed = threading.Event()

    def chunks() -> Generator[cohort_stream.Rows, None, None]:
        try:
            for number in itertools.count():
                yield [(str(number), "{}")]
        finally:
            closed.set()

    ahead = cohort_stream.read_ahead(chunks())
    assert next(ahead) == [("0", "{}")]
    ahead.close()

    assert closed.is_set()
