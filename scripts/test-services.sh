#!/usr/bin/env bash
# Starts a throw-away PostgreSQL and Redis on Unix sockets for the test suite, and prints the
# environment that points the tests at them. Usage: eval "$(scripts/test-services.sh start DIR)";
# scripts/test-services.sh stop DIR.
set -euo pipefail
action=$1
dir=$2
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups --); fi

case "$action" in
start)
    mkdir -p "$dir/pg" "$dir/redis"
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$dir/pg"
    "${as_pg[@]}" "$pgbin/initdb" -D "$dir/pg/data" -U oneo --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-instructions >"$dir/initdb.log" 2>&1
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 start \
        -o "-k $dir/pg -c listen_addresses= -c max_connections=400 -c unix_socket_permissions=0777" >/dev/null
    redis-server --port 0 --unixsocket "$dir/redis/redis.sock" --unixsocketperm 777 --dir "$dir/redis" \
        --save "" --appendonly no --daemonize yes --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log"
    for _ in $(seq 1 100); do [ -S "$dir/redis/redis.sock" ] && break; sleep 0.1; done
    echo "export DATABASE_URL='postgres://oneo@/postgres?host=$dir/pg'"
    echo "export REDIS_URL='unix://$dir/redis/redis.sock'"
    ;;
stop)
    [ ! -f "$dir/pg/data/postmaster.pid" ] || "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    [ ! -f "$dir/redis/redis.pid" ] || kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    rm -rf "$dir"
    ;;
esac
