#!/usr/bin/env bash
# Installs what oneo-ai needs on a Debian machine, only what is missing. Safe to run every time.
set -euo pipefail

need=()
command -v psql >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
[ -f /usr/include/hiredis/hiredis.h ] || need+=(libhiredis-dev)
[ -f /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || need+=(libcurl4-openssl-dev)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The code interpreter's jail runs the system interpreter from its read-only /usr.
[ -x /usr/bin/python3 ] || need+=(python3-minimal)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/bin/ss ] || need+=(iproute2)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing: ${need[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "error: swift is not on PATH; install the Swift 6 toolchain (https://swift.org/install)" >&2
    exit 1
fi
