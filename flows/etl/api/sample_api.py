"""A small paginated JSON API on 127.0.0.1 (`?page=N&per_page=M`) for zero-config runs and tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse


class PagesHandler(BaseHTTPRequestHandler):
    """Serves `records` one page at a time as `{"data": [...]}`; subclasses may misbehave."""

    records: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["100"])[0])
        self.answer(page, per_page)

    def answer(self, page: int, per_page: int) -> None:
        start = (page - 1) * per_page
        self.send_json(200, {"data": self.records[start : start + per_page], "page": page})

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not worth a log line each."""


@contextmanager
def serve(handler: type[PagesHandler]) -> Iterator[str]:
    """Run `handler` on a free 127.0.0.1 port in a thread; yields its base URL, then stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/orders"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sample_handler(records: list[dict[str, Any]]) -> type[PagesHandler]:
    """A handler class serving these records."""
    return type("SamplePages", (PagesHandler,), {"records": records})
