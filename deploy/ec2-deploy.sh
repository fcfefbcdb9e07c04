#!/usr/bin/env bash
# shellcheck disable=SC2329  # most functions run through step and wait_for
# Deploy one release (a commit packaged by deploy/build-release.sh) to the Prefect host, or leave
# the previous one running.
#
#   ec2-deploy.sh <commit>
#
# Runs on the EC2 host as root: through `aws ssm send-command` from .github/workflows/deploy.yml
# and from first boot (terraform/user-data.sh), in both cases as the copy inside the release
# being deployed, so a commit is always deployed by its own script. No git and no GitHub
# credential on the host: the release comes from the artifacts bucket.
#
# Steps: fetch and unpack releases/<commit>.tar.gz, install it into the venv from its
# requirements.lock, point `current` at it; if the installed Prefect version changed (or was
# never recorded), run `prefect server database upgrade` and restart the server; then the work
# pool (created only if missing), `prefect deploy --all`, restart the worker, and wait until the
# server answers and a new worker polls the pool. If any step fails, the deployments this
# release added are deleted, the previous release is deployed again the same way, and the
# script exits 1 (2 if that fails too).
#
# Every path and command can be overridden through the environment (tests/infra runs this
# script against a native Prefect server with temporary releases, venv and worker):
#   DEPLOY_CONF_FILE          sourced first if readable: DEPLOY_RELEASES_URI, DEPLOY_DATABASE_URL
#                                                            (/etc/datalake/deploy.env)
#   DEPLOY_ENV_FILE           sourced if readable: API credentials (/etc/datalake/prefect-auth.env)
#   DEPLOY_RELEASES_URI       s3://<artifacts bucket>/releases, or a local folder of releases
#   DEPLOY_APP_DIR            releases/<commit> and the `current` link live here (/opt/datalake)
#   DEPLOY_VENV               venv the services run from           (/opt/datalake/venv)
#   DEPLOY_DB_UPGRADE_CMD     migrates the server's database       (prefect server database upgrade
#                                                            as the prefect user)
#   DEPLOY_SERVER_RESTART_CMD restarts the server       (systemctl restart prefect-server.service)
#   DEPLOY_RESTART_CMD        restarts the worker       (systemctl restart prefect-worker.service)
#   DEPLOY_WORK_POOL          pool the worker must poll            (lake-process)
#   DEPLOY_API_PORT           port of the local server             (4200)
#   PREFECT_API_URL           the server's API           (http://127.0.0.1:$DEPLOY_API_PORT/api)
#   DEPLOY_HEALTH_TIMEOUT     seconds to wait for health           (180)
#   DEPLOY_LOCK_FILE          one deploy at a time on a host (/run/lock/datalake-deploy.lock)
set -euo pipefail

TARGET="${1:?usage: $0 <commit>}"
CONF_FILE="${DEPLOY_CONF_FILE:-/etc/datalake/deploy.env}"
ENV_FILE="${DEPLOY_ENV_FILE:-/etc/datalake/prefect-auth.env}"
for file in "$CONF_FILE" "$ENV_FILE"; do
  if [ -r "$file" ]; then
    set -a
    # shellcheck source=/dev/null
    . "$file"
    set +a
  fi
done
RELEASES_URI="${DEPLOY_RELEASES_URI:?set it (in ${CONF_FILE}) to s3://<artifacts bucket>/releases}"
APP_DIR="${DEPLOY_APP_DIR:-/opt/datalake}"
VENV="${DEPLOY_VENV:-/opt/datalake/venv}"
DB_UPGRADE_CMD="${DEPLOY_DB_UPGRADE_CMD:-runuser -u prefect -- env PREFECT_HOME=/var/lib/prefect/server PREFECT_API_DATABASE_CONNECTION_URL=$(printf %q "${DEPLOY_DATABASE_URL:-}") ${VENV}/bin/prefect server database upgrade -y}"
SERVER_RESTART_CMD="${DEPLOY_SERVER_RESTART_CMD:-systemctl restart prefect-server.service}"
RESTART_CMD="${DEPLOY_RESTART_CMD:-systemctl restart prefect-worker.service}"
WORK_POOL="${DEPLOY_WORK_POOL:-lake-process}"
HEALTH_TIMEOUT="${DEPLOY_HEALTH_TIMEOUT:-180}"
LOCK_FILE="${DEPLOY_LOCK_FILE:-/run/lock/datalake-deploy.lock}"
RELEASES="$APP_DIR/releases"
CURRENT="$APP_DIR/current"
PREFECT_STAMP="$VENV/.datalake-prefect-version" # the version the server's database was migrated to

export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:${DEPLOY_API_PORT:-4200}/api}"
# prefect.yaml's pull step and work pool read the release's path from here.
export LAKE_PROJECT_DIR="$CURRENT"
export PATH="$VENV/bin:$PATH"

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

