#!/usr/bin/env bash
# A private FreeRADIUS 3.2 (Debian 12 packages) backed by PostgreSQL, for development and tests.
#
#   scripts/freeradius.sh install    install the Debian packages if anything is missing (root)
#   scripts/freeradius.sh db         create role, database, FreeRADIUS schema, grants, our table
#   scripts/freeradius.sh configure  (re)build the private config copy in $FREERADIUS_DIR
#   scripts/freeradius.sh start      install-check + db + configure, start the daemon, wait for it
#   scripts/freeradius.sh stop       stop the daemon of $FREERADIUS_DIR
#   scripts/freeradius.sh status     exit 0 running and answering, 1 running but not answering,
#                                    3 not running
#
# Environment (defaults in brackets):
#   FREERADIUS_DIR      private instance dir, relative to the repo root [var/freeradius]
#   RADIUS_AUTH_PORT    auth port on 127.0.0.1 [1812]
#   RADIUS_ACCT_PORT    accounting port on 127.0.0.1 [1813]
#   RADIUS_DB_NAME      PostgreSQL database FreeRADIUS reads [radius]
#   RADIUS_DB_USER      role FreeRADIUS connects as [radius]
#   RADIUS_DB_PASSWORD  its password [radpass]
#   PGHOST PGPORT PGUSER  PostgreSQL server and the admin role used by `db` [127.0.0.1 5432 postgres]
#                         (the daemon connects to the same PGHOST/PGPORT as RADIUS_DB_USER);
#                         PGPASSWORD is honoured by psql if set
#   RADIUS_START_TIMEOUT  seconds `start` waits for the daemon to answer [15]
#
# The daemon runs as the invoking user (root on CI): the private radiusd.conf has its
# user/group lines removed, so nothing under FREERADIUS_DIR needs to be readable by freerad.
# It listens on 127.0.0.1 only (no proxy socket either), pid file FREERADIUS_DIR/run/freeradius.pid,
# log FREERADIUS_DIR/log/radius.log. Clients come from clients.conf (localhost / testing123);
# the sql module's read_clients stays off (a nas row for 127.0.0.1 would clash with it).
# `start` is ready when the server answers Status-Server; it restarts a running daemon whose
# configuration changed (other ports, database...).
set -euo pipefail

