#!/usr/bin/env bash
# Registers every deployment in prefect.yaml with the server in PREFECT_API_URL. Run it
# where the worker runs (`make deploy` does so in the worker container), because the
# deployments' working_dir is this checkout's path on that host.
set -euo pipefail

: "${PREFECT_API_URL:?set it to the server, e.g. http://prefect-server:4200/api}"
LAKE_PROJECT_DIR="${LAKE_PROJECT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export LAKE_PROJECT_DIR

cd "$LAKE_PROJECT_DIR"
exec prefect --no-prompt deploy --all
