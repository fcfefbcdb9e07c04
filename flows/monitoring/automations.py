"""Alerts as code: Prefect automations that notify on failed/crashed runs and failed quality checks.

`make alerts` (or `python -m flows.monitoring.automations`) stores the notification block and
creates or replaces the automations on the Prefect server PREFECT_API_URL points at. The webhook
comes from the environment, never from this file: LAKE_ALERT_SLACK_WEBHOOK_URL (a Slack incoming
webhook) or LAKE_ALERT_WEBHOOK_URL (any endpoint taking a JSON POST {"subject", "body"}).
"""

from __future__ import annotations

import argparse
from typing import cast
from uuid import UUID

from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.orchestration import get_client

from flows.core.errors import ConfigurationError
from flows.core.settings import LakeSettings, get_settings

BLOCK_NAME = "lake-alerts"
QUALITY_EVENT = "lake.quality.failed"
"""Emitted by the data quality monitor once per table with a failed check."""
RUN_FAILED = "lake: flow run failed or crashed"
QUALITY_FAILED = "lake: data quality checks failed"


def notification_block(
    settings: LakeSettings, *, allow_private_urls: bool = False
) -> NotificationBlock:
    """Slack when a Slack webhook is configured, else a generic JSON webhook."""
    if settings.alert_slack_webhook_url is not None:
        return SlackWebhook(url=settings.alert_slack_webhook_url)
    if settings.alert_webhook_url is not None:
        return CustomWebhookNotificationBlock(
            name=BLOCK_NAME,
            url=settings.alert_webhook_url.get_secret_value(),
            method="POST",
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            allow_private_urls=allow_private_urls,
        )
    raise ConfigurationError(
        "no alert destination: set LAKE_ALERT_SLACK_WEBHOOK_URL (Slack) or LAKE_ALERT_WEBHOOK_URL"
        " (a JSON webhook), then run `make alerts` again"
    )


def automations(block_document_id: UUID) -> list[AutomationCore]:
    """The automations, each notifying through the block."""
    run_failed = AutomationCore(
        name=RUN_FAILED,
        description="Any flow run that ends Failed or Crashed.",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject="Prefect: {{ flow.name }} run {{ flow_run.name }} is"
                " {{ flow_run.state.name }}",
                body="Flow run {{ flow_run.name }} of {{ flow.name }} ended"
                " {{ flow_run.state.name }}: {{ flow_run.state.message }}\n{{ flow_run|ui_url }}",
            )
        ],
    )
    quality_failed = AutomationCore(
        name=QUALITY_FAILED,
        description="The data quality monitor found failed checks on a table.",
        trigger=EventTrigger(
            match={"prefect.resource.id": "lake.table.*"},
            expect={QUALITY_EVENT},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject="Data quality: {{ event.resource['lake.severity'] }} failures on"
                " {{ event.resource['prefect.resource.name'] }}",
                body="Health score {{ event.payload.health_score }} on"
                " {{ event.resource['prefect.resource.name'] }}. Failed checks:\n"
                "{{ event.payload.failed_checks | join('\n') }}",
            )
        ],
    )
    return [run_failed, quality_failed]


def apply(desired: list[AutomationCore]) -> list[UUID]:
    """Create each automation, replacing any with the same name (so re-running is safe)."""
    with get_client(sync_client=True) as client:
        for automation in desired:
            for existing in client.read_automations_by_name(name=automation.name):
                client.delete_automation(existing.id)
        return [client.create_automation(automation) for automation in desired]


def install_alerts(*, allow_private_urls: bool = False) -> list[UUID]:
    """Store the notification block and (re)create the automations; their ids."""
    block = notification_block(get_settings(), allow_private_urls=allow_private_urls)
    block_id = cast(UUID, block.save(BLOCK_NAME, overwrite=True))  # sync outside an event loop
    return apply(automations(block_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let the webhook point at a private address (an internal relay)",
    )
    args = parser.parse_args()
    try:
        ids = install_alerts(allow_private_urls=args.allow_private_urls)
    except ConfigurationError as error:
        raise SystemExit(f"error: {error}") from error
    print(
        f"Notification block {BLOCK_NAME!r} saved; automations {RUN_FAILED!r} and"
        f" {QUALITY_FAILED!r} created ({', '.join(map(str, ids))})"
    )


if __name__ == "__main__":
    main()
