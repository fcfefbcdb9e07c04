import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flows import samples
from flows.catalog import FRAUD_ACCOUNT_STATE, FRAUD_ALERTS, MODEL_REGISTRY, TRANSACTIONS
from flows.core import lake
from flows.ml.fraud.anomaly import (
    ANOMALY_MODEL,
    anomaly_alerts,
    anomaly_inputs,
    fitted_forest,
    forest_alerts,
    forest_version,
)
from flows.ml.fraud.flow import fraud_detection
from flows.ml.fraud.report import summary_markdown
from flows.ml.fraud.rules import (
    FraudRules,
    detect_fraud,
    empty_state,
    haversine_km,
    history_median_mad,
    merged_state,
    watermark,
)
from flows.ml.fraud.sample_data import sample_transactions

T0 = datetime(2024, 2, 1, 12, tzinfo=UTC)
BERLIN, POTSDAM, PARIS = (52.52, 13.40), (52.39, 13.06), (48.86, 2.35)
RULES = FraudRules()


def txns(*rows):
    """Transactions from (id, account, minutes after T0, amount, (lat, lon))."""
    return pl.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "amount": [float(r[3]) for r in rows],
            "merchant_category": ["online"] * len(rows),
            "latitude": [r[4][0] for r in rows],
            "longitude": [r[4][1] for r in rows],
            "occurred_at": [T0 + timedelta(minutes=r[2]) for r in rows],
        },
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )


def alerted(result, rule):
    return sorted(result.alerts.filter(pl.col("rule") == rule)["transaction_id"].to_list())


def run(*batches, rules=RULES):
    """Detect over consecutive batches, carrying the state; returns every batch's result."""
    state, results = empty_state(), []
    for batch in batches:
        result = detect_fraud(batch, state, rules, T0)
        state = merged_state(state, result.state)
        results.append(result)
    return results


BURST = [(i, 1, i, 20, BERLIN) for i in range(1, 7)]  # six in five minutes
SPREAD = [(10 + i, 2, 15 * i, 20, BERLIN) for i in range(6)]  # six in 75 minutes
USUAL = [(100 + i, 3, 60 * i, 20 + i % 3, BERLIN) for i in range(12)]
SPIKE = (200, 3, 60 * 13, 2_000, BERLIN)
TRIP = [(300, 4, 0, 50, BERLIN), (301, 4, 30, 50, PARIS)]  # 878 km in 30 minutes
HOP = [(310, 5, 0, 50, BERLIN), (311, 5, 1, 50, POTSDAM)]  # 27 km in a minute: GPS noise
DRIVE = [(320, 6, 0, 50, BERLIN), (321, 6, 120, 50, PARIS)]  # 439 km/h


@pytest.mark.parametrize(
    ("rows", "rule", "expected"),
    [
        (BURST, "velocity", [6]),
        (SPREAD, "velocity", []),
        ([*USUAL, SPIKE], "amount_anomaly", [200]),
        ([*USUAL[:5], SPIKE], "amount_anomaly", []),  # too little history to judge
        (USUAL, "amount_anomaly", []),
        (TRIP, "impossible_travel", [301]),
        (HOP, "impossible_travel", []),
        (DRIVE, "impossible_travel", []),
    ],
)
def test_each_rule_on_hand_built_cases(rows, rule, expected):
    (result,) = run(txns(*rows))
    assert alerted(result, rule) == expected
    others = set(result.alerts["rule"]) - {rule}
    assert others == set(), f"unexpected {others}"


@pytest.mark.parametrize(
    ("first", "second", "rule", "expected"),
    [
        (BURST[:3], BURST[3:], "velocity", [6]),
        (USUAL, [SPIKE], "amount_anomaly", [200]),
        (TRIP[:1], TRIP[1:], "impossible_travel", [301]),
    ],
)
def test_a_pattern_split_across_two_batches_is_caught_in_the_second(first, second, rule, expected):
    one, two = run(txns(*first), txns(*second))
    assert alerted(one, rule) == []
    assert alerted(two, rule) == expected


