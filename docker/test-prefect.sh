#!/usr/bin/env bash
# Brings the local platform up, waits until every service is healthy, registers the
# deployments in prefect.yaml, runs one flow to completion and prints where the UI is.
# Usage: docker/test-prefect.sh [flow-name/deployment-name]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deployment="${1:-Basic ETL Pipeline/basic-etl}"

fail() {
  echo "ERROR: $*" >&2
  exit 1
}

command -v docker >/dev/null 2>&1 ||
  fail "docker is not installed. Install Docker Engine or Docker Desktop, or use 'make server' for a native Prefect server without Docker."
docker compose version >/dev/null 2>&1 ||
  fail "the Docker Compose v2 plugin is missing ('docker compose version' failed)."
docker info >/dev/null 2>&1 ||
  fail "the Docker engine is not reachable ('docker info' failed): start Docker and retry."

"$here/init-env.sh"
# shellcheck source=/dev/null
source "$here/.env"
compose=(docker compose --project-directory "$here" -f "$here/docker-compose.yml")

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z "$("${compose[@]}" ps --quiet 2>/dev/null)" ]]; then
  for port in "${PREFECT_PORT:-4200}" "${S3_PORT:-7070}"; do
    if port_taken "$port"; then
      fail "port $port on 127.0.0.1 is taken by another program: stop it, or set PREFECT_PORT / S3_PORT in $here/.env."
    fi
  done
fi

echo "==> Starting the stack and waiting for every service to be healthy"
"${compose[@]}" up --detach --build --wait ||
  fail "the stack did not become healthy; see '${compose[*]} logs'."

echo "==> Registering the deployments in prefect.yaml"
"${compose[@]}" exec -T worker /opt/app/docker/bin/deploy.sh

echo "==> Running '$deployment' and waiting for it to finish"
"${compose[@]}" exec -T worker prefect deployment run "$deployment" --watch --watch-timeout 600

cat <<MSG

The local platform is up.
  Prefect UI:  http://localhost:${PREFECT_PORT:-4200}  (user:password is PREFECT_AUTH_STRING in $here/.env)
  S3 store:    http://localhost:${S3_PORT:-7070}  (keys S3_ACCESS_KEY / S3_SECRET_KEY in $here/.env)
  Stop it:     make down            (keeps the data)
  Reset it:    make reset           (also deletes the database and the lake volumes)
MSG
