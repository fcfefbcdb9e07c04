"""One settings object for the whole project; every location and credential is decided here."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    import boto3
    from prefect_aws import AwsCredentials

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LAKE_DIR = REPO_ROOT / "lake"
SampleData = Literal["auto", "on", "off"]


class LakeSettings(BaseSettings):
    """Settings read from `LAKE_*` environment variables (and the standard `AWS_*` chain)."""

    model_config = SettingsConfigDict(env_prefix="LAKE_", extra="ignore")

    uri: str = str(DEFAULT_LAKE_DIR)
    """Root of the lake: a local folder, or `s3://bucket/prefix`."""
    aws_credentials_block: str | None = None
    """Name of a prefect-aws `AwsCredentials` block; unset means the standard AWS chain."""
    s3_endpoint_url: str | None = None
    """S3-compatible endpoint; unset falls back to `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`."""
    aws_region: str | None = None
    """Region; unset falls back to the AWS chain, then us-east-1."""
    glue_database: str | None = None
    """AWS Glue database the S3 data pipeline registers its tables in; unset = no registration."""
    cloudwatch_namespace: str | None = None
    """CloudWatch namespace pipeline health puts its per-run metrics in; unset = not published."""
    batch_rows: int = 250_000
    """Rows per streaming batch: memory is bounded by this, not by input size."""
    merge_rows: int = 1_000_000
    """Rows per MERGE commit of `lake.merge_batches`, for rows whose keys the table may already
    hold (new keys are appended in one commit): each commit writes a file per partition it
    touches, so fewer, larger merges write fewer files; memory grows with it."""
    vacuum_retention_floor_hours: int = 168
    """Vacuum never deletes files younger than this (time travel window) unless forced."""
    source_dsn: SecretStr | None = None
    """PostgreSQL DSN `database_ingest` reads from; a secret: never logged, never a parameter."""
    dask_address: str | None = None
    """Scheduler of a running Dask cluster (`tcp://host:8786`) for data-parallel flows; it wins
    over a cluster class. Unset (and no class) = threads in the flow run's process."""
    dask_cluster_class: str | None = None
    """Dask cluster class a data-parallel flow run starts for itself and closes after it, by
    import path (`dask_cloudprovider.aws.FargateCluster`, `distributed.LocalCluster`)."""
    dask_cluster_kwargs: dict[str, Any] = {}
    """That class's arguments, as JSON (`{"n_workers": 4}`); its workers need the flow run's
    `LAKE_*` and AWS settings (LocalCluster inherits them; a cloud class takes `environment`)."""
    alert_slack_webhook_url: SecretStr | None = None
    """Slack incoming webhook `make alerts` stores in the alert notification block (a secret)."""
    alert_webhook_url: SecretStr | None = None
    """Any HTTPS endpoint taking a JSON POST {subject, body}; used when no Slack webhook is set."""
    project_dir: Path = REPO_ROOT
    """The project's files (prefect.yaml, flows/; a release's REVISION); workers set it."""
    noncurrent_version_days: int = 30
    """Days the lake bucket keeps noncurrent object versions (its lifecycle rule: 7 in dev, 30 in
    prod); an erasure that may not delete versions records copies remain until then."""
    sample_data: SampleData = "auto"
    """Whether a flow may fill a missing input table with sample data: `auto` means on for a
    lake on a local folder (the zero-config run) and off on S3; never into a table that exists."""

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def root(self) -> str:
        """The lake root without a trailing slash; local roots are absolute."""
        if self.is_s3:
            return self.uri.rstrip("/")
        return str(Path(self.uri).expanduser().resolve())

    @property
    def endpoint_url(self) -> str | None:
        return (
            self.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )


def get_settings() -> LakeSettings:
    """Read the settings now (cheap), so a changed environment takes effect at once."""
    return LakeSettings()


# The standard chain reads these; a session is reused only while they are unchanged.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def boto3_session(settings: LakeSettings) -> boto3.Session:
    """A boto3 session from the configured Prefect block, else from the standard AWS chain.

    Sessions are cached (building one costs ~60 ms, paid on every lake call otherwise); a cached
    session refreshes expiring credentials (instance role, SSO) by itself.
    """
    environment = tuple(os.environ.get(name) for name in _CREDENTIAL_VARIABLES)
    return _cached_session(settings.aws_credentials_block, settings.aws_region, environment)


@functools.lru_cache(maxsize=8)
def _cached_session(
    block_name: str | None, region: str | None, environment: tuple[str | None, ...]
) -> boto3.Session:
    import boto3

    if block_name:
        from prefect_aws import AwsCredentials

        block = cast(AwsCredentials, AwsCredentials.load(block_name))
        session: boto3.Session = block.get_boto3_session()
        return session
    return boto3.Session(region_name=region)


def aws_credentials(settings: LakeSettings) -> AwsCredentials:
    """The prefect-aws credentials for blocks: the configured block, else the standard AWS chain.

    Endpoints come from the standard variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`),
    which botocore reads per service.
    """
    from prefect_aws import AwsCredentials

    if settings.aws_credentials_block:
        return cast(AwsCredentials, AwsCredentials.load(settings.aws_credentials_block))
    return AwsCredentials(region_name=settings.aws_region)


def s3_storage_options(settings: LakeSettings) -> dict[str, str]:
    """Storage options for delta-rs and Polars; empty for a local lake."""
    if not settings.is_s3:
        return {}
    session = boto3_session(settings)
    options = {"AWS_REGION": settings.aws_region or session.region_name or "us-east-1"}
    credentials = session.get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options["AWS_ACCESS_KEY_ID"] = str(frozen.access_key)
        options["AWS_SECRET_ACCESS_KEY"] = str(frozen.secret_key)
        if frozen.token:
            options["AWS_SESSION_TOKEN"] = frozen.token
    endpoint = settings.endpoint_url
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options
