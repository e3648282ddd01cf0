.PHONY: demo test build

# Runs the demo from nothing: installs what is missing, builds, starts the embedded stack and the
# provider simulator, fills AI fields on 20 records, and stops.
demo:
	@scripts/demo.sh

# Runs the whole test suite against a real PostgreSQL and Redis that it starts and stops.
test:
	@scripts/test.sh

build:
	@scripts/ensure-deps.sh
	swift build