def test_evidence_explains_each_alert():
    (result,) = run(txns(*BURST, *USUAL, SPIKE, *TRIP))
    evidence = {r["rule"]: json.loads(r["evidence"]) for r in result.alerts.iter_rows(named=True)}
    assert evidence["velocity"] == {"velocity_count": 6}
    assert evidence["amount_anomaly"]["amount_median"] == pytest.approx(21.0)
    assert evidence["amount_anomaly"]["amount_history"] == 12
    assert evidence["amount_anomaly"]["amount_z"] > RULES.amount_z
    travel = evidence["impossible_travel"]
    assert travel["previous_transaction_id"] == 300
    assert travel["distance_km"] == pytest.approx(878, rel=0.01)
    assert travel["speed_kmh"] == pytest.approx(1756, rel=0.01)


def test_rescoring_a_batch_with_the_state_it_produced_gives_the_same_alerts():
    first, second = txns(*BURST[:3], *TRIP[:1]), txns(*BURST[3:], *TRIP[1:])
    _, two = run(first, second)
    state = merged_state(run(first)[0].state, two.state)  # the state after both batches
    again = detect_fraud(second, state, RULES, T0)
    assert again.alerts.sort("transaction_id", "rule").equals(
        two.alerts.sort("transaction_id", "rule")
    )
    assert again.state.equals(two.state)


def test_batches_give_the_alerts_one_big_batch_gives():
    sample = pl.from_arrow(samples.transactions(6_000, seed=9, account_count=40)).sort(
        "occurred_at"
    )
    touchy = FraudRules(
        velocity_window=timedelta(hours=6),
        velocity_max=2,
        amount_z=2.5,
        max_speed_kmh=1,
        min_travel_km=1,
    )
    (whole,) = run(sample, rules=touchy)
    parts = run(*(sample.slice(i, 1_000) for i in range(0, 6_000, 1_000)), rules=touchy)
    key = ["transaction_id", "rule"]
    together = pl.concat([p.alerts for p in parts]).select(key).sort(key)
    assert set(whole.alerts["rule"]) == {"velocity", "amount_anomaly", "impossible_travel"}
    assert together.equals(whole.alerts.select(key).sort(key))


def test_state_keeps_the_last_transactions_of_each_touched_account():
    rules = FraudRules(history_size=3)
    result = detect_fraud(txns(*USUAL), empty_state(), rules, T0)
    row = result.state.row(0, named=True)
    assert row["transaction_ids"] == [109, 110, 111]
    assert row["last_seen_at"] == T0 + timedelta(minutes=660)
    assert watermark(result.state, timedelta(minutes=5)) == row["last_seen_at"] - timedelta(
        minutes=5
    )
    assert watermark(empty_state(), timedelta(0)) is None
    FRAUD_ACCOUNT_STATE.conform(result.state.to_arrow())


def test_history_median_mad_matches_a_brute_force_computation():
    rng = np.random.default_rng(0)
    groups = [rng.normal(0, 1, n) for n in (1, 4, 9, 30)]
    values = np.concatenate(groups)
    seq = np.concatenate([np.arange(len(g)) for g in groups])
    median, mad = history_median_mad(values, seq, window=5, chunk_rows=7)
    position = 0
    for group in groups:
        for i in range(len(group)):
            before = group[max(0, i - 5) : i]
            if len(before) == 0:
                assert np.isnan(median[position])
            else:
                assert median[position] == pytest.approx(np.median(before))
                assert mad[position] == pytest.approx(np.median(np.abs(before - np.median(before))))
            position += 1


def test_haversine_knows_paris_to_new_york():
    frame = pl.DataFrame({"a": [PARIS[0]], "b": [PARIS[1]], "c": [40.71], "d": [-74.01]})
    km = frame.select(haversine_km(pl.col("a"), pl.col("b"), pl.col("c"), pl.col("d"))).item()
    assert km == pytest.approx(5_837, rel=0.005)


def test_anomaly_alerts_keep_only_the_outliers_with_their_score():
    (result,) = run(txns(*TRIP))
    alerts = anomaly_alerts(result.signals, np.array([0.3, 0.8]), np.array([False, True]), T0)
    assert alerts["transaction_id"].to_list() == [301]
    assert json.loads(alerts["evidence"][0]) == {"anomaly_score": 0.8}
    FRAUD_ALERTS.conform(alerts.to_arrow())


def test_the_forest_alerts_on_exactly_the_rows_it_calls_outliers():
    (result,) = run(txns(*USUAL, *TRIP))
    inputs = anomaly_inputs(result.signals)
    model = fitted_forest(inputs, contamination=0.2, seed=1)
    alerts = forest_alerts(model, result.signals, inputs, T0)
    outliers = result.signals.filter(pl.Series(model.predict(inputs) == -1))
    assert alerts["transaction_id"].to_list() == outliers["transaction_id"].to_list()
    assert set(alerts["rule"]) == {"isolation_forest"}
    assert 0 < alerts.height < result.signals.height


