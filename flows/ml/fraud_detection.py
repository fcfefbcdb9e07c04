"""Per-account fraud rules over new silver transactions; alerts to gold/fraud_alerts.

Rules: velocity (too many transactions in a sliding window), amount anomaly (robust z-score of
the amount against the account's own recent history, median/MAD), impossible travel (implied
speed between consecutive transactions faster than an airliner), plus an IsolationForest outlier
score. Each account's recent transactions persist in _ops/fraud_account_state, so a pattern split
across batches or runs is still caught. Alerts are MERGEd on (transaction_id, rule): re-running a
batch never duplicates them. Transactions since the state's newest one are processed, oldest
first, in batches of LAKE_BATCH_ROWS; the hour before it is read again for late arrivals.
A missing silver/transactions gets sample data with one injected case of each rule where
LAKE_SAMPLE_DATA allows it (a local lake by default); otherwise the run stops and says why.

    python flows/ml/fraud_detection.py
    LAKE_URI=s3://bucket/lake python flows/ml/fraud_detection.py
"""

from flows.core.cli import run_from_command_line
from flows.ml.fraud.flow import fraud_detection

__all__ = ["fraud_detection"]

if __name__ == "__main__":
    run_from_command_line(fraud_detection)
