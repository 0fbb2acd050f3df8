"""Exit codes: one per error family, and which one wins when runs end differently."""

from __future__ import annotations

import pytest

from campaigner import errors


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([0, 0], 0),
        ([6], 6),
        ([0, 6, 0], 6),
        ([6, 5], 5),
        ([5, 4, 6], 4),
        ([6, 75], 75),
        ([75, 5], 5),
        ([4, 1], 1),
        ([3], 3),
        ([0, 3, 6], 3),
    ],
)
def test_worst_exit_code__precedence(codes: list[int], expected: int) -> None:
    assert errors.worst_exit_code(codes) == expected


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.CampaignerError(), 1),
        (errors.ConfigurationError(), 3),
        (errors.DatabaseError(), 4),
        (errors.KafkaError(), 5),
        (errors.DeliveryError(), 5),
        (errors.CampaignFailed(), 6),
        (errors.InvalidSchedule(), 6),
        (errors.InvalidCohort(), 6),
        (errors.MissingTopic(), 6),
        (errors.Interrupted(), 75),
    ],
)
def test_error__exit_code_of_its_family(
    error: errors.CampaignerError, code: int
) -> None:
    assert error.exit_code == code


def test_error__docstring_is_the_default_message() -> None:
    assert errors.DatabaseError().message == "PostgreSQL is unreachable or failing."
