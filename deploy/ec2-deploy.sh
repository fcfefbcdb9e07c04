#!/usr/bin/env bash
# shellcheck disable=SC2329  # most functions run through step and wait_for
# Deploy one commit of this repository to the Prefect host, or leave the previous one running.
#
#   deploy/ec2-deploy.sh <commit-or-ref>
#
# Runs on the EC2 host as root: through `aws ssm send-command` from .github/workflows/deploy.yml,
# and once at first boot from terraform/user-data.sh. Steps: fetch the commit, install the
# project from requirements.lock (skipped when pyproject.toml and the lock are unchanged: the
# install is editable), `prefect deploy --all`, restart the worker, wait until the server
# answers and a new worker is polling the pool. If any step fails, the previous commit is
# checked out and deployed again the same way, and the script exits 1 (2 if that fails too).
#
# Every path and command can be overridden through the environment (tests/infra runs this
# script against a native Prefect server with a temporary clone, venv and worker):
#   DEPLOY_REPO_DIR          checkout to update               (/opt/datalake/repo)
#   DEPLOY_VENV              venv the services run from        (/opt/datalake/venv)
#   DEPLOY_REMOTE            git remote to fetch from          (origin)
#   DEPLOY_ENV_FILE          sourced first if readable: API credentials (/etc/datalake/prefect-auth.env)
#   DEPLOY_RESTART_CMD       restarts the worker               (systemctl restart prefect-worker.service)
#   DEPLOY_WORK_POOL         pool the worker must poll         (lake-process)
#   DEPLOY_API_PORT          port of the local server          (4200)
#   PREFECT_API_URL          the server's API                  (http://127.0.0.1:$DEPLOY_API_PORT/api)
#   DEPLOY_HEALTH_TIMEOUT    seconds to wait for health        (180)
#   DEPLOY_LOCK_FILE         one deploy at a time on a host    (/run/lock/datalake-deploy.lock)
set -euo pipefail

TARGET="${1:?usage: $0 <commit-or-ref>}"
REPO_DIR="${DEPLOY_REPO_DIR:-/opt/datalake/repo}"
VENV="${DEPLOY_VENV:-/opt/datalake/venv}"
REMOTE="${DEPLOY_REMOTE:-origin}"
ENV_FILE="${DEPLOY_ENV_FILE:-/etc/datalake/prefect-auth.env}"
RESTART_CMD="${DEPLOY_RESTART_CMD:-systemctl restart prefect-worker.service}"
WORK_POOL="${DEPLOY_WORK_POOL:-lake-process}"
HEALTH_TIMEOUT="${DEPLOY_HEALTH_TIMEOUT:-180}"
LOCK_FILE="${DEPLOY_LOCK_FILE:-/run/lock/datalake-deploy.lock}"

if [ -r "$ENV_FILE" ]; then
  set -a
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  set +a
fi
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:${DEPLOY_API_PORT:-4200}/api}"
# prefect.yaml's pull step and work pool read the checkout's path from here.
export LAKE_PROJECT_DIR="$REPO_DIR"

log() { printf '%s ec2-deploy: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

api() { # api <method> <path> [json body]: the local Prefect API, with basic auth when configured
  local args=(--silent --show-error --fail --max-time 10 -X "$1")
  if [ -n "${PREFECT_API_AUTH_STRING:-}" ]; then
    args+=(--user "$PREFECT_API_AUTH_STRING")
  fi
  if [ "$#" -ge 3 ]; then
    args+=(-H 'Content-Type: application/json' --data "$3")
  fi
  curl "${args[@]}" "${PREFECT_API_URL}$2"
}

ensure_pool() { # the worker would create it on start, but `prefect deploy` runs first
  api GET "/work_pools/${WORK_POOL}" >/dev/null 2>&1 ||
    api POST /work_pools/ "{\"name\": \"${WORK_POOL}\", \"type\": \"process\"}" >/dev/null
}

workers() { # the pool's workers as JSON
  api POST "/work_pools/${WORK_POOL}/workers/filter" '{}'
}

new_worker_online() { # new_worker_online <workers JSON from before the restart>
  workers | "$VENV/bin/python" -c '
import json, sys
before = {w["name"] for w in json.loads(sys.argv[1])}
now = json.load(sys.stdin)
sys.exit(0 if any(w["status"] == "ONLINE" and w["name"] not in before for w in now) else 1)
' "$1"
}

wait_for() { # wait_for <what> <command...>: retry the command until it succeeds or time runs out
  local what="$1" deadline=$((SECONDS + HEALTH_TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "unhealthy: ${what} within ${HEALTH_TIMEOUT}s"
      return 1
    fi
    sleep 2
  done
}

install_project() { # install the checkout from the lock, unless pyproject.toml and the lock are unchanged
  local stamp="$VENV/.datalake-installed" wanted
  wanted="$(cat "$REPO_DIR/pyproject.toml" "$REPO_DIR/requirements.lock" | sha256sum)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    log "dependencies unchanged; the editable install already points at the checkout"
    return 0
  fi
  log "installing dependencies from requirements.lock"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$REPO_DIR/requirements.lock" -e "$REPO_DIR" &&
    printf '%s\n' "$wanted" >"$stamp"
}

prefect_deploy() { # every deployment in the checkout's prefect.yaml
  (cd "$REPO_DIR" && "$VENV/bin/python" -m prefect --no-prompt deploy --all)
}

step() { # step <what> <command...>: run one step; on failure, say which
  local what="$1"
  shift
  "$@" || {
    log "failed: ${what}"
    return 1
  }
}

deploy() { # deploy <commit>: every step for one commit; non-zero on the first failure
  local commit="$1" before
  log "deploying ${commit}"
  step "git checkout" git -C "$REPO_DIR" checkout --quiet --force --detach "$commit" &&
    step "pip install" install_project &&
    wait_for "no answer from ${PREFECT_API_URL}/health" api GET /health &&
    step "work pool ${WORK_POOL}" ensure_pool &&
    step "prefect deploy --all" prefect_deploy &&
    before="$(workers)" &&
    step "worker restart (${RESTART_CMD})" bash -c "$RESTART_CMD" 9>&- &&
    wait_for "no new worker polling '${WORK_POOL}'" new_worker_online "$before"
}

exec 9>"$LOCK_FILE" # not inherited by the restarted worker: see deploy()
flock 9

git -C "$REPO_DIR" fetch --quiet --prune "$REMOTE"
commit="$(git -C "$REPO_DIR" rev-parse --verify "${TARGET}^{commit}" 2>/dev/null ||
  git -C "$REPO_DIR" rev-parse --verify "${REMOTE}/${TARGET}^{commit}")"
previous="$(git -C "$REPO_DIR" rev-parse HEAD)"

if deploy "$commit"; then
  log "deployed ${commit}"
  exit 0
fi
if [ "$previous" = "$commit" ]; then
  log "deploy of ${commit} failed and there is no earlier commit to roll back to"
  exit 1
fi
log "deploy of ${commit} failed; rolling back to ${previous}"
if deploy "$previous"; then
  log "rolled back to ${previous}; ${commit} is NOT deployed"
  exit 1
fi
log "rollback to ${previous} failed too; the host needs attention"
exit 2
