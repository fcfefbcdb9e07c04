import httpx
import pytest

from flows.core.errors import SourceError
from flows.core.http_pages import get_page, iterate_pages, page_records, retry_delay


@pytest.mark.parametrize(
    ("payload", "records"),
    [
        ([{"a": 1}], [{"a": 1}]),
        ({"data": [{"a": 1}]}, [{"a": 1}]),
        ({"items": []}, []),
        ({"results": [{"b": 2}], "next": None}, [{"b": 2}]),
    ],
)
def test_page_records_finds_the_list(payload, records):
    assert page_records(payload) == records


@pytest.mark.parametrize("payload", [{"data": "x"}, [1, 2], "text", {"other": []}])
def test_page_records_rejects_other_shapes(payload):
    with pytest.raises(SourceError, match="expected a JSON list of objects"):
        page_records(payload)


@pytest.mark.parametrize(
    ("headers", "attempt", "expected"),
    [
        ({"Retry-After": "7"}, 0, 7.0),
        ({"Retry-After": "600"}, 0, 60.0),
        ({}, 0, 0.5),
        ({}, 3, 4.0),
        ({}, 20, 60.0),
    ],
)
def test_retry_delay_honours_retry_after_then_backs_off(headers, attempt, expected):
    response = httpx.Response(429, headers=headers)
    assert retry_delay(response, attempt, base_seconds=0.5) == expected


def scripted_client(statuses_then_pages):
    """An httpx client whose transport answers from a script (unit test of the retry decisions)."""
    script = list(statuses_then_pages)

    def answer(request):
        item = script.pop(0)
        if isinstance(item, int):
            return httpx.Response(item, headers={"Retry-After": "1"})
        if isinstance(item, Exception):
            raise item
        return httpx.Response(200, json=item)

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_get_page_retries_rate_limits_errors_and_dropped_connections():
    sleeps = []
    client = scripted_client([429, 503, httpx.ConnectError("reset"), [{"a": 1}]])
    assert get_page(client, "http://api/x", {"page": 1}, sleep=sleeps.append) == [{"a": 1}]
    assert sleeps == [1.0, 1.0, 2.0]  # Retry-After twice, then backoff for the dropped connection


def test_get_page_gives_up_with_a_clear_error():
    client = scripted_client([500] * 3)
    with pytest.raises(SourceError, match=r"still failing after 3 attempts \(HTTP 500\)"):
        get_page(client, "http://api/x", {"page": 1}, attempts=3, sleep=lambda _: None)


def test_get_page_does_not_retry_a_client_error():
    client = scripted_client([404])
    with pytest.raises(SourceError, match="answered 404"):
        get_page(client, "http://api/x", {"page": 1}, sleep=lambda _: None)


def test_iterate_pages_stops_at_a_short_page():
    client = scripted_client([[{"n": 1}, {"n": 2}], [{"n": 3}]])
    pages = list(iterate_pages(client, "http://api/x", per_page=2))
    assert pages == [(1, [{"n": 1}, {"n": 2}]), (2, [{"n": 3}])]
