"""Paginated JSON APIs: retries with exponential backoff, honouring 429 and Retry-After."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import httpx
import pyarrow as pa

from flows.core.errors import ContentError, SourceError

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
Record = dict[str, Any]


def page_records(payload: Any) -> list[Record]:
    """The records of one page: a JSON list, or the list under `data`, `items` or `results`."""
    if isinstance(payload, dict):
        for key in ("data", "items", "results"):
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise ContentError("expected a JSON list of objects (or one under data/items/results)")
    return payload


def records_table(records: list[Record]) -> pa.Table:
    """Records as an all-text Arrow table (columns in order of appearance): what was delivered,
    bad values included, so a contract can check and quarantine them."""
    columns = list(dict.fromkeys(name for record in records for name in record))
    return pa.table(
        {
            name: pa.array([text_value(record.get(name)) for record in records], pa.string())
            for name in columns
        }
    )


def text_value(value: Any) -> str | None:
    """A delivered value as text: JSON for objects and lists, ISO 8601 for dates and times."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def retry_delay(response: httpx.Response | None, attempt: int, base_seconds: float) -> float:
    """Retry-After when the server sends seconds, else exponential backoff capped at 60 s."""
    if response is not None:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.strip().isdigit():
            return min(float(retry_after), 60.0)
    return float(min(base_seconds * 2**attempt, 60.0))


def get_page(
    client: httpx.Client,
    url: str,
    params: dict[str, int],
    *,
    attempts: int = 5,
    base_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Record]:
    """GET one page, retrying rate limits, server errors and dropped connections."""
    for attempt in range(attempts):
        response: httpx.Response | None = None
        try:
            response = client.get(url, params=params)
        except httpx.TransportError as error:
            failure = f"{type(error).__name__}: {error}"
        else:
            if response.status_code not in RETRYABLE_STATUS:
                if response.is_error:
                    raise SourceError(
                        f"{url} answered {response.status_code}: {response.text[:200]}"
                    )
                try:
                    payload = response.json()
                except ValueError as error:
                    raise ContentError(f"{url} {params} did not answer JSON: {error}") from error
                return page_records(payload)
            failure = f"HTTP {response.status_code}"
        if attempt + 1 < attempts:
            sleep(retry_delay(response, attempt, base_seconds))
    raise SourceError(f"{url} {params} still failing after {attempts} attempts ({failure})")


def iterate_pages(
    client: httpx.Client, url: str, *, per_page: int, first_page: int = 1, max_pages: int = 10_000
) -> Iterator[tuple[int, list[Record]]]:
    """(page number, records) until an empty or short page."""
    for page in range(first_page, first_page + max_pages):
        records = get_page(client, url, {"page": page, "per_page": per_page})
        if records:
            yield page, records
        if len(records) < per_page:
            return
