"""Realtime analytics: tumbling-window metrics over silver/events, one micro-batch per run."""
