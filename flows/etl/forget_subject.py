"""GDPR erasure: remove one customer from everywhere the lake put their data, and prove it.

The subject is found by `customer_id` and by the values of the columns the table contracts
declare identifying (the email), in every physical table of the catalog (raw `_raw` text too),
in every landing delivery (rewritten without them; the manifest follows, so nothing is ingested
twice) and in derived documents (Data Docs: redacted). Tables are vacuumed with retention 0 and,
on a versioned S3 bucket, the noncurrent versions of everything changed are deleted by version
id. An independent scan then reads every object (every version on S3) and fails the run naming
any place the subject is still found. `_ops/erasures` records the places, counts and the
verification (never the data); a markdown artifact is the certificate.

    python flows/etl/forget_subject.py --customer-id 42 --requested-by dpo@example.com
"""

from flows.core.cli import run_from_command_line
from flows.etl.forget.flow import forget_subject

__all__ = ["forget_subject"]

if __name__ == "__main__":
    run_from_command_line(forget_subject)
