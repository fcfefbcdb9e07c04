"""Robust statistics: how unusual a value is against the median and the median absolute deviation.

The median and MAD ignore the outliers being looked for, where the mean and standard deviation
would be dragged towards them.
"""

from __future__ import annotations

import polars as pl

MAD_TO_SIGMA = 1.4826
"""MAD times this estimates the standard deviation of normally distributed data."""
MEAN_AD_TO_SIGMA = 1.2533
"""Mean absolute deviation times this estimates it; the fallback when over half the values tie."""


def robust_z(
    value: pl.Expr, median: pl.Expr, mad: pl.Expr, *, scale_floor: pl.Expr | float = 0.0
) -> pl.Expr:
    """(value - median) / max(1.4826 * MAD, scale_floor): a z-score the outliers cannot hide."""
    return (value - median) / pl.max_horizontal(mad * MAD_TO_SIGMA, scale_floor)


def robust_z_in_column(values: pl.Expr) -> pl.Expr:
    """Each value's robust z-score within its column; with MAD 0 the scale is the mean absolute
    deviation, and a constant column scores 0."""
    median = values.median()
    deviation = (values - median).abs()
    tied_scale = pl.when(deviation.median() > 0).then(0.0).otherwise(deviation.mean())
    z = robust_z(values, median, deviation.median(), scale_floor=tied_scale * MEAN_AD_TO_SIGMA)
    return z.fill_nan(0.0)


def robust_z_of(value: float, history: list[float], *, scale_floor: float = 0.0) -> float:
    """The robust z-score of one `value` against a `history` of values."""
    series = pl.Series(history, dtype=pl.Float64)
    median = series.median()
    assert isinstance(median, float)
    mad = (series - median).abs().median()
    expression = robust_z(pl.lit(value), pl.lit(median), pl.lit(mad), scale_floor=scale_floor)
    return float(pl.select(expression).item())
