#!/bin/bash
# First boot of the Prefect host (Amazon Linux 2023). Rendered by terraform/stacks/platform.py:
# the quoted placeholders below are filled at synth/apply time; no secret is ever part of it.
# Changes to this script reach only hosts created after them (the instance ignores user data
# changes; `make host-upgrade` replaces the host). It mounts the state volume (PostgreSQL, the
# Prefect database, outlives any host), writes systemd units for the Prefect server and worker,
# then deploys the release the artifacts bucket marks current (deploy/ec2-deploy.sh, the same
# script every push runs through `aws ssm send-command`). No GitHub access is needed.
set -euo pipefail

ENVIRONMENT="@@ENVIRONMENT@@"
REGION="@@REGION@@"
REPOSITORY="@@REPOSITORY@@"
BRANCH="@@BRANCH@@"
RELEASES_URI="@@RELEASES_URI@@"
STATE_VOLUME_ID="@@STATE_VOLUME_ID@@"
LAKE_URI="@@LAKE_URI@@"
AUTH_PARAMETER="@@AUTH_PARAMETER@@"
CA_PARAMETER="@@CA_PARAMETER@@"
API_TLS_PORT="@@API_TLS_PORT@@"
KMS_KEY_ARN="@@KMS_KEY_ARN@@"
WORK_POOL="@@WORK_POOL@@"
UI_PORT="@@UI_PORT@@"
METRIC_NAMESPACE="@@METRIC_NAMESPACE@@"

APP_DIR=/opt/datalake
REPO_DIR="$APP_DIR/current"
VENV="$APP_DIR/venv"
CONF_DIR=/etc/datalake
STATE_DIR=/var/lib/prefect
PGDATA_MOUNT=/var/lib/pgsql
DATABASE_URL="postgresql+asyncpg://prefect@/prefect?host=/run/postgresql"

retry() { # retry <command...>: transient AWS/network errors at boot must not end it for good
  local attempt
  for attempt in 1 2 3 4 5 6; do
    "$@" && return 0
    echo "attempt ${attempt} failed: $*" >&2
    sleep $((attempt * 5))
  done
  return 1
}

echo "datalake ${ENVIRONMENT}: ${REPOSITORY}@${BRANCH}, releases from ${RELEASES_URI}"
retry dnf install -y --setopt=install_weak_deps=False python3.11 python3.11-pip \
  postgresql16-server xfsprogs nginx

# The state volume is attached after the instance starts: wait for it, format it only if empty.
device="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${STATE_VOLUME_ID//-/}"
for _ in $(seq 120); do [ -e "$device" ] && break; sleep 5; done
[ -e "$device" ] || { echo "state volume ${STATE_VOLUME_ID} never appeared" >&2; exit 1; }
blkid "$device" >/dev/null || mkfs.xfs -L prefect-state "$device"
install -d -m 0700 "$PGDATA_MOUNT"
grep -q " ${PGDATA_MOUNT} " /etc/fstab ||
  echo "UUID=$(blkid -s UUID -o value "$device") ${PGDATA_MOUNT} xfs defaults,nofail 0 2" >>/etc/fstab
mountpoint -q "$PGDATA_MOUNT" || mount "$PGDATA_MOUNT"
chown postgres:postgres "$PGDATA_MOUNT"
[ -f "$PGDATA_MOUNT/data/PG_VERSION" ] || postgresql-setup --initdb
systemctl enable --now postgresql.service
# Local socket, peer authentication: only the prefect system user reaches its database.
if ! runuser -u postgres -- psql -tAc "select 1 from pg_roles where rolname = 'prefect'" | grep -q 1; then
  runuser -u postgres -- createuser prefect
  runuser -u postgres -- createdb --owner prefect prefect
fi

id prefect >/dev/null 2>&1 ||
  useradd --system --home-dir "$STATE_DIR" --shell /sbin/nologin prefect
install -d -o prefect -g prefect -m 0750 "$STATE_DIR" "$STATE_DIR/server" "$STATE_DIR/worker"
install -d -o root -g prefect -m 0750 "$CONF_DIR"
install -d -o root -g root -m 0755 "$APP_DIR"

# The API credentials live in SSM Parameter Store (SecureString, encrypted with the lake key):
# created once here, read on every boot, readable by root and the prefect group only on disk.
# Only "not found" creates them; any other error is retried, then ends the boot.
read_auth() {
  aws ssm get-parameter --region "$REGION" --name "$AUTH_PARAMETER" \
    --with-decryption --query Parameter.Value --output text 2>"$CONF_DIR/get-parameter.err"
}
auth=""
for attempt in 1 2 3 4 5 6; do
  if auth="$(read_auth)"; then
    break
  elif grep -q ParameterNotFound "$CONF_DIR/get-parameter.err"; then
    auth="prefect:$(openssl rand -hex 24)"
    retry aws ssm put-parameter --region "$REGION" --name "$AUTH_PARAMETER" --type SecureString \
      --key-id "$KMS_KEY_ARN" --value "$auth" --description "Prefect API basic auth (user:password)"
    break
  fi
  cat "$CONF_DIR/get-parameter.err" >&2
  sleep $((attempt * 5))
