import math

import polars as pl
import pytest

from flows.core.stats import robust_z, robust_z_in_column, robust_z_of


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5], [(v - 3) / 1.4826 for v in (1, 2, 3, 4, 5)]),  # median 3, MAD 1
        ([5, 5, 5, 5], [0, 0, 0, 0]),  # constant: nothing is unusual
        ([5, 5, 5, 9], [0, 0, 0, 4 / (1 * 1.2533)]),  # MAD 0: mean absolute deviation (1)
    ],
)
def test_robust_z_in_column(values, expected):
    frame = pl.DataFrame({"x": [float(v) for v in values]})
    z = frame.select(robust_z_in_column(pl.col("x"))).to_series().to_list()
    assert z == pytest.approx(expected)


def test_robust_z_of_one_value_is_not_moved_by_one_outlier_in_history():
    assert abs(robust_z_of(100, [100, 101, 99, 100, 1_000_000])) < 1
    assert robust_z_of(103, [100, 101, 99, 100, 102]) == pytest.approx(3 / 1.4826)


def test_a_scale_floor_keeps_a_steady_history_from_calling_a_wobble_an_anomaly():
    steady = [100.0] * 5
    assert math.isinf(robust_z_of(101, steady))
    assert robust_z_of(101, steady, scale_floor=10) == pytest.approx(0.1)


def test_per_row_medians_and_mads_score_each_row_and_no_history_scores_nan():
    frame = pl.DataFrame({"x": [5.0, 5.0], "median": [3.0, None], "mad": [1.0, None]})
    z = frame.select(robust_z(pl.col("x"), pl.col("median"), pl.col("mad"))).to_series()
    assert z[0] == pytest.approx(2 / 1.4826)
    assert z[1] is None or math.isnan(z[1])
