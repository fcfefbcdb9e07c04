"""Train a classifier on any Delta feature table, register it, and promote it only if it is better.

Given a table and a binary target: numeric, categorical and text columns are detected, the newest
rows become the holdout when there is a time column (else a seeded, stratified random share), a
successive-halving random search tunes the model on time-ordered (else stratified) folds,
and the fitted pipeline (preprocessing included) is saved under models/<name>/<version>/
with its report and plots. _ops/model_registry gets the version's params, key columns,
metrics, input table version and code version. It goes to production only if it beats the current
production model, scored on the same holdout, by a margin; else it stays in staging.
The same table version and seed give the same metrics.

    python flows/ml/training_pipeline.py                      # gold/order_features, is_large_order
    python flows/ml/training_pipeline.py --feature-table gold/churn --target churned \
        --time-column ts
"""

from flows.core.cli import run_from_command_line
from flows.ml.training.flow import training_pipeline

__all__ = ["training_pipeline"]

if __name__ == "__main__":
    run_from_command_line(training_pipeline)
