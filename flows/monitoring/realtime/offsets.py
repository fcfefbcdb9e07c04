"""Where a consumer of silver/events stands: its offset (source version, watermark) and its row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from flows.catalog import EVENTS


@dataclass(frozen=True)
class Offset:
    """Where a consumer stands: the last source version it processed and its watermark."""

    version: int
    watermark: datetime | None


def consumer_name(window_minutes: int) -> str:
    """One offset per window length, so several window sizes can run side by side."""
    return f"realtime_analytics/{EVENTS.path}/{window_minutes}m"


def offset_row(consumer: str, offset: Offset, now: datetime) -> pl.DataFrame:
    """The offset as a row of the stream-offsets table."""
    return pl.DataFrame(
        {
            "consumer": [consumer],
            "source": [EVENTS.path],
            "version": [offset.version],
            "watermark": [offset.watermark],
            "updated_at": [now],
        },
        schema_overrides={"watermark": pl.Datetime("us", "UTC")},
    )
