"""Pipeline health from the Prefect API and the Delta log: are the flows running, and writing?

Per flow in the last N hours: runs, success and failure rates, duration p50/p95, late runs (from
the Prefect API). Per table: commits and rows written, attributed to the writing flow through the
`prefect.flow_run_id` every commit carries. Written to _ops/pipeline_metrics (long format) and a
markdown artifact with charts.

    python flows/monitoring/pipeline_health.py              # the last 24 hours
    python flows/monitoring/pipeline_health.py --hours 168  # the last week
"""

from flows.core.cli import run_from_command_line
from flows.monitoring.health.flow import pipeline_health

__all__ = ["pipeline_health"]

if __name__ == "__main__":
    run_from_command_line(pipeline_health)