readonly SRC_RADDB=/etc/freeradius/3.0
readonly FREERADIUS_BIN=/usr/sbin/freeradius
readonly SQL_PG_MODULE=/usr/lib/freeradius/rlm_sql_postgresql.so
readonly SCHEMA_SQL=$SRC_RADDB/mods-config/sql/main/postgresql/schema.sql
readonly PACKAGES=(freeradius freeradius-postgresql freeradius-utils)
readonly SECRET=testing123 # client "localhost" in Debian's clients.conf

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FR_DIR=${FREERADIUS_DIR:-var/freeradius}
[[ $FR_DIR == /* ]] || FR_DIR=$ROOT/$FR_DIR
FR_DIR=${FR_DIR%/}
AUTH_PORT=${RADIUS_AUTH_PORT:-1812}
ACCT_PORT=${RADIUS_ACCT_PORT:-1813}
DB_NAME=${RADIUS_DB_NAME:-radius}
DB_USER=${RADIUS_DB_USER:-radius}
DB_PASSWORD=${RADIUS_DB_PASSWORD:-radpass}
export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-postgres}
START_TIMEOUT=${RADIUS_START_TIMEOUT:-15}

RADDB=$FR_DIR/raddb
LOG_DIR=$FR_DIR/log
RUN_DIR=$FR_DIR/run
LOG_FILE=$LOG_DIR/radius.log
STARTUP_LOG=$LOG_DIR/startup.log
PID_FILE=$RUN_DIR/freeradius.pid # ${run_dir}/${name}.pid, name = freeradius
INSTANCE_FILE=$RUN_DIR/instance   # what the running daemon was started with

log() { printf 'freeradius.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

check_port() {
    if ! [[ $2 =~ ^[0-9]{1,5}$ ]] || ((10#$2 < 1 || 10#$2 > 65535)); then
        die "$1 must be a port number, got '$2'"
    fi
}
check_port RADIUS_AUTH_PORT "$AUTH_PORT"
check_port RADIUS_ACCT_PORT "$ACCT_PORT"
AUTH_PORT=$((10#$AUTH_PORT)) ACCT_PORT=$((10#$ACCT_PORT))
[[ $AUTH_PORT != "$ACCT_PORT" ]] || die "RADIUS_AUTH_PORT and RADIUS_ACCT_PORT must differ"
[[ $START_TIMEOUT =~ ^[0-9]+$ ]] || die "RADIUS_START_TIMEOUT must be whole seconds"
# These values end up inside double-quoted strings of the FreeRADIUS configuration.
for setting in FREERADIUS_DIR:FR_DIR RADIUS_DB_NAME:DB_NAME RADIUS_DB_USER:DB_USER \
    RADIUS_DB_PASSWORD:DB_PASSWORD PGHOST:PGHOST PGPORT:PGPORT; do
    value=${setting#*:}
    [[ ${!value} != *[[:space:]\"\$\\\'\{\}]* ]] ||
        die "${setting%%:*} must not contain spaces, quotes, \$, \\ or braces: '${!value}'"
done

# ---------------------------------------------------------------------------------------- install

missing_parts() {
    [[ -x $FREERADIUS_BIN ]] || echo "$FREERADIUS_BIN (package freeradius)"
    [[ -e $SQL_PG_MODULE ]] || echo "$SQL_PG_MODULE (package freeradius-postgresql)"
    command -v radtest >/dev/null || echo "radtest (package freeradius-utils)"
    command -v radclient >/dev/null || echo "radclient (package freeradius-utils)"
}

# The pids of FreeRADIUS daemons running from the system config (/etc), if any.
# (/proc, not pgrep: procps is not in a minimal Debian image.)
system_daemon_pids() {
    local proc pid cmd
    for proc in /proc/[0-9]*; do
        [[ $(readlink "$proc/exe" 2>/dev/null) == "$FREERADIUS_BIN" ]] || continue
        pid=${proc#/proc/}
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        [[ $cmd == *" -d "* && $cmd != *" -d $SRC_RADDB"* ]] && continue
        echo "$pid"
    done
}

cmd_install() {
    local missing
    missing=$(missing_parts)
    if [[ -z $missing ]]; then
        log "FreeRADIUS packages present"
        return 0
    fi
    if ((EUID != 0)); then
        log "missing:"
        printf '    %s\n' "${missing//$'\n'/$'\n    '}" >&2
        log "install them as root with:"
        log "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${PACKAGES[*]}"
        log "(or run: sudo $0 install)"
        exit 1
    fi
    log "installing ${PACKAGES[*]} (missing: $(tr '\n' ';' <<<"$missing"))"

    local before policy_created=
    before=$(system_daemon_pids | tr '\n' ' ')
    # No daemon from the package's postinst: invoke-rc.d asks policy-rc.d, 101 = "not allowed".
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_created=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi

    export DEBIAN_FRONTEND=noninteractive
    local pkg need_update=
    for pkg in "${PACKAGES[@]}"; do
        apt-cache show "$pkg" >/dev/null 2>&1 || need_update=1
    done
    [[ -z $need_update ]] || apt-get update
    if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}"; then
        [[ -z $need_update ]] || die "apt-get install failed"
        log "apt-get install failed, retrying after apt-get update (stale package lists?)"
        apt-get update
        apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    fi

    if [[ -n $policy_created ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    # Belt and braces: stop a system daemon the postinst started anyway (no systemd here).
    local pid
    for pid in $(system_daemon_pids); do
        [[ " $before " == *" $pid "* ]] && continue
        log "stopping the system freeradius (pid $pid) started by the package"
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
    done

    missing=$(missing_parts)
    [[ -z $missing ]] || die "still missing after install: $missing"
    log "installed"
}

# ---------------------------------------------------------------------------------------- db

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

cmd_db() {
    command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"
    [[ -r $SCHEMA_SQL ]] || die "cannot read $SCHEMA_SQL (run: $0 install, as root)"
    local vars=(-v "db=$DB_NAME" -v "ruser=$DB_USER" -v "rpass=$DB_PASSWORD")

    # Role and database, serialized against concurrent callers by an advisory lock.
    psql_admin -d postgres "${vars[@]}" <<'SQL'
SELECT pg_advisory_lock(hashtext('scripts/freeradius.sh db')) \gset
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'ruser', :'rpass')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'ruser') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'ruser', :'rpass') \gexec
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'ruser') \gexec
SQL

    # Schema (only if radcheck is absent: schema.sql's CREATE INDEX are not idempotent),
    # grants as in Debian's setup.sql, and the orchestrator's ownership table.
    # /etc/freeradius is 0750 freerad: the file is piped in, never opened by the server.
    {
        cat <<'SQL'
SELECT pg_advisory_lock(hashtext('scripts/freeradius.sh schema')) \gset
SELECT to_regclass('public.radcheck') IS NULL AS need_schema \gset
\if :need_schema
\echo freeradius.sh: loading FreeRADIUS schema.sql into :db
BEGIN;
SQL
        cat "$SCHEMA_SQL"
        cat <<'SQL'

COMMIT;
\endif
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'ruser') \gexec
SELECT format('GRANT SELECT ON %I TO %I', t, :'ruser')
  FROM unnest(ARRAY['radcheck', 'radreply', 'radusergroup', 'radgroupcheck', 'radgroupreply',
                    'nas']) AS t
 WHERE to_regclass(t) IS NOT NULL \gexec
SELECT format('GRANT SELECT, INSERT, UPDATE ON %I TO %I', t, :'ruser')
  FROM unnest(ARRAY['radacct', 'radpostauth', 'nasreload']) AS t
 WHERE to_regclass(t) IS NOT NULL \gexec
SELECT format('GRANT USAGE, SELECT ON SEQUENCE %s TO %I', c.oid::regclass, :'ruser')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname = 'public'
   AND c.relname IN ('radcheck_id_seq', 'radreply_id_seq', 'radusergroup_id_seq',
                     'radgroupcheck_id_seq', 'radgroupreply_id_seq', 'radacct_radacctid_seq',
                     'radpostauth_id_seq', 'nas_id_seq', 'nasreload_id_seq') \gexec
SET client_min_messages = warning;
-- Which RADIUS accounts the orchestrator created (written in the same transaction as the
-- radcheck rows), so a retried saga step can tell its own account from a pre-existing one.
CREATE TABLE IF NOT EXISTS orchestrator_radius_account (
    username    text PRIMARY KEY,
    workflow_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
SQL
    } | psql_admin -d "$DB_NAME" "${vars[@]}"
    log "database $DB_NAME on $PGHOST:$PGPORT ready (FreeRADIUS role $DB_USER)"
}

# ---------------------------------------------------------------------------------------- configure

# replace_line FILE ERE NEW: replace every line matching ERE by NEW; fail if none matched.
replace_line() {
    local file=$1 tmp=$1.tmp
    RE=$2 NEW=$3 awk '$0 ~ ENVIRON["RE"] { print ENVIRON["NEW"]; n++; next } { print }
        END { exit n ? 0 : 3 }' "$file" >"$tmp" ||
        die "configure: no line matching /$2/ in $file (package layout changed?)"
    mv "$tmp" "$file"
}

# strip_listen FILE [AUTH ACCT]: drop every top-level listen {} of the server in FILE; with
# ports, put one auth and one acct listener on 127.0.0.1 in their place.
strip_listen() {
    local file=$1 tmp=$1.tmp
    AUTH=${2:-} ACCT=${3:-} awk '
        function count(s, c,   t) { t = s; return gsub(c, "", t) }
        {
            code = $0; sub(/#.*/, "", code)
            delta = count(code, "[{]") - count(code, "[}]")
            if (skip) { depth += delta; if (depth <= 1) skip = 0; next }
            if (depth == 1 && code ~ /^[[:blank:]]*listen[[:blank:]]*[{]/) {
                removed++; depth += delta; skip = depth > 1; next
            }
            print
            if (depth == 0 && code ~ /^[[:blank:]]*server[ \t]+[^ \t]+[[:blank:]]*[{]/ && ENVIRON["AUTH"] != "") {
                print "listen {\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = " ENVIRON["AUTH"] "\n}"
                print "listen {\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = " ENVIRON["ACCT"] "\n}"
                added++
            }
            depth += delta
        }
        END { exit (depth == 0 && removed > 0 && (ENVIRON["AUTH"] == "" || added == 1)) ? 0 : 3 }
    ' "$file" >"$tmp" || die "configure: could not rewrite the listen sections of $file"
    mv "$tmp" "$file"
}

cmd_configure() {
    [[ -x $FREERADIUS_BIN ]] || die "$FREERADIUS_BIN missing (run: $0 install)"
    [[ -r $SRC_RADDB/radiusd.conf ]] || die "cannot read $SRC_RADDB (run as root)"
    local q='"' new=$FR_DIR/raddb.new
    mkdir -p "$FR_DIR" "$LOG_DIR" "$RUN_DIR"
    chmod 0700 "$FR_DIR" # the copy holds the database password
    rm -rf "$new"
    # Own copy (no freerad ownership), symlinks kept as symlinks.
    cp -R -P --preserve=mode,timestamps "$SRC_RADDB" "$new"

    # radiusd.conf: every path into the private dir; run as the invoking user.
    local conf=$new/radiusd.conf
    # raddbdir is the copy being checked; it becomes $RADDB once `-C` has passed.
    replace_line "$conf" '^[[:blank:]]*raddbdir[[:blank:]]*=' "raddbdir = $q$new$q"
    replace_line "$conf" '^[[:blank:]]*logdir[[:blank:]]*=' "logdir = $q$LOG_DIR$q"
    replace_line "$conf" '^[[:blank:]]*run_dir[[:blank:]]*=' "run_dir = $q$RUN_DIR$q"
    replace_line "$conf" '^[[:blank:]]*pidfile[[:blank:]]*=' "pidfile = $q$PID_FILE$q"
    replace_line "$conf" '^[[:blank:]]*(user|group)[[:blank:]]*=' "#	(user/group removed: runs as the invoking user)"
    replace_line "$conf" '^[[:blank:]]*file[[:blank:]]*=[[:blank:]]*\$\{logdir\}/radius\.log' "	file = $q$LOG_FILE$q"
    replace_line "$conf" '^[[:blank:]]*auth[[:blank:]]*=[[:blank:]]*no' "	auth = yes" # Login OK/incorrect lines
    # No proxying: otherwise the server also opens a proxy socket on 0.0.0.0:<random>.
    replace_line "$conf" '^[[:blank:]]*proxy_requests[[:blank:]]*=' "proxy_requests = no"

    # sql module for PostgreSQL. read_clients stays off: clients come from clients.conf
    # (localhost/testing123); a nas row for 127.0.0.1 would otherwise clash with it.
    local sql=$new/mods-available/sql
    replace_line "$sql" '^[[:blank:]]*dialect[[:blank:]]*=' '	dialect = "postgresql"'
    # shellcheck disable=SC2016 # ${dialect} is expanded by FreeRADIUS, not here
    local driver='rlm_sql_${dialect}'
    replace_line "$sql" '^[[:blank:]]*driver[[:blank:]]*=' "$(printf '\t%s = "%s"\n' \
        driver "$driver" server "$PGHOST" port "$PGPORT" login "$DB_USER" password "$DB_PASSWORD" \
        read_clients no)"
    replace_line "$sql" '^[[:blank:]]*radius_db[[:blank:]]*=' "	radius_db = $q$DB_NAME$q"
    ln -sfn ../mods-available/sql "$new/mods-enabled/sql"
    # radpostauth keeps who logged in, when and the outcome, but never the password tried.
    local queries=$new/mods-config/sql/main/postgresql/queries.conf
    sed -i "s/'%{%{User-Password}:-%{Chap-Password}}'/''/" "$queries"
    ! grep -q 'User-Password}:-' "$queries" || die "configure: could not blank radpostauth.pass"

    # Listen on 127.0.0.1 only. inner-tunnel's test listener (127.0.0.1:18120) is removed: the
    # virtual server stays for EAP, and 18120 is free for a test instance.
    strip_listen "$new/sites-available/default" "$AUTH_PORT" "$ACCT_PORT"
    strip_listen "$new/sites-available/inner-tunnel"

    local out
    if ! out=$("$FREERADIUS_BIN" -C -l stdout -d "$new" 2>&1); then
        printf '%s\n' "$out" | tail -n 30 >&2
        die "configure: freeradius -C -d $new failed"
    fi
    replace_line "$conf" '^raddbdir = ' "raddbdir = $q$RADDB$q"
    rm -rf "$RADDB.old"
    [[ ! -e $RADDB ]] || mv "$RADDB" "$RADDB.old"
    mv "$new" "$RADDB"
    rm -rf "$RADDB.old"
    log "configured $RADDB (127.0.0.1 auth $AUTH_PORT acct $ACCT_PORT, sql $DB_USER@$PGHOST:$PGPORT/$DB_NAME)"
}

# Identity of the configuration: restart a running daemon when this changes.
config_id() {
    (
        cd "$RADDB"
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        find . -type l -printf '%p -> %l\n' | LC_ALL=C sort
    ) | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------------------------------- daemon

wait_gone() { # pid seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# The pid of the daemon running from $RADDB, or nothing.
running_pid() {
    local pid cmd
    [[ -f $PID_FILE ]] || return 0
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$FREERADIUS_BIN" ]] || return 0
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    [[ $cmd == *" -d $RADDB "* ]] && echo "$pid"
    return 0
}

# Is a UDP socket bound to this port (any address)? /proc, as iproute2 may be missing.
udp_port_bound() {
    local hex
    printf -v hex ':%04X' "$1"
    awk -v p="$hex" 'FNR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/udp /proc/net/udp6 2>/dev/null
}

# Does something answer Status-Server on 127.0.0.1:port with our secret?
probe() {
    printf 'Message-Authenticator = 0x00\n' |
        radclient -q -r 1 -t 1 "127.0.0.1:$1" status "$SECRET" >/dev/null 2>&1
}

instance_value() { # key
    [[ -f $INSTANCE_FILE ]] && sed -n "s/^$1=//p" "$INSTANCE_FILE"
    return 0
}

cmd_stop() {
    local pid
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        log "not running ($FR_DIR)"
        rm -f "$PID_FILE" "$INSTANCE_FILE"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
        log "pid $pid ignored SIGTERM for 10 s, killing it"
        kill -9 "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || die "pid $pid does not die"
    fi
    rm -f "$PID_FILE" "$INSTANCE_FILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid auth
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        echo "stopped ($FR_DIR)"
        return 3
    fi
    auth=$(instance_value auth_port)
    if probe "${auth:-$AUTH_PORT}"; then
        echo "running pid $pid on 127.0.0.1 auth ${auth:-?} acct $(instance_value acct_port)," \
            "config $RADDB, log $LOG_FILE"
        [[ $(instance_value config) == "$(config_id)" ]] ||
            echo "note: config changed since start; '$0 start' restarts it"
        return 0
    fi
    echo "pid $pid runs from $RADDB but does not answer Status-Server on ${auth:-$AUTH_PORT}"
    return 1
}

fail_start() {
    log "error: $1"
    local f
    for f in "$STARTUP_LOG" "$LOG_FILE"; do
        [[ -s $f ]] || continue
        log "---- tail of $f"
        tail -n 25 "$f" >&2
    done
    exit 1
}

cmd_start() {
    cmd_install
    cmd_db
    cmd_configure

    local pid id t0 elapsed
    id=$(config_id)
    pid=$(running_pid)
    if [[ -n $pid ]]; then
        if [[ $(instance_value config) == "$id" ]] && probe "$AUTH_PORT"; then
            log "already running (pid $pid) on 127.0.0.1 auth $AUTH_PORT acct $ACCT_PORT"
            return 0
        fi
        log "running pid $pid has another config or does not answer: restarting"
        cmd_stop
    fi
    # Someone else on our ports: freeradius would fail to bind, or worse, a foreign RADIUS
    # server would answer our readiness probe.
    local port
    for port in "$AUTH_PORT" "$ACCT_PORT"; do
        if udp_port_bound "$port"; then
            die "UDP port $port is already in use by another process (RADIUS_AUTH_PORT/RADIUS_ACCT_PORT)"
        fi
    done

    t0=$(date +%s%N)
    # Backgrounds itself once its sockets are bound; fd 9 (our lock) must not leak into it.
    if ! "$FREERADIUS_BIN" -d "$RADDB" </dev/null >"$STARTUP_LOG" 2>&1 9>&-; then
        fail_start "freeradius -d $RADDB failed to start"
    fi
    printf 'auth_port=%s\nacct_port=%s\nconfig=%s\n' "$AUTH_PORT" "$ACCT_PORT" "$id" >"$INSTANCE_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    until probe "$AUTH_PORT"; do
        [[ -n $(running_pid) ]] || fail_start "freeradius exited during start-up"
        ((SECONDS < deadline)) || fail_start "no Status-Server answer on 127.0.0.1:$AUTH_PORT after ${START_TIMEOUT}s"
        sleep 0.2
    done
    elapsed=$((($(date +%s%N) - t0) / 1000000))
    log "started pid $(running_pid) in ${elapsed} ms: 127.0.0.1 auth $AUTH_PORT acct $ACCT_PORT," \
        "secret $SECRET, log $LOG_FILE"
}

# ---------------------------------------------------------------------------------------- main

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

main() {
    local cmd=${1:-}
    case $cmd in
    install) cmd_install ;;
    db) cmd_db ;;
    configure | start | stop | status)
        # One caller at a time per instance dir.
        mkdir -p "$FR_DIR"
        exec 9>"$FR_DIR/.lock"
        flock -w 60 9 || die "$FR_DIR is locked by another $0"
        "cmd_$cmd"
        ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
    esac
}

main "$@"
