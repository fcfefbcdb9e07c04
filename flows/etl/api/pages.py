"""Where an API source stands: the page a run starts at, and the position after a landed page."""

from __future__ import annotations

import json

from flows.etl.ingest import Position


def page_position(page: int, page_rows: int, before: Position | None) -> Position:
    """The position after landing `page`; a re-fetched page replaces its own earlier rows."""
    if before is None:
        return Position(json.dumps([page, page_rows]), page_rows)
    last_page, last_rows = json.loads(before.position)
    replaced = last_rows if last_page == page else 0
    return Position(json.dumps([page, page_rows]), before.rows - replaced + page_rows)


def start_page(position: Position | None) -> int:
    """The page to fetch first: the last landed one (it may have grown), else page 1."""
    return int(json.loads(position.position)[0]) if position else 1
