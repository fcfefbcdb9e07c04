"""Data quality of every catalog table in the lake: GX suites from the contracts, freshness, volume.

For each table that exists: the Great Expectations suite generated from its contract (plus the
hand-written expectations) through a checkpoint, freshness against its SLA and volume against its
own history (both from the Delta log), schema drift against the contract. Results are appended to
_ops/quality_results, Data Docs are written to <lake>/_ops/data_docs/, a summary artifact carries
a health score, a `lake.quality.failed` event is emitted per failing table (alerts hang on it),
and a critical failure fails the run.

    python flows/monitoring/data_quality_monitor.py                        # every catalog table
    python flows/monitoring/data_quality_monitor.py --table silver/orders  # just one
"""

from flows.core.cli import run_from_command_line
from flows.monitoring.data_quality.flow import data_quality_monitor

__all__ = ["data_quality_monitor"]

if __name__ == "__main__":
    run_from_command_line(data_quality_monitor)
