"""max_cohort_cost: off by default, set by flag, CAMPAIGNER_* variable or TOML, and
the check comparing a planner estimate with it (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigner import cohort, errors
from campaigner.config import Settings, load_settings


def test_max_cohort_cost__off_by_default() -> None:
    assert load_settings(environ={}).max_cohort_cost is None


def test_max_cohort_cost__flag_over_variable_over_file(tmp_path: Path) -> None:
    config = tmp_path / "campaigner.toml"
    config.write_text("max_cohort_cost = 100\n")
    config.chmod(0o600)

    from_file = load_settings(environ={}, config_file=config)
    from_env = load_settings(
        environ={"CAMPAIGNER_MAX_COHORT_COST": "200.5"}, config_file=config
    )
    from_flag = load_settings(
        flags={"max_cohort_cost": 300.0},
        environ={"CAMPAIGNER_MAX_COHORT_COST": "200.5"},
        config_file=config,
    )

    assert (
        from_file.max_cohort_cost,
        from_env.max_cohort_cost,
        from_flag.max_cohort_cost,
    ) == (100.0, 200.5, 300.0)


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "a lot"])
def test_max_cohort_cost__refuses_what_is_not_a_positive_number(value: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        load_settings(environ={"CAMPAIGNER_MAX_COHORT_COST": value})

    assert "CAMPAIGNER_MAX_COHORT_COST" in caught.value.message


def test_check_cost__refuses_only_above_the_ceiling() -> None:
    settings = Settings(max_cohort_cost=1000)

    cohort.check_cost("at-ceiling", cohort.Estimate(cost=1000, rows=50), settings)
    cohort.check_cost("no-ceiling", cohort.Estimate(cost=1e12, rows=50), Settings())
    with pytest.raises(errors.InvalidCohort) as caught:
        cohort.check_cost("above", cohort.Estimate(cost=1000.6, rows=50), settings)

    assert caught.value.message == (
        "campaign 'above': the cohort's estimated cost 1001 (about 50 rows) is above"
        " max_cohort_cost 1000; narrow it with an indexed condition, or raise"
        " --max-cohort-cost or CAMPAIGNER_MAX_COHORT_COST"
    )
