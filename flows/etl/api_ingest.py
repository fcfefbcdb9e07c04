"""A paginated JSON API into the lake, page by page; a crashed run resumes from its last page.

Each page lands as one unit: bronze/<target>_api (replaced by the page's batch id), its valid
rows merged into silver/<target>, its rejects into quarantine/<target>; then _ops/ingest_state
records the page. The next run starts again at that page (re-fetched, since a short last page
may have grown), so an interrupted run resumes and an append-only API is read incrementally;
`--full-refresh` starts at page 1 (re-landed pages replace themselves). Every request retries
rate limits (429, honouring Retry-After), server errors and dropped connections with
exponential backoff (flows.core.http_pages.get_page).

    python flows/etl/api_ingest.py                         # a sample API served on 127.0.0.1
    python flows/etl/api_ingest.py --url https://api.example.com/orders --per-page 500
"""

from flows.core.cli import run_from_command_line
from flows.etl.api.flow import api_ingest

__all__ = ["api_ingest"]

if __name__ == "__main__":
    run_from_command_line(api_ingest)
