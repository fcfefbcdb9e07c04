"""The machine description and the markdown rendering of `results.json` (RESULTS.md)."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "pyarrow",
    "polars",
    "deltalake",
    "pandas",
    "numpy",
    "prefect",
    "great-expectations",
    "scikit-learn",
)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, OS, Python and the versions of the libraries measured."""
    import psutil  # type: ignore[import-untyped]

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "libraries": versions,
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def rows(count: int) -> str:
    """1000000 -> 1M, 20000 -> 20k."""
    if count <= 0:
        return "—"
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size:
            return f"{count / size:g}{suffix}"
    return str(count)


def _ratio(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _check(check: dict[str, Any]) -> str:
    op = "≥" if check["op"] == ">=" else "≤"
    unit, value, threshold = check["unit"], check["value"], check["threshold"]
    if unit == "x":
        shown, wanted = f"{value:.2f}x", f"{threshold:g}x"
    elif unit == " s":  # a wall time: whole seconds would hide a 1.5 s target
        shown, wanted = f"{value:.2f} s", f"{threshold:g} s"
    elif unit:
        shown, wanted = f"{value:,.0f}{unit}", f"{threshold:,.0f}{unit}"
    else:
        shown, wanted = f"{value:.1%}", f"{threshold:.0%}"
    verdict = "met" if check["met"] else "**missed**"
    return f"{check['name']} {shown} (target {op} {wanted}): {verdict}"


def render(results: dict[str, Any]) -> str:
    """RESULTS.md: where and how it was measured, a summary row per case and scale, all figures."""
    host = results["machine"]
    libraries = ", ".join(f"{name} {version}" for name, version in host["libraries"].items())
    load = results["load"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {results['date']} with `{results['command']}` in"
        f" {results['duration_s'] / 60:.1f} min{' (quick mode)' if results['quick'] else ''}.",
        "",
        f"- Machine: {host['cores']} cores ({host['cpu']}), {host['memory_gib']} GiB memory,"
        f" {host['os']}",
        f"- Python {host['python']}; {libraries}",
        f"- Other processes used {load['other_cpu_share']:.0%} of the machine's CPU during the run"
        f" (load average {load['loadavg_start'][0]:.2f} at the start).",
    ]
    if results["note"]:
        lines += ["", f"> {results['note']}"]
    lines += [
        "",
        "Each variant runs in its own fresh process on the same generated data (cached per scale);"
        " *peak RSS* is that process's own high-water resident set (`VmHWM`), interpreter and"
        " libraries included. Baselines are measured in the same run, one after another, so"
        " ratios compare like with like even when absolute figures move with the machine's load."
        + (
            " Quick mode runs every variant in one shared worker (peaks reset before each), so"
            " its peaks are approximate: it checks the harness, not the lake."
            if results["quick"]
            else ""
        ),
        "",
        "## Summary",
        "",
        *summary_lines(results),
    ]
    lines += [
        "",
        "## Every measurement",
        "",
        "| # | Scale | Variant | Seconds | Rows | Rows/s | Peak RSS (MB) | Details |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for case in results["cases"]:
        for m in case["measurements"]:
            details = ", ".join(f"{k} {_detail(v)}" for k, v in m["extra"].items())
            counted = f"{m['rows']:,} | {m['rows_per_s']:,.0f}" if m["rows"] else "— | —"
            lines.append(
                f"| {case['case']} | {rows(case['scale'])} | {m['label']} | {m['seconds']:.3f} |"
                f" {counted} | {m['peak_rss_mb']:,.0f} | {details} |"
            )
    return "\n".join(lines) + "\n"


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The summary table, one row per case and scale, with each target's verdict, then the notes."""
    lines = [
        "| # | Case | Scale | Result | Compared with baseline | Target | Status |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        ratios = "; ".join(f"{name} {_ratio(v)}x" for name, v in case["ratios"].items())
        verdicts = "<br>".join(_check(check) for check in case["checks"])
        outcome = case["summary"] or f"error: {case['error'].splitlines()[0]}"
        status = case["status"] if case["status"] != "missed" else "**missed**"
        lines.append(
            f"| {case['case']} | {case['title']} | {rows(case['scale'])} | {outcome} | {ratios} |"
            f" {verdicts or case['target']} | {status} |"
        )
    notes = dict.fromkeys(f"- Case {c['case']}: {c['note']}" for c in results["cases"] if c["note"])
    return [*lines, "", *notes] if notes else lines


README_START = "<!-- bench:summary:start (written by `make bench`) -->"
README_END = "<!-- bench:summary:end -->"


def readme_block(results: dict[str, Any]) -> str:
    """The README's copy of the summary, between markers so each full run can refresh it."""
    host = results["machine"]
    measured = (
        f"Measured {results['date']} on {host['cores']} cores and {host['memory_gib']} GiB with"
        f" `{results['command']}` ({results['duration_s'] / 60:.1f} min; other processes used"
        f" {results['load']['other_cpu_share']:.0%} of the CPU). Every figure, the machine and"
        " the method: [bench/RESULTS.md](bench/RESULTS.md)."
    )
    return "\n".join([README_START, "", measured, "", *summary_lines(results), "", README_END])


def with_readme_block(readme: str, results: dict[str, Any]) -> str:
    """`readme` with the text between the markers replaced by this run's summary."""
    start = readme.index(README_START)
    end = readme.index(README_END) + len(README_END)
    return readme[:start] + readme_block(results) + readme[end:]


def _detail(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
