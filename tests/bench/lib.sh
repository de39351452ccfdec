# shellcheck shell=bash
# tests/bench/lib.sh -- shared set-up for the benchmarks (sourced, not run).
#
# Why: throughput.sh and propagation.sh need the same throwaway world -- a
# release build of vexil, the two helper programs, a private PostgreSQL, a
# migrated database, an admin token, running servers, 100 flags -- and the same
# guarantee that all of it disappears afterwards, whatever happens.
#
# How: bench_init makes one work directory under /tmp and installs a trap; every
# process we start is recorded (bench_spawn) and stopped by its own pid in the
# trap; PostgreSQL comes from tests/lib/pg.sh (pg_start/pg_stop), which keeps
# it on 127.0.0.1 with trust auth.  Every wait is bounded.
#
# Knobs (environment):
#   BENCH_BUILD_DIR  meson build directory (default: <repo>/build/bench)
#   BENCH_SKIP_BUILD 1 = use the existing build as is
#   BENCH_MESON_ARGS extra `meson setup` arguments, split on spaces (e.g.
#                    -Dwerror=false while a warning breaks the release build)
#   BENCH_KEEP       1 = keep the work directory (logs) after the run
#   BENCH_FLAGS      flags to create (default 100)

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
BENCH_ROOT=$(cd "$BENCH_DIR/../.." && pwd -P)
BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-$BENCH_ROOT/build/bench}
# The wrk load of the scripts that use it (throughput.sh, hang.sh).
DURATION=${BENCH_DURATION:-10}
REPEAT=${BENCH_REPEAT:-3}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
BENCH_PIDS=()
BENCH_WORK=
BENCH_PG_DIR=

bench_log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() {
    printf '[bench] error: %s\n' "$*" >&2
    exit 1
}

