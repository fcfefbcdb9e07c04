#!/bin/bash
# First boot of the Prefect host (Amazon Linux 2023). Rendered by terraform/stacks/platform.py:
# the quoted placeholders below are filled at synth/apply time; no secret is ever part of it.
# It installs the project, writes systemd units for the Prefect server and worker, then runs
# deploy/ec2-deploy.sh, the same script every later push runs through `aws ssm send-command`.
set -euo pipefail

ENVIRONMENT="@@ENVIRONMENT@@"
REGION="@@REGION@@"
REPOSITORY="@@REPOSITORY@@"
BRANCH="@@BRANCH@@"
LAKE_URI="@@LAKE_URI@@"
AUTH_PARAMETER="@@AUTH_PARAMETER@@"
KMS_KEY_ARN="@@KMS_KEY_ARN@@"
WORK_POOL="@@WORK_POOL@@"
UI_PORT="@@UI_PORT@@"
METRIC_NAMESPACE="@@METRIC_NAMESPACE@@"

APP_DIR=/opt/datalake
REPO_DIR="$APP_DIR/repo"
VENV="$APP_DIR/venv"
CONF_DIR=/etc/datalake
STATE_DIR=/var/lib/prefect

echo "datalake ${ENVIRONMENT}: installing ${REPOSITORY}@${BRANCH}"
dnf install -y --setopt=install_weak_deps=False git python3.11 python3.11-pip

id prefect >/dev/null 2>&1 ||
  useradd --system --home-dir "$STATE_DIR" --shell /sbin/nologin prefect
install -d -o prefect -g prefect -m 0750 "$STATE_DIR" "$STATE_DIR/server" "$STATE_DIR/worker"
install -d -o root -g prefect -m 0750 "$CONF_DIR"
install -d -o root -g root -m 0755 "$APP_DIR"

# The API credentials live in SSM Parameter Store (SecureString, encrypted with the lake key):
# created once here, read on every boot, readable by root and the prefect group only on disk.
if ! auth="$(aws ssm get-parameter --region "$REGION" --name "$AUTH_PARAMETER" \
  --with-decryption --query Parameter.Value --output text 2>/dev/null)"; then
  auth="prefect:$(openssl rand -hex 24)"
  aws ssm put-parameter --region "$REGION" --name "$AUTH_PARAMETER" --type SecureString \
    --key-id "$KMS_KEY_ARN" --value "$auth" --description "Prefect API basic auth (user:password)"
fi
(
  umask 027
  printf 'PREFECT_SERVER_API_AUTH_STRING=%s\nPREFECT_API_AUTH_STRING=%s\n' "$auth" "$auth" \
    >"$CONF_DIR/prefect-auth.env"
)
chgrp prefect "$CONF_DIR/prefect-auth.env"
unset auth

cat >/etc/systemd/system/prefect-server.service <<UNIT
[Unit]
Description=Prefect server (API and UI on 127.0.0.1:${UI_PORT}, SQLite in ${STATE_DIR}/server)
Wants=network-online.target
After=network-online.target

[Service]
User=prefect
Group=prefect
Environment=PATH=${VENV}/bin:/usr/local/bin:/usr/bin
Environment=PREFECT_HOME=${STATE_DIR}/server
Environment=PREFECT_SERVER_API_HOST=127.0.0.1
Environment=PREFECT_SERVER_API_PORT=${UI_PORT}
Environment=PREFECT_UI_API_URL=http://localhost:${UI_PORT}/api
EnvironmentFile=${CONF_DIR}/prefect-auth.env
ExecStart=${REPO_DIR}/docker/bin/prefect-server.sh
Restart=on-failure
RestartSec=5
NoNewPrivileges=true
ProtectSystem=full
PrivateTmp=true

[Install]
WantedBy=multi-user.target
UNIT

cat >/etc/systemd/system/prefect-worker.service <<UNIT
[Unit]
Description=Prefect worker for the ${WORK_POOL} pool (flows from ${REPO_DIR})
Wants=prefect-server.service
After=prefect-server.service

[Service]
User=prefect
Group=prefect
WorkingDirectory=${REPO_DIR}
Environment=PATH=${VENV}/bin:/usr/local/bin:/usr/bin
Environment=PREFECT_HOME=${STATE_DIR}/worker
Environment=PREFECT_API_URL=http://127.0.0.1:${UI_PORT}/api
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

# Code and venv belong to root: the services can run them but not change them.
if [ ! -d "$REPO_DIR/.git" ]; then
  git clone --quiet --branch "$BRANCH" "https://github.com/${REPOSITORY}.git" "$REPO_DIR"
fi
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$REPO_DIR/requirements.lock" \
  -e "$REPO_DIR"

systemctl daemon-reload
systemctl enable --now prefect-server.service
systemctl enable prefect-worker.service
DEPLOY_WORK_POOL="$WORK_POOL" DEPLOY_API_PORT="$UI_PORT" \
  "$REPO_DIR/deploy/ec2-deploy.sh" "origin/${BRANCH}"
