"""The prefect-aws blocks the AWS integration example uses, built in memory or saved by name.

    python flows/examples/aws_integration_example.py --save-blocks --bucket my-bucket

saves (or replaces) the `AwsCredentials` block named by LAKE_AWS_CREDENTIALS_BLOCK (default
`lake-aws`; keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when set, else the standard chain
at run time), an `S3Bucket` block and an `AwsSecret` block that refer to it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import cast

from prefect_aws import AwsCredentials, AwsSecret, S3Bucket

from flows.core.settings import LakeSettings, aws_credentials, get_settings

LANDING_FOLDER = "landing/aws_example"
CREDENTIALS_BLOCK = "lake-aws"
BUCKET_BLOCK = "aws-example-landing"
SECRET_BLOCK = "aws-example-secret"  # pragma: allowlist secret (a block name)


def landing_bucket(settings: LakeSettings, bucket: str, block: str | None) -> S3Bucket:
    """The `S3Bucket` block named `block`, else one on `bucket`'s landing folder."""
    if block:
        return cast(S3Bucket, S3Bucket.load(block))
    return S3Bucket(
        bucket_name=bucket, credentials=aws_credentials(settings), bucket_folder=LANDING_FOLDER
    )


def secret(settings: LakeSettings, secret_name: str, block: str | None) -> AwsSecret:
    """The `AwsSecret` block named `block`, else one reading `secret_name`."""
    if block:
        return cast(AwsSecret, AwsSecret.load(block))
    return AwsSecret(aws_credentials=aws_credentials(settings), secret_name=secret_name)


def save_blocks(settings: LakeSettings, bucket: str, secret_name: str) -> dict[str, str]:
    """Create or replace the example's blocks; returns each block's name by kind."""
    credentials_name = settings.aws_credentials_block or CREDENTIALS_BLOCK
    key_id, key = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    credentials = AwsCredentials(
        region_name=settings.aws_region,
        aws_access_key_id=key_id,
        aws_secret_access_key=key if key_id else None,
    )
    credentials.save(credentials_name, overwrite=True)
    S3Bucket(bucket_name=bucket, credentials=credentials, bucket_folder=LANDING_FOLDER).save(
        BUCKET_BLOCK, overwrite=True
    )
    AwsSecret(aws_credentials=credentials, secret_name=secret_name).save(
        SECRET_BLOCK, overwrite=True
    )
    return {"credentials": credentials_name, "s3_bucket": BUCKET_BLOCK, "secret": SECRET_BLOCK}


def main(argv: Sequence[str] | None = None) -> None:
    """Save the example's blocks from the command line, idempotently."""
    parser = argparse.ArgumentParser(prog="python -m flows.examples.aws_integration.blocks",
                                     description=save_blocks.__doc__)  # fmt: skip
    parser.add_argument("--bucket", required=True, help="the landing bucket")
    parser.add_argument("--secret-name", default="datalake/aws-example", help="the secret's name")
    args = parser.parse_args(argv)
    print(save_blocks(get_settings(), args.bucket, args.secret_name))


if __name__ == "__main__":
    main()