bench_cleanup() {
    local pid i
    set +e # clean up everything, whatever fails
    trap - EXIT INT TERM
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    BENCH_PIDS=()
    if [ -n "$BENCH_PG_DIR" ]; then
        pg_stop "$BENCH_PG_DIR" || true
    fi
    if [ -n "$BENCH_WORK" ] && [ -d "$BENCH_WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            bench_log "kept $BENCH_WORK"
        else
            rm -rf "$BENCH_WORK"
        fi
    fi
}

bench_init() {
    BENCH_WORK=$(mktemp -d /tmp/vexil-bench.XXXXXX) || bench_die "mktemp failed"
    chmod 711 "$BENCH_WORK" # the postgres user must be able to enter it
    mkdir -p "$BENCH_WORK/bin" "$BENCH_WORK/log"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local t
    for t in curl wrk cc pkg-config meson ninja psql; do
        command -v "$t" >/dev/null || bench_die "$t not found (apt-get install -y wrk curl gcc pkg-config meson ninja-build postgresql-15 libmicrohttpd-dev)"
    done
}

# Raise the descriptor limit of this shell (and so of its children) to at
# least $1, or fail.
bench_raise_nofile() {
    local want=$1 hard
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
        ulimit -Hn "$want" 2>/dev/null || bench_die "hard RLIMIT_NOFILE is $hard, need $want (raise it, or lower BENCH_CLIENTS)"
    fi
    ulimit -Sn "$want" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" || bench_die "cannot raise ulimit -n to $want"
}

# A TCP port on 127.0.0.1 that nobody listens on, below the ephemeral range.
bench_free_port() {
    local i port
    for i in $(seq 1 200); do
        port=$((15000 + RANDOM % 17000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    bench_die "no free TCP port"
}

# bench_spawn LOGFILE CMD ARGS... : start in the background, remember the pid in BENCH_LAST_PID.
bench_spawn() {
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
}

# bench_stop PID : stop one process we started (TERM, then KILL after 5 s).
bench_stop() {
    local pid=$1 i keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${BENCH_PIDS[@]}"; do
        [ "$p" = "$pid" ] || keep+=("$p")
    done
    BENCH_PIDS=("${keep[@]}")
}

# bench_wait_http URL PID [SECONDS] : wait until URL answers 200 while PID lives.
bench_wait_http() {
    local url=$1 pid=$2 secs=${3:-30} i
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

bench_build_vexil() {
    local -a extra
    read -r -a extra <<<"${BENCH_MESON_ARGS:-}"
    if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
        bench_log "building vexil (release) in $BENCH_BUILD_DIR"
        if [ -f "$BENCH_BUILD_DIR/build.ninja" ]; then
            meson setup --reconfigure "$BENCH_BUILD_DIR" "$BENCH_ROOT" --buildtype=release "${extra[@]}" \
                >"$BENCH_WORK/log/meson.log" 2>&1
        else
            meson setup "$BENCH_BUILD_DIR" "$BENCH_ROOT" --buildtype=release "${extra[@]}" \
                >"$BENCH_WORK/log/meson.log" 2>&1
        fi || {
            tail -n 30 "$BENCH_WORK/log/meson.log" >&2
            bench_die "meson setup failed"
        }
        ninja -C "$BENCH_BUILD_DIR" vexil >"$BENCH_WORK/log/ninja.log" 2>&1 || {
            tail -n 30 "$BENCH_WORK/log/ninja.log" >&2
            bench_die "ninja failed"
        }
    fi
    VEXIL=$BENCH_BUILD_DIR/vexil
    [ -x "$VEXIL" ] || bench_die "$VEXIL not built"
}

bench_build_tools() {
    local flags=(-O2 -Wall -Wextra -Werror)
    bench_log "building ref_server and propagation"
    # shellcheck disable=SC2046
    cc "${flags[@]}" "$BENCH_DIR/ref_server.c" -o "$BENCH_WORK/bin/ref_server" \
        $(pkg-config --cflags --libs libmicrohttpd) -lpthread || bench_die "ref_server does not build"
    cc "${flags[@]}" "$BENCH_DIR/propagation.c" -o "$BENCH_WORK/bin/propagation" -lm ||
        bench_die "propagation does not build"
    # shellcheck disable=SC2034 # used by the scripts that source this file
    REF_SERVER=$BENCH_WORK/bin/ref_server
    # shellcheck disable=SC2034
    PROPAGATION=$BENCH_WORK/bin/propagation
}

# Start a private PostgreSQL and create database vexil_bench; sets BENCH_DB_URL.
bench_start_pg() {
    [ -f "$BENCH_ROOT/tests/lib/pg.sh" ] || bench_die "tests/lib/pg.sh is missing"
    # shellcheck source=../lib/pg.sh
    . "$BENCH_ROOT/tests/lib/pg.sh"
    BENCH_PG_DIR=$BENCH_WORK/pg
    bench_log "starting PostgreSQL"
    pg_start "$BENCH_PG_DIR" || bench_die "pg_start failed"
    psql "$VEXIL_TEST_PG_URL" -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE vexil_bench' >/dev/null ||
        bench_die "cannot create the database"
    BENCH_DB_URL=${VEXIL_TEST_PG_URL%/*}/vexil_bench
}

# Migrate and make an admin token; sets BENCH_TOKEN.
bench_vexil_prepare() {
    "$VEXIL" migrate --database "$BENCH_DB_URL" >"$BENCH_WORK/log/migrate.log" 2>&1 || {
        cat "$BENCH_WORK/log/migrate.log" >&2
        bench_die "vexil migrate failed"
    }
    BENCH_TOKEN=$("$VEXIL" token create --name bench --role admin --database "$BENCH_DB_URL" \
        2>"$BENCH_WORK/log/token.log") || {
        cat "$BENCH_WORK/log/token.log" >&2
        bench_die "vexil token create failed"
    }
    BENCH_TOKEN=$(printf '%s' "$BENCH_TOKEN" | head -n 1 | tr -d '[:space:]')
    [ -n "$BENCH_TOKEN" ] || bench_die "vexil token create printed no secret"
}

# bench_start_vexil NAME PORT [extra serve args...] : sets BENCH_LAST_PID.
bench_start_vexil() {
    local name=$1 port=$2
    shift 2
    bench_spawn "$BENCH_WORK/log/$name.log" "$VEXIL" serve --listen "127.0.0.1:$port" \
        --database "$BENCH_DB_URL" "$@"
    bench_wait_http "http://127.0.0.1:$port/readyz" "$BENCH_LAST_PID" 30 || {
        tail -n 20 "$BENCH_WORK/log/$name.log" >&2
        bench_die "vexil $name did not become ready on port $port"
    }
}

# bench_start_ref PORT [extra args...] : sets BENCH_LAST_PID.
bench_start_ref() {
    local port=$1
    shift
    bench_spawn "$BENCH_WORK/log/ref_server.log" "$REF_SERVER" --port "$port" "$@"
    bench_wait_http "http://127.0.0.1:$port/healthz" "$BENCH_LAST_PID" 10 || {
        cat "$BENCH_WORK/log/ref_server.log" >&2
        bench_die "ref_server did not start on port $port"
    }
}

# bench_create_flags PORT : BENCH_FLAGS flags flag_000..., enabled at 50 %.
bench_create_flags() {
    local port=$1 n=${BENCH_FLAGS:-100} i name code
    bench_log "creating $n flags"
    for i in $(seq 0 $((n - 1))); do
        name=$(printf 'flag_%03d' "$i")
        code=$(curl -s -o "$BENCH_WORK/log/create.out" -w '%{http_code}' -m 10 \
            -X POST -H "Authorization: Bearer $BENCH_TOKEN" -H 'Content-Type: application/json' \
            --data "{\"name\":\"$name\",\"enabled\":true,\"percentage\":50}" \
            "http://127.0.0.1:$port/api/flags")
        [ "$code" = 201 ] || {
            cat "$BENCH_WORK/log/create.out" >&2
            bench_die "POST /api/flags $name answered $code"
        }
    done
}

# bench_etag PORT : the current ETag of GET /flags, quotes included ("N").
bench_etag() {
    curl -s -m 10 -o /dev/null -D - -H "Authorization: Bearer $BENCH_TOKEN" \
        "http://127.0.0.1:$1/flags" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p'
}

# One line on how busy the machine is (load average, CPU pressure): figures
# taken while other work competes for the CPUs are not comparable.
bench_machine_note() {
    local psi=
    [ -r /proc/pressure/cpu ] && psi=$(awk '/^some/ { sub("avg60=", "", $3); print $3 }' /proc/pressure/cpu)
    printf 'machine: %s CPUs, load average %s, CPU pressure (some, avg60) %s%%\n' "$(nproc)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "${psi:-n/a}"
}

# awk helpers for figures
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
bench_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
bench_verdict() { if "$@"; then echo ok; else echo MISSED; fi; }