def test_forest_version_registers_the_forest_as_unsupervised():
    version = forest_version(
        version=2, fitted_rows=300, contamination=0.01, seed=5, transactions_version=7
    )
    row = version.row(T0)
    assert (row["model_name"], row["version"], row["target"]) == (ANOMALY_MODEL, 2, None)
    assert json.loads(row["input_versions"]) == {TRANSACTIONS.path: 7}
    assert json.loads(row["params"]) == {"n_estimators": 100, "contamination": 0.01}


def test_summary_lists_alerts_per_rule_and_the_thresholds_used():
    text = summary_markdown(
        transactions=10,
        batches=2,
        since=None,
        source="silver/transactions v3",
        counts={"velocity": 2, "amount_anomaly": 1},
        rules=RULES,
    )
    assert text.startswith("# Fraud detection: 10 transactions in 2 batch(es)\n")
    assert "Since the beginning, silver/transactions v3." in text
    assert text.index("| amount_anomaly | 1 |") < text.index("| velocity | 2 |")
    assert "| velocity_max | 5 |" in text


def test_sample_transactions_carry_one_injected_case_of_each_rule():
    table = sample_transactions(100, seed=1)
    assert table.num_rows == 100 + 23
    assert table["transaction_id"].to_pylist()[100:] == list(range(101, 124))
    TRANSACTIONS.conform(table)


def test_flow_flags_the_injected_cases_and_a_rerun_adds_nothing(any_lake, prefect_api):
    rows = 2_000
    first = fraud_detection(sample_rows=rows, sample_data=True)  # off by default on S3
    assert first["transactions"] == rows + 23
    alerts = lake.read(FRAUD_ALERTS)
    flagged = {(r["rule"], r["transaction_id"]) for r in alerts.iter_rows(named=True)}
    assert {("velocity", rows + i) for i in (6, 7, 8)} <= flagged
    assert ("amount_anomaly", rows + 21) in flagged
    assert ("impossible_travel", rows + 23) in flagged
    assert "isolation_forest" in set(alerts["rule"])
    assert lake.read(MODEL_REGISTRY)["model_name"].to_list() == [ANOMALY_MODEL]
    assert lake.read(FRAUD_ACCOUNT_STATE).height == lake.read(TRANSACTIONS)["account_id"].n_unique()

    fraud_detection(sample_rows=rows)
    assert lake.read(FRAUD_ALERTS).height == alerts.height
    assert lake.read(MODEL_REGISTRY).height == 1  # fitted once, never refitted


def test_pattern_split_across_two_runs_is_caught_and_reruns_never_duplicate(
    local_lake, prefect_api
):
    lake.merge(TRANSACTIONS, txns(*BURST[:3], *TRIP[:1]))
    fraud_detection()
    assert not lake.exists(FRAUD_ALERTS) or lake.read(FRAUD_ALERTS).height == 0

    lake.merge(TRANSACTIONS, txns(*BURST[3:], *TRIP[1:]))
    second = fraud_detection(allowed_lateness_minutes=0)
    assert second["transactions"] == 5  # the newest one seen (minute 3) again, and the new ones
    alerts = lake.read(FRAUD_ALERTS).sort("transaction_id")
    assert alerts.select("transaction_id", "rule").rows() == [
        (6, "velocity"),
        (301, "impossible_travel"),
    ]

    late = (7, 1, 25, 20, BERLIN)  # lands after a run that saw minute 30: five minutes late
    lake.merge(TRANSACTIONS, txns(late, (400, 9, 29, 20, BERLIN), (401, 9, 29.5, 20, PARIS)))
    third = fraud_detection(allowed_lateness_minutes=10)
    assert third["transactions"] == 4  # the late one, account 9's two, and minute 30 again
    alerts = lake.read(FRAUD_ALERTS).sort("transaction_id")
    assert alerts.select("transaction_id", "rule").rows() == [
        (6, "velocity"),
        (301, "impossible_travel"),
        (401, "impossible_travel"),
    ]

    fraud_detection()  # an hour of lateness re-reads everything: the same alerts, merged
    assert lake.read(FRAUD_ALERTS).height == 3
    assert lake.history(FRAUD_ALERTS, limit=1)[0]["operation"] == "MERGE"  # updated, not added
