#!/usr/bin/env bash
# A worker on the process work pool every deployment in prefect.yaml targets. The compose
# service, the EC2 unit and tests/platform start the worker through this script.
# Needs: PREFECT_API_URL, PREFECT_API_AUTH_STRING, LAKE_PROJECT_DIR (the checkout the
# deployments' pull step changes into) and the lake settings (LAKE_URI, AWS_*).
# Optional: WORK_POOL (default lake-process; the fleet's heavy hosts use lake-process-heavy) and
# WORKER_LIMIT (flow runs this worker runs at once; unset = no limit).
set -euo pipefail

: "${PREFECT_API_URL:?set it to the server, e.g. http://prefect-server:4200/api}"
: "${LAKE_PROJECT_DIR:?set it to the folder that holds prefect.yaml and flows/}"
pool="${WORK_POOL:-lake-process}"

"$(dirname "$0")/work-pool.sh" "$pool"
exec prefect worker start --pool "$pool" --type process --with-healthcheck \
  ${WORKER_LIMIT:+--limit "$WORKER_LIMIT"}
