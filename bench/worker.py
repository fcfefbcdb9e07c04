"""Subprocess entry point: `python -m bench.worker spec.json` runs one measurement or data step.

The spec names a function `module:name` taking a params dict and returning a JSON-able dict; the
result, plus this process's peak RSS, is written to the spec's `output` path (stdout stays free
for library chatter).

The peak is the kernel's high-water mark of this process's own address space (`VmHWM`), not
`ru_maxrss`: on Linux a child's `ru_maxrss` (and so `wait4`/`RUSAGE_CHILDREN`) starts from the
parent's resident size at fork/vfork, so a large parent would inflate every measurement.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

PEAK_KEY = "_peak_rss_kib"


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    module_name, function_name = spec["target"].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result: dict[str, Any] = function(spec["params"])
    Path(spec["output"]).write_text(json.dumps({**result, PEAK_KEY: peak_rss_kib()}))


def peak_rss_kib() -> int:
    """This process's peak resident set since exec, in KiB (ru_maxrss where /proc is missing)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
