#!/usr/bin/env bash
# The benchmark, on a release build: `make bench` or `make bench ARGS="--tenants 10 --records 500"`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
echo "==> building release (the first release build takes several minutes)" >&2
mkdir -p .oneo
if ! swift build -c release >.oneo/build-release.log 2>&1; then
    tail -30 .oneo/build-release.log >&2
    echo "error: release build failed; full log in .oneo/build-release.log" >&2
    exit 1
fi
exec "$(swift build -c release --show-bin-path)/oneo-ai" bench "$@"
