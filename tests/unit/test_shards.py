"""Shard planning and how a sharded run ends: pure logic."""

from __future__ import annotations

import pathlib
import time

import pytest
from psycopg import sql

from campaigner import cohort_stream, errors, shards, streaming
from campaigner.config import Settings, load_settings

FIRST = -(2**63)


@pytest.mark.parametrize(
    ("lowest", "highest", "count", "expected"),
    [
        (1, 100, 4, [(FIRST, 25), (25, 50), (50, 75), (75, None)]),
        (1, 10, 3, [(FIRST, 3), (3, 6), (6, None)]),
        (1001, 1002, 8, [(FIRST, 1001), (1001, None)]),
        (7, 7, 5, [(FIRST, None)]),
        (-50, 49, 2, [(FIRST, -1), (-1, None)]),
    ],
)
def test_split__equal_widths_covering_every_key(
    lowest: int, highest: int, count: int, expected: list[shards.Bounds]
) -> None:
    assert shards.split(lowest, highest, count) == expected


@pytest.mark.parametrize(
    ("estimated", "threshold", "size", "expected"),
    [
        (1_000_000, 1_000_000, 250_000, 1),
        (1_000_001, 1_000_000, 250_000, 5),
        (5_000_000, 1_000_000, 250_000, 20),
        (1_500, 1_000, 1_000, 2),
        (10**10, 1_000_000, 250_000, shards.MAX_SHARDS),
        (10**10, 0, 250_000, 1),
    ],
)
def test_shard_count__threshold_size_and_bound(
    estimated: int, threshold: int, size: int, expected: int
) -> None:
    settings = Settings(shard_threshold=threshold, shard_size=size)

    assert shards.shard_count(estimated, settings) == expected


@pytest.mark.parametrize(
    ("statuses", "failed", "expected"),
    [
        ([("done", False, None)] * 3, 0, ("succeeded", False)),
        ([("done", False, None)] * 3, 2, ("completed_with_errors", False)),
        (
            [("done", False, None), ("failed", True, "b"), ("expired", False, "e")],
            0,
            ("expired", False),
        ),
        (
            [("interrupted", True, "i"), ("failed", True, "b"), ("failed", False, "c")],
            0,
            ("failed", False),
        ),
        ([("interrupted", True, "i"), ("failed", True, "b")], 0, ("failed", True)),
        ([("done", False, None), ("interrupted", True, "i")], 0, ("interrupted", True)),
        ([("done", False, None), ("pending", False, None)], 0, ("interrupted", True)),
        ([("done", False, None), ("running", False, None)], 0, ("interrupted", True)),
    ],
)
def test_run_ending__the_gravest_shard_decides(
    statuses: list[tuple[str, bool, str | None]],
    failed: int,
    expected: tuple[str, bool],
) -> None:
    ending = shards.run_ending(statuses, campaign_name="big", failed=failed)

    assert (ending.status, ending.retryable) == expected


def test_run_ending__error_of_the_gravest_shard() -> None:
    ending = shards.run_ending(
        [("interrupted", True, "stopped"), ("failed", True, "broker down")],
        campaign_name="big",
        failed=0,
    )

    assert ending.error == "broker down"


def test_settings__sharding_from_the_environment_and_the_file(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "campaigner.toml"
    path.write_text("shard_threshold = 2000000\nshard_size = 500000\n")

    from_file = load_settings(environ={}, config_file=path)
    from_env = load_settings(
        environ={"CAMPAIGNER_SHARD_THRESHOLD": "0", "CAMPAIGNER_SHARD_SIZE": "1000"},
        config_file=path,
    )

    assert (from_file.shard_threshold, from_file.shard_size) == (2_000_000, 500_000)
    assert (from_env.shard_threshold, from_env.shard_size) == (0, 1_000)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CAMPAIGNER_SHARD_SIZE": "10"},
            "shard_size must be between 1,000 and 100,000,000, got 10",
        ),
        (
            {"CAMPAIGNER_SHARD_THRESHOLD": "-1"},
            "shard_threshold must be 0 (never shard) or more, got -1",
        ),
    ],
)
def test_settings__sharding_out_of_range_is_a_configuration_error(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(errors.ConfigurationError) as raised:
        load_settings(environ=environ)

    assert raised.value.message.startswith(message)


def test_rate_limit__a_changed_share_keeps_what_was_sent_at_the_old_rate() -> None:
    limit = streaming.RateLimit(2_000)
    limit.started = time.monotonic()
    limit.sent = 2_000  # one second's worth at 2,000 per second

    limit.change(1_000)  # a second process joined: half each
    at_change = limit.delay()
    limit.sent = 1_000  # one more second's worth at the new rate

    assert limit.per_second == 1_000
    assert (0.9 < at_change <= 1.0, 1.9 < limit.delay() <= 2.0) == (True, True)


def test_rate_limit__unlimited_stays_unlimited() -> None:
    limit = streaming.RateLimit(None)

    limit.change(500)

    assert (limit.per_second, limit.delay()) == (None, 0.0)


def test_chunk_query__a_shards_upper_bound_after_the_checkpoint() -> None:
    encoder = cohort_stream.FieldEncoder(["email"], {"email": "text"})

    query = cohort_stream.chunk_query(
        Settings(),
        encoder,
        cohort="country = 'DE' -- a comment",
        table=sql.Identifier("public", "user_data"),
        after=1234,
        limit=500,
        until=5678,
    )

    assert query.as_string(None) == (
        'SELECT "id", "email" FROM "public"."user_data"\n'
        "WHERE (\ncountry = 'DE' -- a comment\n)\n"
        'AND "id" > 1234\nAND "id" <= 5678\nORDER BY "id"\nLIMIT 500'
    )


def test_chunk_query__the_first_chunk_has_no_lower_bound() -> None:
    encoder = cohort_stream.FieldEncoder([], {})

    query = cohort_stream.chunk_query(
        Settings(),
        encoder,
        cohort="true",
        table=sql.Identifier("public", "user_data"),
        after=None,
        limit=10,
    )

    assert query.as_string(None) == (
        'SELECT "id" FROM "public"."user_data"\nWHERE (\ntrue\n)\n'
        'ORDER BY "id"\nLIMIT 10'
    )
