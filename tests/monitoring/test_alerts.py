"""Alerts: the automations fire on a real Prefect server (its event services on) and POST to a
webhook on 127.0.0.1, for a failed flow run and for the quality monitor's failed checks."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest
from prefect import flow
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.orchestration import get_client

from flows import samples
from flows.catalog import PRODUCTS
from flows.core import lake
from flows.core.errors import ConfigurationError
from flows.core.settings import LakeSettings
from flows.monitoring import automations as alerts
from flows.monitoring.data_quality.flow import data_quality_monitor

WAIT_SECONDS = 60


def test_slack_wins_over_a_generic_webhook(monkeypatch):
    monkeypatch.setenv("LAKE_ALERT_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/x")
    monkeypatch.setenv("LAKE_ALERT_WEBHOOK_URL", "https://alerts.example.com/hook")
    assert isinstance(alerts.notification_block(LakeSettings()), SlackWebhook)


def test_generic_webhook_posts_subject_and_body(monkeypatch):
    monkeypatch.delenv("LAKE_ALERT_SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("LAKE_ALERT_WEBHOOK_URL", "https://alerts.example.com/hook")
    block = alerts.notification_block(LakeSettings())
    assert isinstance(block, CustomWebhookNotificationBlock)
    assert block.json_data == {"subject": "{{subject}}", "body": "{{body}}"}
    assert not block.allow_private_urls


def test_no_destination_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LAKE_ALERT_SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("LAKE_ALERT_WEBHOOK_URL", raising=False)
    with pytest.raises(ConfigurationError, match="LAKE_ALERT_WEBHOOK_URL"):
        alerts.notification_block(LakeSettings())


def test_automations_hang_on_failed_runs_and_the_quality_event():
    block_id = uuid.uuid4()
    run_failed, quality_failed = alerts.automations(block_id)
    assert run_failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert quality_failed.trigger.expect == {alerts.QUALITY_EVENT}
    for automation in (run_failed, quality_failed):
        assert [a.block_document_id for a in automation.actions] == [block_id]


class _Inbox:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.arrived = threading.Condition()

    def wait_for(self, predicate) -> dict:
        deadline = time.monotonic() + WAIT_SECONDS
        with self.arrived:
            while True:
                found = [post for post in self.posts if predicate(post)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"no matching notification in {WAIT_SECONDS} s; got {self.posts}")
                self.arrived.wait(remaining)


@pytest.fixture
def webhook():
    """A real HTTP server on 127.0.0.1 recording every JSON POST."""
    inbox = _Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with inbox.arrived:
                inbox.posts.append(json.loads(body))
                inbox.arrived.notify_all()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", inbox
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def installed_alerts(prefect_api, webhook, monkeypatch):
    """`make alerts` against the test server, pointing at the local webhook; removed after."""
    url, inbox = webhook
    monkeypatch.delenv("LAKE_ALERT_SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("LAKE_ALERT_WEBHOOK_URL", url)
    ids = alerts.install_alerts(allow_private_urls=True)
    assert len(alerts.install_alerts(allow_private_urls=True)) == len(ids)  # re-run replaces
    with get_client(sync_client=True) as client:
        names = [a.name for a in client.read_automations_by_name(alerts.RUN_FAILED)]
        assert names == [alerts.RUN_FAILED]
    try:
        yield inbox
    finally:
        with get_client(sync_client=True) as client:
            for name in (alerts.RUN_FAILED, alerts.QUALITY_FAILED):
                for automation in client.read_automations_by_name(name):
                    client.delete_automation(automation.id)


@flow
def doomed() -> None:
    raise RuntimeError("planted failure for the alert test")


@pytest.mark.slow
def test_a_failed_run_and_failed_quality_checks_each_send_a_notification(
    installed_alerts, local_lake
):
    name = f"Doomed {uuid.uuid4().hex[:8]}"
    assert doomed.with_options(name=name)(return_state=True).is_failed()
    post = installed_alerts.wait_for(lambda p: name in p["subject"])
    assert "Failed" in post["subject"]
    assert "planted failure" in post["body"]

    products = samples.products(30).to_pylist()
    products[0]["price"] = -1.0
    lake.append(PRODUCTS, pa.Table.from_pylist(products))
    assert data_quality_monitor(return_state=True).is_completed()  # warnings only
    post = installed_alerts.wait_for(lambda p: "silver/products" in p["subject"])
    assert post["subject"] == "Data quality: warning failures on silver/products"
    assert "expect_column_values_to_be_between price" in post["body"]
