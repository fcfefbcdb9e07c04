#!/usr/bin/env bash
# Make sure the process work pool exists, without touching one that does: `work-pool create
# --overwrite` sends is_paused=false and the default limits, so a paused pool (the README's way to
# stop the host starting runs) would be resumed by every worker start, deploy or reboot.
# worker.sh runs this before the worker starts. Needs PREFECT_API_URL (and PREFECT_API_AUTH_STRING).
set -euo pipefail

pool="${1:-lake-process}"

if inspect_output=$(prefect work-pool inspect "$pool" 2>&1); then
  echo "work pool $pool exists; left as it is"
elif grep -q "not found" <<<"$inspect_output"; then
  prefect work-pool create "$pool" --type process
else
  # The API did not answer (server still starting, network): fail, the service manager restarts us.
  echo "$inspect_output" >&2
  exit 1
fi
