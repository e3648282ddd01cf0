.PHONY: demo test bench build

# Runs the demo from nothing: installs what is missing, builds, starts the embedded stack and the
# provider simulator, fills AI fields on 20 records, and stops.
demo:
	@scripts/demo.sh

# Runs the whole test suite against a real PostgreSQL and Redis that it starts and stops.
test:
	@scripts/test.sh

# Measures jobs/s, latency, commits, CPU and memory against a pgbench ceiling, on a release
# build. Pass options with ARGS, e.g. make bench ARGS="--tenants 10 --records 500".
bench:
	@scripts/bench.sh $(ARGS)

build:
	@scripts/ensure-deps.sh
	swift build
