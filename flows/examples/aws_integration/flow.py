"""The AWS example's tasks, flow and `main()`; its command is aws_integration_example.py."""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsSecret, S3Bucket
from pydantic import SecretStr

from flows import samples
from flows.core import glue, lake
from flows.core.artifacts import publish_table
from flows.core.lineage import current_run
from flows.core.settings import aws_credentials, get_settings
from flows.core.tasks import EXTERNAL_SOURCE, LAKE_WRITE
from flows.examples.aws_integration import blocks
from flows.examples.aws_integration.calls import (
    Call,
    bucket_name,
    metric_data,
    orders_csv,
    outcome_message,
    parse_orders_csv,
    signature,
)
from flows.examples.aws_integration.local_aws import aws_configured, local_aws
from flows.examples.tables import EXAMPLE_AWS_ORDERS

FLOW_NAME = "AWS Integration Example"


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def upload_landing_file(bucket: S3Bucket, local_path: Path) -> str:
    return cast(str, bucket.upload_from_path(local_path, local_path.name))


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def list_landing(bucket: S3Bucket) -> list[str]:
    return [str(item["Key"]) for item in cast(list[dict[str, Any]], bucket.list_objects())]


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def download_landing_file(bucket: S3Bucket, name: str, to: Path) -> bytes:
    bucket.download_object_to_path(name, to)
    return to.read_bytes()


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def read_secret(secret: AwsSecret) -> SecretStr:
    """The secret's value, wrapped so no log line, repr or artifact can show it."""
    value = secret.read_secret()
    return SecretStr(value.decode() if isinstance(value, bytes) else str(value))


@task(**LAKE_WRITE, cache_policy=NO_CACHE)
def write_orders(data: bytes) -> lake.WriteResult:
    schema = EXAMPLE_AWS_ORDERS.schema
    assert schema is not None  # declared with a schema in flows/examples/tables.py
    return lake.merge(EXAMPLE_AWS_ORDERS, parse_orders_csv(data, schema))


@task(**EXTERNAL_SOURCE)
def register_in_glue(database: str) -> list[str]:
    return glue.register_tables(database, [EXAMPLE_AWS_ORDERS])


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def put_run_metrics(namespace: str, data: list[dict[str, Any]]) -> int:
    client = aws_credentials(get_settings()).get_client("cloudwatch")
    client.put_metric_data(Namespace=namespace, MetricData=data)
    return len(data)


@task(**EXTERNAL_SOURCE, cache_policy=NO_CACHE)
def notify(topic_name: str, outcome: str, message: str) -> str:
    """Publish to the SNS topic (created if missing, which is idempotent); the message id."""
    client = aws_credentials(get_settings()).get_client("sns")
    topic_arn = client.create_topic(Name=topic_name)["TopicArn"]
    answer = client.publish(TopicArn=topic_arn, Subject=f"{FLOW_NAME}: {outcome}", Message=message)
    return str(answer["MessageId"])


def landing_round_trip(bucket: S3Bucket, rows: int, folder: Path, calls: list[Call]) -> bytes:
    """Upload a sample file to the landing folder, list it, download it back unchanged."""
    sent = orders_csv(samples.orders(rows, seed=3))
    local_path = folder / "orders.csv"
    local_path.write_bytes(sent)
    key = upload_landing_file(bucket, local_path)
    calls.append(Call("s3", "PutObject", f"s3://{bucket.bucket_name}/{key}", f"{len(sent)} bytes"))
    listed = list_landing(bucket)
    calls.append(Call("s3", "ListObjectsV2", blocks.LANDING_FOLDER, f"{len(listed)} objects"))
    received = download_landing_file(bucket, local_path.name, folder / "downloaded.csv")
    same = "identical" if received == sent else "DIFFERENT"
    calls.append(Call("s3", "GetObject", key, f"{len(received)} bytes, {same}"))
    return received


