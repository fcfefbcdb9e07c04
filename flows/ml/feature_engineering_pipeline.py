"""Silver orders, customers, products and events into gold/order_features, point-in-time correct.

Every feature of an order is computed from data strictly before the order (windows closed on the
left, as-of joins without exact matches), so each month of orders is built as an independent
mapped task (on threads, or on a Dask cluster: flows/core/runners.py) from pinned versions of its
sources; the table is rewritten in one commit, and _ops/feature_metadata records each feature's
family and those versions.
A missing silver table gets sample data where LAKE_SAMPLE_DATA allows it (a local lake by
default, so the zero-config run works offline); otherwise the run stops and says what produces it.

    python flows/ml/feature_engineering_pipeline.py             # local lake (./lake)
    LAKE_URI=s3://bucket/lake python flows/ml/feature_engineering_pipeline.py
"""

from flows.core.cli import run_from_command_line
from flows.ml.features.flow import feature_engineering_pipeline

__all__ = ["feature_engineering_pipeline"]

if __name__ == "__main__":
    run_from_command_line(feature_engineering_pipeline)
