#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1, starting them (or, as root, installing
# Debian's packages) when they do not, and create the orchestrator's databases.
#
#   scripts/services.sh [DATABASE ...]   databases to create if missing [orchestrator radius]
set -euo pipefail

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
REDIS_PORT=${REDIS_PORT:-6379}

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_root() { [[ $(id -u) == 0 ]]; }

apt_install() {
    is_root || die "missing Debian packages: $*; install them with: sudo apt-get install -y $*"
    log "installing $*"
    # The package lists may be stale or absent on a fresh machine.
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_until() { # seconds, command...: poll until the command succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

ensure_postgres() {
    if pg_isready -q 2>/dev/null; then return; fi
    command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [[ -n $version ]] || die "PostgreSQL is installed but has no cluster in /etc/postgresql"
    log "starting PostgreSQL $version"
    is_root || die "PostgreSQL is down; start it with: sudo pg_ctlcluster $version main start"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        die "PostgreSQL did not start; see /var/log/postgresql/"
    wait_until 30 pg_isready -q || die "PostgreSQL does not answer on $PGHOST:$PGPORT"
    # Tests and the dev setup connect as postgres over TCP without a password.
    psql -tAc 'select 1' >/dev/null 2>&1 ||
        die "cannot connect as $PGUSER@$PGHOST:$PGPORT; allow trust auth for 127.0.0.1 in pg_hba.conf"
}

ensure_redis() {
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then return; fi
    command -v redis-server >/dev/null || apt_install redis-server
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log ||
        die "Redis did not start"
    wait_until 15 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping || die "Redis does not answer"
}

ensure_database() {
    local name=$1
    if [[ -z $(psql -tAc "select 1 from pg_database where datname = '$name'") ]]; then
        log "creating database $name"
        createdb "$name"
    fi
}

ensure_postgres
ensure_redis
for database in "${@:-orchestrator}"; do
    ensure_database "$database"
done
log "PostgreSQL on $PGHOST:$PGPORT and Redis on 127.0.0.1:$REDIS_PORT are up"
