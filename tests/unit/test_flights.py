"""Pure parts of crash-safe runs: pacing slices, the rate limit, what a resumed run
keeps, and the batches-in-flight setting."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from campaigner import errors, ledger, streaming
from campaigner.campaigns import Campaign
from campaigner.config import load_settings


@pytest.mark.parametrize(
    ("count", "size", "expected"),
    [
        (10, None, [(0, 10)]),
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (3, 5, [(0, 3)]),
        (0, 5, []),
    ],
)
def test_slices__cover_the_batch_in_order(
    count: int, size: int | None, expected: list[tuple[int, int]]
) -> None:
    assert list(streaming.slices(count, size)) == expected


class FakeClock:
    """Stands in for the `time` module that streaming reads its monotonic clock from,
    so delays are computed from known instants, not the machine's scheduling."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(1_000.0)
    monkeypatch.setattr(streaming, "time", fake)
    return fake


def test_rate_limit__slice_is_a_tenth_of_a_second_and_delay_follows_what_was_sent(
    clock: FakeClock,
) -> None:
    limit = streaming.RateLimit(2_500)

    first = limit.delay()
    limit.sent = 5_000
    at_once = limit.delay()
    clock.now += 0.5
    half_a_second_later = limit.delay()

    assert (limit.slice_size, first, at_once, half_a_second_later) == (
        250,
        0.0,
        2.0,
        1.5,
    )


def test_rate_limit__time_spent_elsewhere_is_not_saved_up_for_a_burst(
    clock: FakeClock,
) -> None:
    limit = streaming.RateLimit(1_000)
    clock.now += 60  # a minute reading, nothing sent

    first = limit.delay()
    limit.sent = 1_000
    after_one_second_of_messages = limit.delay()

    assert first == -streaming.PACING_SLICE_S
    assert after_one_second_of_messages == pytest.approx(1 - streaming.PACING_SLICE_S)


def test_rate_limit__unlimited_never_waits() -> None:
    limit = streaming.RateLimit(None)
    limit.sent = 10**9

    assert (limit.slice_size, limit.delay()) == (None, 0.0)


def campaign(**changes: object) -> Campaign:
    base = Campaign(
        id=1,
        name="quota",
        status="active",
        schedule="0 9 * * *",
        timezone="UTC",
        cohort="true",
        channel="sms",
        topic="sms",
        template="t",
        message_fields=["phone"],
        batch_size=100,
        active_from=None,
        active_until=None,
        grace=timedelta(minutes=15),
        deadline=timedelta(hours=4),
        rate_limit=50,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def started_run(settings: dict[str, object]) -> ledger.Run:
    return ledger.Run(
        id=7,
        campaign_id=1,
        scheduled_for=datetime(2025, 6, 2, 9, tzinfo=UTC),
        manual=False,
        status="running",
        checkpoint=100,
        matched=100,
        produced=100,
        failed=0,
        attempts=1,
        cohort="true",
        settings=settings,
    )


def test_as_started__a_resumed_run_keeps_the_rate_limit_it_started_with() -> None:
    run = started_run(ledger.run_settings(campaign(rate_limit=50)))

    resumed = ledger.as_started(campaign(rate_limit=5_000), run)
    unlimited = ledger.as_started(
        campaign(rate_limit=5_000),
        started_run(ledger.run_settings(campaign(rate_limit=None))),
    )

    assert (resumed.rate_limit, unlimited.rate_limit) == (50, None)


def test_batches_in_flight__from_the_environment_and_bounded() -> None:
    settings = load_settings(environ={"CAMPAIGNER_BATCHES_IN_FLIGHT": "8"})

    with pytest.raises(errors.ConfigurationError) as caught:
        load_settings(environ={"CAMPAIGNER_BATCHES_IN_FLIGHT": "0"})

    assert (settings.batches_in_flight, caught.value.message) == (
        8,
        "batches_in_flight must be between 1 and 64, got 0"
        " (set CAMPAIGNER_BATCHES_IN_FLIGHT, or batches_in_flight in the config file)",
    )
