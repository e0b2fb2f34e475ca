#!/usr/bin/env bash
# Run a command against a private, throw-away PostgreSQL and Redis on loopback.
#
#   scripts/with-services.sh <command> [args...]
#
# Starts both servers on free ports in a temporary directory, exports DATABASE_URL and
# REDIS_URL, runs the command, stops the servers and removes the directory, and exits with
# the command's status. Installs `postgresql` and `redis-server` with apt-get when they are
# missing, Chromium with its driver for the admin's browser test, and `pgbouncer` and
# `redis-sentinel` for the scale-out tests (CI runs as root on Debian). PostgreSQL refuses to
# run as root, so as root it runs as the `postgres` user, in a data directory that user owns.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

ensure_installed() {
    local missing=()
    pg_bindir >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    # The admin's browser test: Debian's Chromium and its driver (nothing downloads a browser).
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    # Scale-out tests: PostgreSQL behind PgBouncer, Redis behind Sentinel.
    command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
    command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and re-run"
        exit 1
    fi
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_installed
PGBIN=$(pg_bindir)
WORK=$(mktemp -d /tmp/waypost-services.XXXXXX)
chmod 755 "$WORK"
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$WORK"
    as_pg=(runuser -u postgres --)
fi

cleanup() {
    local rc=$?
    "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    if [ -f "$WORK/redis.pid" ]; then kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --locale=C.UTF-8 \
    --encoding=UTF8 >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 1; }
# Tests trade durability for speed; benchmarks (WAYPOST_PG_DURABLE=1) keep PostgreSQL's
# defaults, so "stored before the 200" means flushed to disk.
pg_speed="-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
[ "${WAYPOST_PG_DURABLE:-0}" = "1" ] && pg_speed=""
# Start/stop scripts for each server, for the fault-injection run (bench/chaos.py, make chaos), which
# stop and restart them mid-run: "$WAYPOST_SERVICES/pg-ctl stop|start", ".../redis-ctl ...".
cat >"$WORK/pg-ctl" <<EOF
#!/usr/bin/env bash
set -eu
case "\$1" in
    start) ${as_pg[*]} "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start -o \\
        "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 $pg_speed -c max_connections=200" \\
        >/dev/null ;;
    stop) ${as_pg[*]} "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null ;;
esac
EOF
cat >"$WORK/redis-ctl" <<EOF
#!/usr/bin/env bash
set -eu
case "\$1" in
    start)
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save "" \\
            --appendonly no --dir "$WORK" --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
        for _ in \$(seq 50); do
            redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && exit 0
            sleep 0.1
        done
        exit 1 ;;
    stop) redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true ;;
esac
EOF
chmod 755 "$WORK/pg-ctl" "$WORK/redis-ctl"

"$WORK/pg-ctl" start || { cat "$WORK/pg.log" >&2; exit 1; }
"$WORK/redis-ctl" start

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/waypost"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export WAYPOST_SERVICES="$WORK"
log "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT"

set +e
"$@"
status=$?
set -e
exit "$status"
