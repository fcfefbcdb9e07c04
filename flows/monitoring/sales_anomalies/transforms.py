"""Pure sales-anomaly computations: robust z-scores on Polars frames, the report to review."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from flows.core.artifacts import markdown_table
from flows.core.stats import robust_z_in_column

ANOMALY_COLUMNS = (
    "anomaly_id",
    "kind",
    "metric",
    "order_date",
    "order_id",
    "value",
    "median",
    "robust_z",
)


def outlier_orders(orders: pl.DataFrame, *, threshold: float = 3.5) -> pl.DataFrame:
    """Orders whose amount is unusual on a log scale (order amounts are multiplicative)."""
    log_amount = pl.col("amount").log()
    return (
        orders.filter(pl.col("amount") > 0)
        .with_columns(
            robust_z_in_column(log_amount).alias("robust_z"),
            pl.col("amount").median().alias("median"),
        )
        .filter(pl.col("robust_z").abs() > threshold)
        .select(
            pl.format("order:{}", "order_id").alias("anomaly_id"),
            pl.lit("order").alias("kind"),
            pl.lit("amount").alias("metric"),
            "order_date",
            "order_id",
            pl.col("amount").alias("value"),
            "median",
            "robust_z",
        )
        .sort(pl.col("robust_z").abs(), descending=True)
    )


def daily_sales(orders: pl.DataFrame) -> pl.DataFrame:
    """Orders and revenue per day."""
    return (
        orders.group_by("order_date")
        .agg(pl.len().cast(pl.Float64).alias("orders"), pl.col("amount").sum().alias("revenue"))
        .sort("order_date")
    )


def suspicious_days(daily: pl.DataFrame, *, threshold: float = 3.5) -> pl.DataFrame:
    """Days whose order count or revenue is far from the typical day (robust z-score)."""
    per_metric = [
        daily.select(
            pl.format("day:{}:" + metric, "order_date").alias("anomaly_id"),
            pl.lit("day").alias("kind"),
            pl.lit(metric).alias("metric"),
            "order_date",
            pl.lit(None, pl.Int64).alias("order_id"),
            pl.col(metric).alias("value"),
            pl.col(metric).median().alias("median"),
            robust_z_in_column(pl.col(metric)).alias("robust_z"),
        )
        for metric in ("orders", "revenue")
    ]
    return (
        pl.concat(per_metric)
        .filter(pl.col("robust_z").abs() > threshold)
        .sort("order_date", "metric")
    )


def anomaly_report(
    outliers: pl.DataFrame,
    days: pl.DataFrame,
    *,
    report_id: str,
    orders_version: int,
    approval_comment: str,
    published_at: datetime,
) -> pl.DataFrame:
    """Both kinds of anomaly as rows of the published report."""
    return pl.concat(
        [outliers.select(ANOMALY_COLUMNS), days.select(ANOMALY_COLUMNS)], how="vertical_relaxed"
    ).with_columns(
        pl.lit(report_id).alias("report_id"),
        pl.lit(orders_version, pl.Int64).alias("orders_version"),
        pl.lit(approval_comment).alias("approval_comment"),
        pl.lit(published_at).cast(pl.Datetime("us", "UTC")).alias("published_at"),
    )


def report_markdown(
    outliers: pl.DataFrame, days: pl.DataFrame, *, orders: int, report_id: str, threshold: float
) -> str:
    """The report a person reviews before approving it."""
    shown = ["order_date", "order_id", "value", "median", "robust_z"]
    return (
        f"# Sales anomaly report `{report_id}`\n\n"
        f"{orders} orders analysed; robust z-score threshold {threshold} (median/MAD).\n\n"
        f"## Outlier orders: {outliers.height}\n\n{markdown_table(outliers.select(shown).head(25))}"
        f"\n\n## Suspicious days: {days.height}\n\n"
        + markdown_table(days.select("order_date", "metric", "value", "median", "robust_z"))
        + "\n\nApprove (or reject) this report when resuming the paused run; only an approved"
        " report is published to gold/sales_anomalies."
    )
