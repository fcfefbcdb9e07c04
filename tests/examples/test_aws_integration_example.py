"""The AWS integration example against moto's server (real HTTP): every service it calls."""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from pydantic import SecretStr

from flows import samples
from flows.catalog import EXAMPLE_AWS_ORDERS
from flows.core import lake
from flows.core.errors import ConfigurationError
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
from flows.examples.aws_integration.local_aws import local_environment
from flows.examples.aws_integration_example import aws_integration_example
from tests.conftest import REPO_ROOT, drain_prefect_workers

SECRET = "s3cr3t-" + uuid.uuid4().hex  # pragma: allowlist secret (a test value)


def test_landed_csv_parses_back_to_the_contract():
    orders = samples.orders(20, seed=1)
    parsed = parse_orders_csv(orders_csv(orders), EXAMPLE_AWS_ORDERS.schema)
    assert parsed.schema.names == EXAMPLE_AWS_ORDERS.schema.names
    assert parsed.schema.types == EXAMPLE_AWS_ORDERS.schema.types
    assert parsed.column("order_id").to_pylist() == orders.column("order_id").to_pylist()


def test_metric_data_reports_rows_and_duration_for_the_flow():
    data = metric_data("F", 12, 1.23456)
    assert [(m["MetricName"], m["Value"], m["Unit"]) for m in data] == [
        ("RowsProcessed", 12, "Count"),
        ("DurationSeconds", 1.235, "Seconds"),
    ]
    assert all(m["Dimensions"] == [{"Name": "Flow", "Value": "F"}] for m in data)


@pytest.mark.parametrize(
    ("bucket", "root", "expected"),
    [("mine", "s3://lake/x", "mine"), (None, "s3://lake/x/y", "lake"), ("mine", None, "mine")],
)
def test_bucket_name_prefers_the_parameter_then_the_lake_bucket(bucket, root, expected):
    assert bucket_name(bucket, root) == expected


def test_bucket_name_without_a_bucket_or_an_s3_lake_says_what_to_do():
    with pytest.raises(ConfigurationError, match="--bucket"):
        bucket_name(None, None)


def test_signature_and_outcome_message_never_contain_the_secret():
    digest = signature(b"data", SecretStr(SECRET))
    message = outcome_message("F", "run", "COMPLETED", [Call("s3", "PutObject", "k", "1 byte")])
    assert SECRET not in digest + message
    assert message.splitlines() == ["F run run: COMPLETED", "- s3 PutObject k: 1 byte"]


def test_local_environment_points_the_lake_and_aws_at_the_endpoint():
    env = local_environment("http://127.0.0.1:1", "b")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["LAKE_URI"] == "s3://b/lake"


def run_logs_and_artifacts(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    drain_prefect_workers()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs], artifacts


