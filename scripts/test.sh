#!/usr/bin/env bash
# The whole test suite against a real PostgreSQL and Redis that this script starts and stops.
# Arguments go to `swift test` (e.g. --filter RecordToField).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/check-imports.sh

services=$(mktemp -d /tmp/oneo-test-services.XXXXXX)
trap 'scripts/test-services.sh stop "$services"' EXIT
eval "$(scripts/test-services.sh start "$services")"
export ONEO_TEST_SERVICES=1

echo "==> building"
swift build --build-tests
if [ "$#" -gt 0 ]; then
    echo "==> testing $* (PostgreSQL and Redis under $services)"
    swift test --skip-build "$@"
    exit
fi
# The process-supervision suite asserts how fast the supervisor brings children back; it runs
# on its own, after the rest, so that it measures the supervisor and not a dozen other stacks
# starting on the same cores.
echo "==> testing (PostgreSQL and Redis under $services)"
swift test --skip-build --skip ProcessSupervisionTests
echo "==> testing process supervision on a quiet machine"
swift test --skip-build --filter ProcessSupervisionTests