done
rm -f "$CONF_DIR/get-parameter.err"
[ -n "$auth" ] || { echo "cannot read ${AUTH_PARAMETER}" >&2; exit 1; }
(
  umask 027
  printf 'PREFECT_SERVER_API_AUTH_STRING=%s\nPREFECT_API_AUTH_STRING=%s\n' "$auth" "$auth" \
    >"$CONF_DIR/prefect-auth.env"
)
chgrp prefect "$CONF_DIR/prefect-auth.env"
unset auth

# TLS for the fleet's workers (port ${API_TLS_PORT}, open to their security group only): nginx in
# front of the loopback API. The key never leaves this host; a new host (no key yet) makes a new
# self-signed certificate for its private DNS name and publishes it (public) for the workers.
TLS_DIR="$CONF_DIR/tls"
install -d -o root -g root -m 0700 "$TLS_DIR"
if [ ! -f "$TLS_DIR/key.pem" ]; then
  token="$(retry curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
    http://169.254.169.254/latest/api/token)"
  private_dns="$(retry curl -sf -H "X-aws-ec2-metadata-token: ${token}" \
    http://169.254.169.254/latest/meta-data/local-hostname)"
  openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=${private_dns}" \
    -addext "subjectAltName=DNS:${private_dns}" -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem"
  retry aws ssm put-parameter --region "$REGION" --name "$CA_PARAMETER" --type String --overwrite \
    --value "file://${TLS_DIR}/cert.pem" --description "Prefect API TLS certificate (public)"
fi
cat >"$CONF_DIR/prefect-tls.conf" <<CONF
pid /run/prefect-tls.pid;
error_log stderr;
events {}
http {
  access_log off;
  server {
    listen ${API_TLS_PORT} ssl;
    ssl_certificate ${TLS_DIR}/cert.pem;
    ssl_certificate_key ${TLS_DIR}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 64m;
    location / {
      proxy_pass http://127.0.0.1:${UI_PORT};
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
    }
  }
}
CONF
cat >/etc/systemd/system/prefect-tls.service <<UNIT
[Unit]
Description=TLS for the Prefect API: ${API_TLS_PORT} -> 127.0.0.1:${UI_PORT} (the fleet's workers)
Wants=prefect-server.service
After=network-online.target prefect-server.service

[Service]
ExecStartPre=/usr/sbin/nginx -t -q -c ${CONF_DIR}/prefect-tls.conf
ExecStart=/usr/sbin/nginx -c ${CONF_DIR}/prefect-tls.conf -g 'daemon off;'
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT

cat >/etc/systemd/system/prefect-server.service <<UNIT
[Unit]
Description=Prefect server (API and UI on 127.0.0.1:${UI_PORT}, PostgreSQL on the state volume)
Wants=network-online.target
Requires=postgresql.service
After=network-online.target postgresql.service

[Service]
User=prefect
Group=prefect
Environment=PATH=${VENV}/bin:/usr/local/bin:/usr/bin
Environment=PREFECT_HOME=${STATE_DIR}/server
Environment=PREFECT_SERVER_API_HOST=127.0.0.1
Environment=PREFECT_SERVER_API_PORT=${UI_PORT}
Environment=PREFECT_UI_API_URL=http://localhost:${UI_PORT}/api
Environment=PREFECT_API_DATABASE_CONNECTION_URL=${DATABASE_URL}
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

# Releases and venv belong to root: the services can run them but not change them.
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
printf 'DEPLOY_RELEASES_URI=%s\nDEPLOY_DATABASE_URL=%s\nAWS_DEFAULT_REGION=%s\n' \
  "$RELEASES_URI" "$DATABASE_URL" "$REGION" >"$CONF_DIR/deploy.env"
systemctl daemon-reload
systemctl enable prefect-server.service prefect-worker.service
systemctl enable --now prefect-tls.service

# A new host (first apply, or `make host-upgrade`) installs the release deployed last; on the
# very first apply there is none yet and the deploy workflow's first deploy installs it.
if commit="$(retry aws s3 cp --only-show-errors "${RELEASES_URI}/current" -)"; then
  retry aws s3 cp --only-show-errors "${RELEASES_URI}/${commit}.tar.gz" /tmp/release.tar.gz
  tar -xzf /tmp/release.tar.gz -O deploy/ec2-deploy.sh >/tmp/ec2-deploy.sh
  DEPLOY_WORK_POOL="$WORK_POOL" DEPLOY_API_PORT="$UI_PORT" bash /tmp/ec2-deploy.sh "$commit"
else
  echo "no release in ${RELEASES_URI} yet: the deploy workflow installs the first one"
fi
