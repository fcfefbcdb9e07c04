#!/usr/bin/env bash
# The Prefect API and UI. The compose service, the EC2 unit and tests/platform start the server through
# this script.
# Needs PREFECT_SERVER_API_AUTH_STRING (user:password; clients send it as
# PREFECT_API_AUTH_STRING). PREFECT_API_DATABASE_CONNECTION_URL picks the database
# (postgresql+asyncpg://... in compose; unset means SQLite under PREFECT_HOME). Host and port
# come from PREFECT_SERVER_API_HOST / PREFECT_SERVER_API_PORT.
set -euo pipefail

: "${PREFECT_SERVER_API_AUTH_STRING:?set it to user:password so the API is never open}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false

exec prefect server start
