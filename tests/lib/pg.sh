# tests/lib/pg.sh -- a private PostgreSQL 15 cluster for tests and the quick start.
#
# Source it, then:
#   pg_start DIR     initialise (if missing) and start a cluster under DIR
#   pg_stop DIR      stop it (a no-op when it is not running)
#
# Layout under DIR: data/ (PGDATA), sock/ (unix socket), log/postgres.log.
# The cluster listens on 127.0.0.1 and on a unix socket inside DIR only, with
# trust authentication, so it never touches the system's cluster on 5432.
#
# Knobs (environment, read by pg_start):
#   PG_PORT    fixed TCP port; default: a free port found at run time
#   PG_FSYNC   "off" (default, fast and throwaway) or "on" (data that must survive)
#   PG_BIN     PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   PG_FIX_PARENTS=1  when a parent of DIR cannot be entered by the postgres
#              user (a checkout under /root, say), chmod o+x it and say so
#
# pg_start exports PGPORT and VEXIL_TEST_PG_URL, a libpq URI for the superuser
# `postgres` on database `postgres`, e.g. postgresql://postgres@127.0.0.1:15432/postgres.
#
# PostgreSQL refuses to run as root, so when called as root every server
# command runs as the `postgres` user (runuser), and DIR is made theirs.  Any
# other user runs the commands as itself.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg_err() { printf 'pg.sh: error: %s\n' "$*" >&2; }
_pg_note() { printf 'pg.sh: %s\n' "$*" >&2; }

