import math
import statistics

import pytest

from imposter.bench.stats import mean_interval, t_coverage, t_quantile

# two-sided 95% multipliers from a t table
T_TABLE = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 30: 2.0423, 119: 1.9801}


@pytest.mark.parametrize("df", list(T_TABLE))
def test_t_quantile_matches_the_table(df):
    assert t_quantile(0.95, df) == pytest.approx(T_TABLE[df], abs=1e-4)


@pytest.mark.parametrize("df", [1, 2, 5, 8, 77])
def test_coverage_is_the_inverse_of_the_quantile_and_grows_with_t(df):
    for confidence in (0.5, 0.9, 0.99):
        assert t_coverage(t_quantile(confidence, df), df) == pytest.approx(confidence, abs=1e-12)
    values = [t_coverage(t, df) for t in (0.0, 0.5, 1.0, 2.0, 8.0, 100.0)]
    assert values[0] == 0 and values == sorted(values) and values[-1] <= 1
    assert t_coverage(-1.5, df) == t_coverage(1.5, df)


def test_large_df_approaches_the_normal():
    assert t_quantile(0.95, 5000) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=1e-3)


def test_mean_interval():
    values = [0.2, 0.4, 0.3, 0.5]
    mean, half_width = mean_interval(values)
    assert mean == pytest.approx(0.35)
    assert half_width == pytest.approx(T_TABLE[3] * statistics.stdev(values) / math.sqrt(4), rel=1e-4)
    assert mean_interval([0.7]) == (0.7, None)
    assert mean_interval([0.3, 0.3, 0.3]) == (pytest.approx(0.3), 0.0)
    with pytest.raises(ValueError):
        mean_interval([])
