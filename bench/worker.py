"""Subprocess entry point: `python -m bench.worker spec.json` runs one measurement or data step.

The spec names a function `module:name` taking a params dict and returning a JSON-able dict, and
the environment to set first (the scratch lake). The result, plus this process's peak RSS, is
written to the spec's `output` path (stdout stays free for library chatter).

The peak is the kernel's high-water mark of this process's own address space (`VmHWM`), not
`ru_maxrss`: on Linux a child's `ru_maxrss` (and so `wait4`/`RUSAGE_CHILDREN`) starts from the
parent's resident size at fork/vfork, so a large parent would inflate every measurement.

`python -m bench.worker --serve` runs one spec per line of stdin in a single process (the quick
mode: it saves the imports per measurement; its peaks are reset before each spec, so they are
approximate, which a smoke test does not mind).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

PEAK_KEY = "_peak_rss_kib"
ERROR_KEY = "_error"


def run(spec_path: Path, *, serving: bool) -> None:
    spec = json.loads(spec_path.read_text())
    os.environ.update(spec["env"])
    if serving:
        _reset_peak()
    output = Path(spec["output"])
    try:
        module_name, function_name = spec["target"].split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        result: dict[str, Any] = {**function(spec["params"]), PEAK_KEY: peak_rss_kib()}
    except Exception:
        if not serving:
            raise
        result = {ERROR_KEY: traceback.format_exc()}
    partial = output.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    os.replace(partial, output)


def peak_rss_kib() -> int:
    """This process's peak resident set since exec, in KiB (ru_maxrss where /proc is missing)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _reset_peak() -> None:
    """Reset VmHWM to the current resident set (Linux >= 4.0); elsewhere, keep the lifetime peak."""
    clear_refs = Path("/proc/self/clear_refs")
    if clear_refs.exists():
        clear_refs.write_text("5")


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        for line in sys.stdin:
            run(Path(line.strip()), serving=True)
    else:
        run(Path(sys.argv[1]), serving=False)


if __name__ == "__main__":
    main()
