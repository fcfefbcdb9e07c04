"""`python -m bench`: run the cases of issue 8 and write results.json and RESULTS.md.

python -m bench                                # 1M and 10M rows (make bench)
python -m bench --scale 1000000 10000000      # the same, explicitly
python -m bench --quick --results /tmp/bench   # seconds: checks the harness, not the speed
python -m bench --only 1,9 --scale 100000      # some cases only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.cases import CASES, Case
from bench.harness import CaseResult, Context, MeasurementError

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SCALES = (1_000_000, 10_000_000)
QUICK_SCALES = (10_000,)
BUSY_SHARE = 0.10
"""Above this share of the CPU used by other processes, RESULTS.md says the machine was busy."""


def run_case(ctx: Context, case: Case) -> list[CaseResult]:
    """The case at each of its scales; a failing scale is recorded as an error, not raised."""
    results = []
    for scale in case.scales(ctx):
        ctx.say(f"case {case.id} ({case.title}) at {report.rows(scale)}")
        try:
            outcome = case.run(ctx, scale)
        except MeasurementError as error:
            ctx.say(f"  case {case.id} failed: {error}")
            results.append(
                CaseResult(case.id, case.title, scale, "", case.target, error=str(error))
            )
            continue
        results.append(
            CaseResult(
                case.id,
                case.title,
                scale,
                outcome.summary,
                case.target,
                outcome.measurements,
                outcome.ratios,
                outcome.checks,
                outcome.note,
            )
        )
    return results


class _CpuClock:
    """CPU seconds used by the whole machine and by this run (itself and its waited children)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.machine, self.ours = self._read()
        self.loadavg = os.getloadavg()

    @staticmethod
    def _read() -> tuple[float, float]:
        import psutil  # type: ignore[import-untyped]

        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        ours = sum(
            usage.ru_utime + usage.ru_stime
            for usage in (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
        )
        return busy, ours

    def others_share(self) -> float:
        """Share of the machine's CPU capacity used by other processes since the start."""
        machine, ours = self._read()
        capacity = (time.monotonic() - self.started) * (os.cpu_count() or 1)
        return max(0.0, (machine - self.machine) - (ours - self.ours)) / capacity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        nargs="+",
        type=lambda s: int(float(s)),
        help="row counts (default 1M and 10M; quick: 10k)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny scale: a smoke test")
    parser.add_argument("--only", help="comma-separated case numbers, e.g. 1,9")
    parser.add_argument(
        "--results",
        type=Path,
        help="folder for results.json and RESULTS.md (default bench/, quick: bench/out/quick)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=BENCH_DIR / "out" / "data",
        help="generated data, reused across runs",
    )
    parser.add_argument(
        "--work", type=Path, default=BENCH_DIR / "out" / "work", help="scratch lakes and logs"
    )
    parser.add_argument("--prefect-api-url", help="use this Prefect server instead of starting one")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    parser.add_argument("--note", default="", help="a remark printed at the top of RESULTS.md")
    args = parser.parse_args(argv)

    scales = tuple(args.scale or (QUICK_SCALES if args.quick else DEFAULT_SCALES))
    results_dir = args.results or (BENCH_DIR / "out" / "quick" if args.quick else BENCH_DIR)
    only = set(args.only.split(",")) if args.only else None
    ctx = Context(
        scales,
        args.quick,
        args.cache,
        args.work,
        args.timeout,
        args.prefect_api_url,
        shared_worker=args.quick,
    )
    clock = _CpuClock()
    date = datetime.now(UTC)
    try:
        cases = [
            r for case in CASES if only is None or case.id in only for r in run_case(ctx, case)
        ]
    finally:
        ctx.close()
    others = clock.others_share()
    note = args.note
    if others > BUSY_SHARE and not note:
        note = (
            f"The machine was also busy: other processes used {others:.0%} of its CPU during this"
            " run, so absolute figures are pessimistic; ratios are less affected."
        )
    results: dict[str, Any] = {
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(
            ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]
        ),
        "quick": args.quick,
        "scales": list(scales),
        "duration_s": time.monotonic() - clock.started,
        "machine": report.machine(),
        "load": {
            "other_cpu_share": others,
            "loadavg_start": list(clock.loadavg),
            "loadavg_end": list(os.getloadavg()),
        },
        "note": note,
        "cases": [case.to_json() for case in cases],
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / "RESULTS.md").write_text(report.render(results))
    ctx.say(f"wrote {results_dir / 'results.json'} and {results_dir / 'RESULTS.md'}")
    if not args.quick and results_dir.resolve() == BENCH_DIR.resolve():  # README mirrors it
        readme = Path(__file__).resolve().parents[1] / "README.md"
        readme.write_text(report.with_readme_block(readme.read_text(), results))
        ctx.say(f"refreshed the benchmark summary in {readme}")
    return 1 if any(case.status == "error" for case in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
