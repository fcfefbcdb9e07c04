"""Smoke test of the benchmark harness (`python -m bench --quick`): it runs and writes valid results.

Speed is never asserted here; bench/RESULTS.md reports it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HELD_MB = 300
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # bench/ is a folder of the repo, not an installed package

from bench.cases import CASES  # noqa: E402
from bench.harness import Context  # noqa: E402

_HELD: list[bytearray] = []


def hold_memory(params: dict[str, Any]) -> dict[str, Any]:
    """A measurement target (run by bench.worker): touch `mb` MiB and keep it until exit."""
    block = bytearray(int(params["mb"]) * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    _HELD.append(block)
    return {"seconds": 0.0, "rows": 0, "held": int(params["mb"])}


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory, prefect_api) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--results",
            str(out / "results"),
            "--cache",
            str(out / "cache"),
            "--work",
            str(out / "work"),
            "--prefect-api-url",
            prefect_api,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    results = json.loads((out / "results" / "results.json").read_text())
    return results, (out / "results" / "RESULTS.md").read_text()


@pytest.mark.slow
def test_quick_run_writes_results_valid_against_the_schema(quick_results):
    results, _ = quick_results
    schema = json.loads((REPO_ROOT / "bench" / "results.schema.json").read_text())
    jsonschema.validate(results, schema)
    assert results["quick"] is True
    assert results["machine"]["cores"] >= 1


@pytest.mark.slow
def test_quick_run_measures_every_case_without_errors(quick_results):
    results, _ = quick_results
    by_case = {case["case"]: case for case in results["cases"]}
    assert set(by_case) == {case.id for case in CASES}
    for case in CASES:
        found = by_case[case.id]
        assert found["error"] == "", found["error"]
        assert found["measurements"], case.id
        assert all(m["peak_rss_mb"] > 0 for m in found["measurements"])


@pytest.mark.slow
def test_quick_ingest_quarantines_malformed_rows_and_keeps_one_row_per_order(quick_results):
    results, _ = quick_results
    ingest = next(case for case in results["cases"] if case["case"] == "1")
    ours = next(m for m in ingest["measurements"] if m["variant"] == "pipeline")
    assert ours["extra"]["rejected"] > 0
    assert ours["extra"]["valid"] + ours["extra"]["rejected"] == ours["rows"]
    assert ours["extra"]["silver_rows"] < ours["extra"]["valid"]  # repeats merged away


@pytest.mark.slow
def test_results_markdown_states_the_machine_and_each_target_verdict(quick_results):
    results, markdown = quick_results
    assert f"{results['machine']['cores']} cores" in markdown
    assert f"Python {results['machine']['python']}" in markdown
    assert results["date"] in markdown
    for case in results["cases"]:
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {case['case']} |"))
        assert row.rstrip().endswith(f"{case['status']} |") or "**missed**" in row


def test_each_measurement_reports_its_own_peak_rss_not_its_parents(tmp_path):
    ctx = Context((1,), True, tmp_path / "cache", tmp_path / "work")
    target = "tests.bench.test_bench_quick:hold_memory"
    hold_memory({"mb": HELD_MB})  # a large parent must not inflate a child's peak
    try:
        big = ctx.measure("big", "big", target, {"mb": HELD_MB})
        small = ctx.measure("small", "small", target, {"mb": 1})
    finally:
        _HELD.clear()
    assert big.peak_rss_mb > HELD_MB
    assert small.peak_rss_mb < HELD_MB / 2
