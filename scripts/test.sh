#!/usr/bin/env bash
# The whole test suite against a real PostgreSQL and Redis that this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

services=$(mktemp -d /tmp/oneo-test-services.XXXXXX)
trap 'scripts/test-services.sh stop "$services"' EXIT
eval "$(scripts/test-services.sh start "$services")"
export ONEO_TEST_SERVICES=1

echo "==> building"
swift build --build-tests
echo "==> testing (PostgreSQL and Redis under $services)"
swift test --skip-build "$@"