json() { # json <python expression over `data` (stdin, parsed)>: print its result
  "$VENV/bin/python" -c "import json, sys; data = json.load(sys.stdin); print($1)"
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

deployment_ids() { # every deployment id on the server, one a line
  api POST /deployments/filter '{}' | json '"\n".join(d["id"] for d in data)'
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

fetch_release() { # fetch_release <commit>: unpack releases/<commit>.tar.gz once
  local commit="$1" archive
  [ -f "$RELEASES/$commit/REVISION" ] && return 0
  archive="$(mktemp)"
  case "$RELEASES_URI" in
    s3://*) aws s3 cp --only-show-errors "${RELEASES_URI}/${commit}.tar.gz" "$archive" ;;
    *) cp "${RELEASES_URI}/${commit}.tar.gz" "$archive" ;;
  esac &&
    rm -rf "$RELEASES/$commit.partial" &&
    mkdir -p "$RELEASES/$commit.partial" &&
    tar -xzf "$archive" -C "$RELEASES/$commit.partial" &&
    mv "$RELEASES/$commit.partial" "$RELEASES/$commit"
  local status=$?
  rm -f "$archive"
  return "$status"
}

installed_prefect() {
  "$VENV/bin/python" -c 'from importlib.metadata import version; print(version("prefect"))'
}

install_release() { # install_release <commit>: the release and its locked dependencies
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    -c "$RELEASES/$1/requirements.lock" "$RELEASES/$1"
}

switch_current() { # switch_current <commit>: atomically repoint `current`
  ln -sfn "$RELEASES/$1" "$CURRENT.next" && mv -T "$CURRENT.next" "$CURRENT"
}

migrate_and_restart_server() { # only when the installed Prefect differs from the migrated one
  local installed
  installed="$(installed_prefect)" || return 1
  if [ -f "$PREFECT_STAMP" ] && [ "$(cat "$PREFECT_STAMP")" = "$installed" ]; then
    return 0
  fi
  log "prefect ${installed}: migrating the server's database, then restarting the server"
  bash -c "$DB_UPGRADE_CMD" 9>&- &&
    bash -c "$SERVER_RESTART_CMD" 9>&- &&
    printf '%s\n' "$installed" >"$PREFECT_STAMP"
}

prefect_deploy() { # every deployment in the release's prefect.yaml
  (cd "$CURRENT" && "$VENV/bin/python" -m prefect --no-prompt deploy --all)
}

step() { # step <what> <command...>: run one step; on failure, say which
  local what="$1"
  shift
  "$@" || {
    log "failed: ${what}"
    return 1
  }
}

deploy() { # deploy <commit>: every step for one release; non-zero on the first failure
  local commit="$1" before
  log "deploying ${commit}"
  step "fetch release ${commit} from ${RELEASES_URI}" fetch_release "$commit" &&
    step "pip install" install_release "$commit" &&
    step "switch ${CURRENT}" switch_current "$commit" &&
    step "database upgrade and server restart" migrate_and_restart_server &&
    wait_for "no answer from ${PREFECT_API_URL}/health" api GET /health &&
    step "work pool ${WORK_POOL}" "$CURRENT/docker/bin/work-pool.sh" "$WORK_POOL" &&
    step "prefect deploy --all" prefect_deploy &&
    before="$(workers)" &&
    step "worker restart (${RESTART_CMD})" bash -c "$RESTART_CMD" 9>&- &&
    wait_for "no new worker polling '${WORK_POOL}'" new_worker_online "$before"
}

remove_added_deployments() { # remove_added_deployments <ids before>: undo a failed release's additions
  local id
  if [ -z "$known_deployments_read" ]; then
    log "the deployments before ${commit} are unknown (no API answer then): none removed"
    return 0
  fi
  for id in $(deployment_ids); do
    if ! grep -qx "$id" <<<"$1"; then
      log "removing deployment ${id}, added by the failed release"
      api DELETE "/deployments/${id}" >/dev/null || return 1
    fi
  done
}

exec 9>"$LOCK_FILE" # not inherited by the restarted services: see deploy()
flock 9

mkdir -p "$RELEASES"
commit="$TARGET"
previous="$(basename "$(readlink "$CURRENT" 2>/dev/null || true)")"
known_deployments="" known_deployments_read=""
if known_deployments="$(deployment_ids 2>/dev/null)"; then
  known_deployments_read=1
fi

prune_releases() { # keep the deployed release and the one before it (the rollback target)
  local release
  for release in "$RELEASES"/*; do
    case "$(basename "$release")" in
      "$commit" | "$previous") ;;
      *) rm -rf "$release" ;;
    esac
  done
}

if deploy "$commit"; then
  prune_releases
  log "deployed ${commit}"
  exit 0
fi
if [ -z "$previous" ] || [ "$previous" = "$commit" ]; then
  log "deploy of ${commit} failed and there is no earlier release to roll back to"
  exit 1
fi
log "deploy of ${commit} failed; rolling back to ${previous}"
if remove_added_deployments "$known_deployments" && deploy "$previous"; then
  log "rolled back to ${previous}; ${commit} is NOT deployed"
  exit 1
fi
log "rollback to ${previous} failed too; the host needs attention"
exit 2
