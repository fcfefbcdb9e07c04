#!/usr/bin/env bash
# Package one commit of this repository as the release the host installs:
#
#   deploy/build-release.sh <commit> <output.tar.gz>
#
# The archive is `git archive` of the commit (so requirements.lock, prefect.yaml, flows/,
# docker/bin and deploy/ as committed, nothing from the work tree) plus a REVISION file with
# the full commit id, which the model registry records as the code version. The deploy
# workflow uploads it to the artifacts bucket as releases/<commit>.tar.gz.
set -euo pipefail

commit="$(git rev-parse --verify "${1:?usage: $0 <commit> <output.tar.gz>}^{commit}")"
output="${2:?usage: $0 <commit> <output.tar.gz>}"
for required in requirements.lock prefect.yaml pyproject.toml deploy/ec2-deploy.sh; do
  git cat-file -e "${commit}:${required}" || {
    echo "build-release: ${commit} has no ${required}" >&2
    exit 1
  }
done
git archive --format=tar.gz --add-virtual-file="REVISION:${commit}" -o "$output" "$commit"
echo "$output: release ${commit}"
