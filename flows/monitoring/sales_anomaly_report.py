"""Sales anomaly report over silver/orders, published to gold only after a person approves it.

Outlier orders (amount, log scale) and suspicious days (order count, revenue) by robust z-score
on median/MAD. The report is published as an artifact, then the run pauses for an approval
(approve + comment, a form in the Prefect UI). Approved: gold/sales_anomalies gets the report.
Rejected: nothing is published, the run completes. Not answered within the timeout: nothing is
published and the run fails (as Prefect's pause timeout intends), so failure alerts catch a
report nobody reviewed.

    python flows/monitoring/sales_anomaly_report.py                    # asks; waits 120 s
    python flows/monitoring/sales_anomaly_report.py --auto-approve     # unattended local run

Resume a paused run from the UI (Resume, fill in the form) or from Python:
    from prefect.flow_runs import resume_flow_run
    resume_flow_run(flow_run_id, run_input={"approve": True, "comment": "checked with sales"})
"""

from flows.core.cli import run_from_command_line
from flows.monitoring.sales_anomalies.flow import sales_anomaly_report

__all__ = ["sales_anomaly_report"]

if __name__ == "__main__":
    run_from_command_line(sales_anomaly_report)
