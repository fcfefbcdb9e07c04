"""AWS services from a flow the way prefect-aws intends: an S3Bucket block (upload, list,
download), a secret through AwsSecret, a Delta table registered in the Glue Data Catalog, CloudWatch
metrics and an SNS notification of the outcome. Credentials come from the AwsCredentials block
LAKE_AWS_CREDENTIALS_BLOCK names, else the standard AWS chain; with no AWS configured at all, the
run starts a local AWS endpoint (moto's server) on 127.0.0.1 and makes every call against it.

    python flows/examples/aws_integration_example.py                    # zero config, local AWS
    python flows/examples/aws_integration_example.py --bucket my-bucket # a real account
    python -m flows.examples.aws_integration.blocks --bucket my-bucket  # save the blocks
"""

from flows.core.cli import run_from_command_line
from flows.examples.aws_integration.flow import aws_integration_example

__all__ = ["aws_integration_example"]

if __name__ == "__main__":
    run_from_command_line(aws_integration_example)
