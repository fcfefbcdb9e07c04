"""Create the bucket named in LAKE_URI on the configured S3 endpoint, if it is missing.

The compose stack's `create-bucket` step and tests/platform run this script.
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from flows.core.settings import boto3_session, get_settings


def main() -> int:
    settings = get_settings()
    if not settings.is_s3:
        print(f"LAKE_URI={settings.uri} is not s3://bucket/prefix; nothing to create")
        return 1
    bucket = urlparse(settings.root).netloc
    s3 = boto3_session(settings).client("s3", endpoint_url=settings.endpoint_url)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=bucket)
    else:
        print(f"bucket {bucket} already exists")
        return 0
    print(f"created bucket {bucket}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