def catalog_and_metrics(
    data: bytes, glue_database: str, metric_namespace: str, started: float, calls: list[Call]
) -> int:
    """Merge the landed rows into the lake, register the table in Glue, put the run's metrics."""
    written = write_orders(data)
    location = lake.location(EXAMPLE_AWS_ORDERS)
    calls.append(Call("s3", "Delta commit", location, f"v{written.version}, {written.rows} rows"))
    if get_settings().is_s3:
        tables = ", ".join(register_in_glue(glue_database))
        calls.append(Call("glue", "CreateTable/UpdateTable", glue_database, tables))
    else:
        calls.append(Call("glue", "CreateTable", glue_database, "skipped: a local lake"))
    metrics = metric_data(FLOW_NAME, written.rows, time.monotonic() - started)
    count = put_run_metrics(metric_namespace, metrics)
    calls.append(Call("cloudwatch", "PutMetricData", metric_namespace, f"{count} metrics"))
    return written.rows


@flow(
    name=FLOW_NAME,
    description="S3 (S3Bucket block), Secrets Manager (AwsSecret), Glue, CloudWatch and SNS from a"
    " flow; with no AWS configured, against a local moto endpoint started for the run.",
    log_prints=True,
)
def aws_integration_example(
    bucket: str | None = None,
    secret_name: str = "datalake/aws-example",
    glue_database: str = "datalake_examples",
    metric_namespace: str = "DataLake",
    topic_name: str = "datalake-run-outcomes",
    s3_bucket_block: str | None = None,
    secret_block: str | None = None,
    rows: int = 500,
    local: bool | None = None,
) -> dict[str, Any]:
    """Make each call, record it, notify the outcome through SNS and publish the record.

    Args:
        bucket: landing bucket (default: the bucket of LAKE_URI).
        secret_name: the Secrets Manager secret the example reads (never logged).
        glue_database: the Glue database the lake table is registered in.
        metric_namespace: the CloudWatch namespace of the run's metrics.
        topic_name: the SNS topic the run's outcome is published to.
        s3_bucket_block: an S3Bucket block to use instead of --bucket.
        secret_block: an AwsSecret block to use instead of --secret-name.
        rows: sample orders to land.
        local: start a local AWS endpoint; default: only when no AWS credentials are found.
    """
    started = time.monotonic()
    use_local = not aws_configured(get_settings()) if local is None else local
    calls: list[Call] = []
    run_name = current_run().run_name or "local"
    with (
        local_aws(secret_name) if use_local else nullcontext(None) as served,
        tempfile.TemporaryDirectory() as folder,
    ):
        settings = get_settings()
        name = bucket_name(bucket, settings.root if settings.is_s3 else None)
        get_run_logger().info("AWS at %s, bucket %s", served or "the standard chain", name)
        try:
            landing = blocks.landing_bucket(settings, name, s3_bucket_block)
            data = landing_round_trip(landing, rows, Path(folder), calls)
            key = read_secret(blocks.secret(settings, secret_name, secret_block))
            digest = signature(data, key)[:12]
            calls.append(Call("secretsmanager", "GetSecretValue", secret_name, f"HMAC {digest}"))
            written = catalog_and_metrics(data, glue_database, metric_namespace, started, calls)
        except Exception as error:
            outcome = f"FAILED: {type(error).__name__}"
            notify(topic_name, outcome, outcome_message(FLOW_NAME, run_name, outcome, calls))
            raise
        message = outcome_message(FLOW_NAME, run_name, "COMPLETED", calls)
        message_id = notify(topic_name, "COMPLETED", message)
        calls.append(Call("sns", "Publish", topic_name, f"message {message_id}"))
    publish_table("aws-integration-calls", [asdict(c) for c in calls],
                  description=f"Each AWS call of run {run_name} and its result")  # fmt: skip
    print(f"{len(calls)} AWS calls made; {written} rows in {EXAMPLE_AWS_ORDERS.path}")
    return {"local": use_local, "bucket": name, "rows": written, "calls": len(calls)}
