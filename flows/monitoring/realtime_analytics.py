"""Micro-batch windowed metrics over the event stream landing in silver/events.

Each run reads the Delta commits added since the last run (offset in _ops/stream_offsets),
recomputes every tumbling window those events touch from all of the window's events (so p95/p99
stay exact across batches), merges them into gold, and moves the watermark. An event whose
window the watermark already closed goes to quarantine/late_events instead. Outputs are committed
before the offset moves, so a crash followed by a re-run recomputes the same windows.

    python flows/monitoring/realtime_analytics.py                  # sample events if none yet
    python flows/monitoring/realtime_analytics.py --window-minutes 1 --allowed-lateness-minutes 2
"""

from flows.core.cli import run_from_command_line
from flows.monitoring.realtime.flow import realtime_analytics

__all__ = ["realtime_analytics"]

if __name__ == "__main__":
    run_from_command_line(realtime_analytics)
