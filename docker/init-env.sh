#!/usr/bin/env bash
# Creates docker/.env from .env.example with a fresh random value for every "change-me".
# Leaves an existing docker/.env alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="$here/.env"
if [[ -f "$env_file" ]]; then
  exit 0
fi

random_secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

umask 077
while IFS= read -r line; do
  while [[ "$line" == *change-me* ]]; do
    line="${line/change-me/$(random_secret)}"
  done
  printf '%s\n' "$line"
done <"$here/.env.example" >"$env_file"
echo "Created $env_file with random secrets (git-ignored; keep it private)."
