#!/bin/bash
# First boot of a fleet worker host (Amazon Linux 2023). Rendered by terraform/stacks/fleet.py.
# It installs the release the artifacts bucket marks current (releases/current, then
# releases/<commit>.tar.gz, as the server host does: no GitHub access), then runs one Prefect
# process worker on its pool against the server host's API over TLS (the server's certificate is
# trusted from the SSM parameter the server host publishes it to). No inbound port: the worker
# only polls. A deploy rolls the fleet (instance refresh): every new host installs the new current.
set -euo pipefail

REGION="@@REGION@@"
RELEASES_URI="@@RELEASES_URI@@"
LAKE_URI="@@LAKE_URI@@"
AUTH_PARAMETER="@@AUTH_PARAMETER@@"
CA_PARAMETER="@@CA_PARAMETER@@"
API_URL="@@API_URL@@"
WORK_POOL="@@WORK_POOL@@"
WORKER_LIMIT="@@WORKER_LIMIT@@"
METRIC_NAMESPACE="@@METRIC_NAMESPACE@@"

APP_DIR=/opt/datalake
REPO_DIR="$APP_DIR/current"
VENV="$APP_DIR/venv"
CONF_DIR=/etc/datalake
STATE_DIR=/var/lib/prefect

retry() { # retry <command...>: transient AWS/network errors at boot must not end it for good
  local attempt
  for attempt in 1 2 3 4 5 6; do
    "$@" && return 0
    echo "attempt ${attempt} failed: $*" >&2
    sleep $((attempt * 5))
  done
  return 1
}

retry dnf install -y --setopt=install_weak_deps=False python3.11 python3.11-pip
id prefect >/dev/null 2>&1 ||
  useradd --system --home-dir "$STATE_DIR" --shell /sbin/nologin prefect
install -d -o prefect -g prefect -m 0750 "$STATE_DIR" "$STATE_DIR/worker"
install -d -o root -g prefect -m 0750 "$CONF_DIR"
install -d -o root -g root -m 0755 "$APP_DIR"

# The server host publishes its certificate at its first boot: wait for it like any transient error.
retry aws ssm get-parameter --region "$REGION" --name "$CA_PARAMETER" \
  --query Parameter.Value --output text >"$CONF_DIR/prefect-api-ca.pem"
(
  umask 027
  auth="$(retry aws ssm get-parameter --region "$REGION" --name "$AUTH_PARAMETER" \
    --with-decryption --query Parameter.Value --output text)"
  printf 'PREFECT_API_AUTH_STRING=%s\n' "$auth" >"$CONF_DIR/prefect-auth.env"
)
chgrp prefect "$CONF_DIR/prefect-auth.env"

cat >/etc/systemd/system/prefect-worker.service <<UNIT
[Unit]
Description=Prefect worker for the ${WORK_POOL} pool (fleet host; flows from ${REPO_DIR})
After=network-online.target

[Service]
User=prefect
Group=prefect
WorkingDirectory=${REPO_DIR}
Environment=PATH=${VENV}/bin:/usr/local/bin:/usr/bin
Environment=PREFECT_HOME=${STATE_DIR}/worker
Environment=PREFECT_API_URL=${API_URL}
Environment=PREFECT_API_SSL_CERT_FILE=${CONF_DIR}/prefect-api-ca.pem
Environment=SSL_CERT_FILE=${CONF_DIR}/prefect-api-ca.pem
Environment=WORK_POOL=${WORK_POOL}
Environment=WORKER_LIMIT=${WORKER_LIMIT}
Environment=LAKE_PROJECT_DIR=${REPO_DIR}
Environment=LAKE_URI=${LAKE_URI}
Environment=LAKE_CLOUDWATCH_NAMESPACE=${METRIC_NAMESPACE}
Environment=AWS_REGION=${REGION}
Environment=AWS_DEFAULT_REGION=${REGION}
EnvironmentFile=${CONF_DIR}/prefect-auth.env
ExecStart=${REPO_DIR}/docker/bin/worker.sh
Restart=always
RestartSec=5
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true

[Install]
WantedBy=multi-user.target
UNIT

# The release and venv belong to root: the worker can run them but not change them.
commit="$(retry aws s3 cp --only-show-errors "${RELEASES_URI}/current" -)" ||
  { echo "no release in ${RELEASES_URI}: deploy one before scaling the fleet up" >&2; exit 1; }
release="$APP_DIR/releases/$commit"
if [ ! -f "$release/REVISION" ]; then
  retry aws s3 cp --only-show-errors "${RELEASES_URI}/${commit}.tar.gz" /tmp/release.tar.gz
  install -d -o root -g root -m 0755 "$release"
  tar -xzf /tmp/release.tar.gz -C "$release"
  rm -f /tmp/release.tar.gz
fi
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
retry "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-warn-script-location -c "$release/requirements.lock" "$release"
ln -sfn "$release" "$REPO_DIR"

systemctl daemon-reload
systemctl enable --now prefect-worker.service