def test_flow_calls_every_service_and_never_shows_the_secret(s3_lake, moto_endpoint, prefect_api):
    session = boto3.Session()
    secrets_client = session.client("secretsmanager")
    secret_name = f"example/{uuid.uuid4().hex[:8]}"
    secrets_client.create_secret(Name=secret_name, SecretString=SECRET)
    topic = f"outcomes-{uuid.uuid4().hex[:8]}"
    sns, sqs = session.client("sns"), session.client("sqs")
    topic_arn = sns.create_topic(Name=topic)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=topic)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs",
                  Endpoint=queue_arn["Attributes"]["QueueArn"])  # fmt: skip
    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    database = f"db_{uuid.uuid4().hex[:8]}"

    state = aws_integration_example(
        secret_name=secret_name, glue_database=database, metric_namespace=namespace,
        topic_name=topic, rows=120, local=False, return_state=True,
    )  # fmt: skip
    assert state.is_completed()
    summary = state.result()
    bucket = s3_lake.removeprefix("s3://").split("/")[0]
    assert summary == {"local": False, "bucket": bucket, "rows": 120, "calls": 8}

    # the file round trip: the landed object is the sample file, byte for byte
    landed = session.client("s3").get_object(Bucket=bucket, Key="landing/aws_example/orders.csv")
    assert landed["Body"].read() == orders_csv(samples.orders(120, seed=3))
    assert lake.read(EXAMPLE_AWS_ORDERS).height == 120

    # Glue: a Delta table at the lake table's location
    table = session.client("glue").get_table(
        DatabaseName=database, Name="silver_example_aws_orders"
    )
    assert table["Table"]["StorageDescriptor"]["Location"] == f"{s3_lake}/silver/example_aws_orders"
    assert table["Table"]["Parameters"]["table_type"] == "DELTA"

    # CloudWatch: one datapoint per metric for this flow
    cloudwatch = session.client("cloudwatch")
    dimensions = [{"Name": "Flow", "Value": "AWS Integration Example"}]
    now = datetime.now(UTC)
    sums = {
        name: cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=dimensions,
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
            Period=3600, Statistics=["Sum", "SampleCount"],
        )["Datapoints"]
        for name in ("RowsProcessed", "DurationSeconds")
    }  # fmt: skip
    assert [p["Sum"] for p in sums["RowsProcessed"]] == [120.0]
    assert [p["SampleCount"] for p in sums["DurationSeconds"]] == [1.0]

    # SNS: the outcome message, delivered to a subscribed queue
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(received[0]["Body"])
    assert envelope["Subject"] == "AWS Integration Example: COMPLETED"
    assert "glue CreateTable/UpdateTable" in envelope["Message"]
    assert SECRET not in envelope["Message"]

    # the secret is in no log line and no artifact; the artifact lists every call
    messages, artifacts = run_logs_and_artifacts(state.state_details.flow_run_id)
    assert messages
    assert all(SECRET not in message for message in messages)
    assert all(SECRET not in json.dumps(a.data) for a in artifacts)
    calls = next(a for a in artifacts if a.key == "aws-integration-calls")
    rows = json.loads(calls.data) if isinstance(calls.data, str) else calls.data
    assert [(r["service"], r["call"]) for r in rows] == [
        ("s3", "PutObject"), ("s3", "ListObjectsV2"), ("s3", "GetObject"),
        ("secretsmanager", "GetSecretValue"), ("s3", "Delta commit"),
        ("glue", "CreateTable/UpdateTable"), ("cloudwatch", "PutMetricData"), ("sns", "Publish"),
    ]  # fmt: skip
    assert "identical" in rows[2]["result"]


def test_saving_the_blocks_twice_replaces_them(prefect_api, monkeypatch):
    from prefect_aws import AwsSecret, S3Bucket

    from flows.core.settings import get_settings

    monkeypatch.delenv("LAKE_AWS_CREDENTIALS_BLOCK", raising=False)
    blocks.save_blocks(get_settings(), "first-bucket", "a/secret")
    names = blocks.save_blocks(get_settings(), "second-bucket", "b/secret")
    assert names == {"credentials": "lake-aws", "s3_bucket": blocks.BUCKET_BLOCK,
                     "secret": blocks.SECRET_BLOCK}  # fmt: skip
    assert S3Bucket.load(blocks.BUCKET_BLOCK).bucket_name == "second-bucket"
    assert AwsSecret.load(blocks.SECRET_BLOCK).secret_name == "b/secret"  # pragma: allowlist secret


def test_command_with_no_aws_configured_completes_against_a_local_endpoint(tmp_path, prefect_api):
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "LAKE_"))
    }
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "LAKE_URI": str(tmp_path / "lake"),
        "PREFECT_API_URL": prefect_api,
    }
    done = subprocess.run(
        [sys.executable, "flows/examples/aws_integration_example.py", "--rows", "50"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 AWS calls made; 50 rows" in done.stdout + done.stderr
    assert "Finished in state Completed()" in done.stdout + done.stderr