# Run a PostgreSQL command as the cluster owner, from inside DIR (so that the
# postgres user never complains about a cwd it cannot read).
_pg_as_owner() {
    local dir=$1
    shift
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
_pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Print a port below the kernel's ephemeral range that nobody listens on.
_pg_pick_port() {
    local i port
    for i in $(seq 1 200); do
        port=$((15000 + RANDOM % 17000))
        if ! _pg_port_busy "$port"; then
            echo "$port"
            return 0
        fi
    done
    _pg_err "no free TCP port found"
    return 1
}

# Make DIR exist, belong to the cluster owner, and be reachable by it.
_pg_prepare_dir() {
    local dir=$1 p
    mkdir -p "$dir/data" "$dir/sock" "$dir/log" || {
        _pg_err "cannot create $dir"
        return 1
    }
    if [ "$(id -u)" -eq 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            _pg_err "user 'postgres' does not exist: install postgresql-15 (apt-get install -y postgresql-15)"
            return 1
        fi
        chown -R postgres:postgres "$dir" || return 1
        # Every parent must be traversable by postgres, or initdb/pg_ctl fail
        # with a confusing "permission denied" deep inside.  Walk from / down,
        # so that the first parent that stops postgres is the one named.
        local parents=() i
        p=$dir
        while [ "$p" != / ] && [ -n "$p" ]; do
            p=$(dirname "$p")
            parents=("$p" "${parents[@]}")
        done
        for ((i = 0; i < ${#parents[@]}; i++)); do
            p=${parents[$i]}
            runuser -u postgres -- test -x "$p" && continue
            if [ "${PG_FIX_PARENTS:-}" = 1 ] && chmod o+x "$p" &&
                runuser -u postgres -- test -x "$p"; then
                _pg_note "made $p enterable by others (chmod o+x: no listing, no reading) so that the postgres user can reach $dir"
                continue
            fi
            _pg_err "user postgres cannot enter $p (a parent of $dir);" \
                "fix with: chmod o+x '$p', or use a directory elsewhere"
            return 1
        done
    fi
    chmod 700 "$dir" "$dir/data" || return 1
    chmod 755 "$dir/sock" || return 1
}

# Write the settings this cluster runs with; included from postgresql.conf so
# they are rewritten on every start (the port may change between runs).
_pg_write_conf() {
    local dir=$1 port=$2 fsync=$3 conf
    conf="$dir/data/vexil.conf"
    {
        echo "# written by tests/lib/pg.sh on every start"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '${dir//\'/\'\'}/sock'"
        echo "max_connections = 300"
        echo "fsync = $fsync"
        if [ "$fsync" = off ]; then
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
        echo "log_min_messages = warning"
        echo "log_line_prefix = '%m [%p] '"
    } >"$conf" || return 1
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$conf"
    return 0
}

_pg_initdb() {
    local dir=$1 fsync=$2 data="$1/data" out
    local -a extra=()
    [ "$fsync" = off ] && extra+=(--no-sync)
    # A data directory without PG_VERSION is the wreck of an interrupted
    # initdb: it holds nothing worth keeping.
    if [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
        _pg_note "removing incomplete cluster in $data"
        find "$data" -mindepth 1 -delete || return 1
    fi
    if ! out=$(_pg_as_owner "$dir" "$PG_BIN/initdb" -D "$data" -U postgres \
        --auth-local=trust --auth-host=trust -E UTF8 --locale=C.UTF-8 "${extra[@]}" 2>&1); then
        printf '%s\n' "$out" >&2
        _pg_err "initdb failed in $data"
        return 1
    fi
    echo "include_if_exists = 'vexil.conf'" >>"$data/postgresql.conf" || return 1
}

# Print the port of the postmaster running on DATA (line 4 of postmaster.pid)
# once it answers; fail (status 1) when none runs.  A postmaster that lives but
# never answers is an error (status 2): starting a second one would not work.
_pg_running_port() {
    local data=$1 dir port i
    dir=$(dirname "$data")
    [ -f "$data/postmaster.pid" ] || return 1
    for i in $(seq 1 20); do
        _pg_as_owner "$dir" "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 1
        port=$(sed -n 4p "$data/postmaster.pid")
        if [ -n "$port" ] && _pg_as_owner "$dir" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
            echo "$port"
            return 0
        fi
        sleep 0.5
    done
    _pg_err "a postmaster (pid $(head -n 1 "$data/postmaster.pid")) runs on $data but does not answer on" \
        "127.0.0.1:${port:-?}; see $dir/log/postgres.log, stop it with pg_stop $dir"
    return 2
}

_pg_export() {
    local port=$1
    export PGPORT=$port
    export VEXIL_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

pg_start() {
    local dir=${1:-}
    if [ -z "$dir" ]; then
        _pg_err "usage: pg_start DIR"
        return 2
    fi
    if [ ! -x "$PG_BIN/pg_ctl" ]; then
        _pg_err "$PG_BIN/pg_ctl not found: install postgresql-15 (apt-get install -y postgresql-15)"
        return 1
    fi
    mkdir -p "$dir" && dir=$(cd "$dir" && pwd -P) || {
        _pg_err "cannot use directory $1"
        return 1
    }
    local data="$dir/data" fsync=${PG_FSYNC:-off} port attempt running
    case $fsync in on | off) ;; *)
        _pg_err "PG_FSYNC must be on or off, not '$fsync'"
        return 2
        ;;
    esac

    _pg_prepare_dir "$dir" || return 1

    local rc=0
    running=$(_pg_running_port "$data") || rc=$?
    case $rc in
    0) ;;
    1) running= ;;
    *) return 1 ;;
    esac
    if [ -n "$running" ]; then
        if [ -n "${PG_PORT:-}" ] && [ "$running" != "$PG_PORT" ]; then
            _pg_err "cluster in $data already runs on port $running, not $PG_PORT; stop it first (pg_stop $dir)"
            return 1
        fi
        _pg_note "reusing cluster already running in $data on port $running"
        _pg_export "$running"
        return 0
    fi

    if [ ! -f "$data/PG_VERSION" ]; then
        _pg_initdb "$dir" "$fsync" || return 1
    elif [ "$(cat "$data/PG_VERSION")" != 15 ]; then
        _pg_err "$data holds a PostgreSQL $(cat "$data/PG_VERSION") cluster, expected 15"
        return 1
    fi

    for attempt in 1 2 3 4 5; do
        if [ -n "${PG_PORT:-}" ]; then
            port=$PG_PORT
            if _pg_port_busy "$port"; then
                _pg_err "port $port on 127.0.0.1 is already in use by another program; choose another port"
                return 1
            fi
        else
            port=$(_pg_pick_port) || return 1
        fi
        _pg_write_conf "$dir" "$port" "$fsync" || return 1
        : >"$dir/log/postgres.log"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/log/postgres.log"
        if _pg_as_owner "$dir" "$PG_BIN/pg_ctl" -D "$data" -l "$dir/log/postgres.log" \
            -w -t 60 start >/dev/null 2>&1; then
            if _pg_as_owner "$dir" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 10; then
                _pg_export "$port"
                return 0
            fi
            _pg_err "PostgreSQL started but does not answer on 127.0.0.1:$port"
            pg_stop "$dir"
            return 1
        fi
        # Someone took the port between the check and the bind: try another.
        if [ -z "${PG_PORT:-}" ] && grep -q 'could not bind\|Address already in use' "$dir/log/postgres.log"; then
            _pg_note "port $port was taken, retrying (attempt $attempt)"
            continue
        fi
        break
    done
    _pg_err "PostgreSQL failed to start in $data; last lines of $dir/log/postgres.log:"
    tail -n 20 "$dir/log/postgres.log" >&2
    return 1
}

pg_stop() {
    local dir=${1:-}
    if [ -z "$dir" ]; then
        _pg_err "usage: pg_stop DIR"
        return 2
    fi
    [ -d "$dir/data" ] || return 0
    dir=$(cd "$dir" && pwd -P) || return 0
    local data="$dir/data"
    [ -f "$data/postmaster.pid" ] || return 0
    if ! _pg_as_owner "$dir" "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        return 0 # a stale pid file: nothing runs
    fi
    if _pg_as_owner "$dir" "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1; then
        return 0
    fi
    _pg_note "fast shutdown timed out, forcing an immediate one"
    _pg_as_owner "$dir" "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || {
        _pg_err "could not stop the cluster in $data"
        return 1
    }
}

# A throwaway cluster for one run: pg_start_throwaway NAME makes a fresh
# directory /tmp/NAME.XXXXXX (enterable by postgres), starts a cluster there
# with fsync off and remembers it in PG_TMP; pg_stop_throwaway stops it and
# removes the directory (a no-op when none runs, so it suits an EXIT trap).
PG_TMP=
pg_start_throwaway() {
    PG_TMP=$(mktemp -d "/tmp/${1:-vexil-pg}.XXXXXX") || return 1
    chmod 755 "$PG_TMP" # the postgres user must be able to enter it
    PG_FSYNC=off pg_start "$PG_TMP/pg"
}

pg_stop_throwaway() {
    if [ -n "$PG_TMP" ]; then
        pg_stop "$PG_TMP/pg" || true
        rm -rf "$PG_TMP"
        PG_TMP=
    fi
}
