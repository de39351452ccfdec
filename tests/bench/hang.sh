#!/usr/bin/env bash
# tests/bench/hang.sh -- reads while the database hangs.
#
# Why: vexil runs every database call (writes, history, tokens) on a few
# database threads while the HTTP request waits suspended, so the HTTP
# threads that answer GET /flags?user= from the in-memory snapshot never wait
# on PostgreSQL.  This measures that: per-user read throughput and p99 while
# writers are stuck on the database, against the same load with no writer.
# Targets: reads during the hang >= 0.9 x the baseline's requests/s, and p99
# within 1.5 x the baseline's.
#
# How: release build, private PostgreSQL, migrate, admin token, `vexil serve`
# (explicit --threads, --db-threads and timeouts, printed), 100 flags at 50 %.
# vexil reaches PostgreSQL through blackhole_proxy.py, a loopback TCP relay,
# in every run (so the baseline pays for the relay too).  Then, BENCH_REPEAT
# times, one after the other:
#   A  baseline: wrk GET /flags?user=<new id per request> (wrk.lua), no writer;
#   B  lock: a psql session holds a row lock on flag_000 (BEGIN; SELECT ...
#      FOR UPDATE; pg_sleep), and BENCH_WRITERS curl loops (default: database
#      threads + HTTP threads, so that if writes ran on the HTTP threads every
#      one of them would be blocked) keep sending PATCH /api/flags/flag_000,
#      each of which waits for the lock until --db-lock-timeout and answers
#      503 with Retry-After (docs/api.md §5); the same wrk run meanwhile;
#   C  black hole: the same writers while the relay forwards nothing (vexil's
#      connections are open but silent, new ones are accepted and ignored),
#      so statements end at vexil's client-side deadline and reconnects at
#      --db-connect-timeout; the same wrk run meanwhile.
# Every writer's answer is recorded (status, time, Retry-After) to show that
# the writers were stuck and were answered within their bounds.  It prints
# the medians, the ratios to A with the targets, and what the writers got.
# Everything is on 127.0.0.1 and is removed on exit (lib.sh's trap; the
# lock-holding session is ended with pg_terminate_backend).
#
# Usage: tests/bench/hang.sh
#   BENCH_DURATION=10 BENCH_REPEAT=3 BENCH_CONNECTIONS=64 BENCH_THREADS=2
#   BENCH_HANG_MODES="lock blackhole"   which hang runs (B, C) to make
#   BENCH_HTTP_THREADS=2 BENCH_DB_THREADS=4 BENCH_WRITERS=<http + db threads>
#   BENCH_LOCK_TIMEOUT_MS=2000 BENCH_STATEMENT_TIMEOUT_MS=5000 BENCH_CONNECT_TIMEOUT_S=3
#   and the knobs of lib.sh (BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_KEEP, BENCH_FLAGS).
set -euo pipefail

. "$(dirname "$0")/lib.sh"

MODES=${BENCH_HANG_MODES:-lock blackhole}
HTTP_THREADS=${BENCH_HTTP_THREADS:-2}
DB_THREADS=${BENCH_DB_THREADS:-4}
WRITERS=${BENCH_WRITERS:-$((HTTP_THREADS + DB_THREADS))}
LOCK_MS=${BENCH_LOCK_TIMEOUT_MS:-2000}
STMT_MS=${BENCH_STATEMENT_TIMEOUT_MS:-5000}
CONNECT_S=${BENCH_CONNECT_TIMEOUT_S:-3}
HOLDER_APP=vexil_bench_holder

for v in DURATION REPEAT CONNS THREADS HTTP_THREADS DB_THREADS WRITERS LOCK_MS STMT_MS CONNECT_S; do
    case ${!v} in '' | *[!0-9]*) bench_die "$v must be a whole number" ;; esac
done
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 300 ]; then bench_die "BENCH_DURATION must be 1..300"; fi
if [ "$REPEAT" -lt 1 ] || [ "$REPEAT" -gt 20 ]; then bench_die "BENCH_REPEAT must be 1..20"; fi
if [ "$WRITERS" -lt 1 ] || [ "$WRITERS" -gt 64 ]; then bench_die "BENCH_WRITERS must be 1..64"; fi
for m in $MODES; do
    case $m in lock | blackhole) ;; *) bench_die "BENCH_HANG_MODES: unknown mode '$m' (lock, blackhole)" ;; esac
done

# The longest one write may take, by vexil's own bounds: one database call
# ends within PER_CALL ms, and a writer may first wait for a database thread
# behind the other writers' calls (ceil(WRITERS / DB_THREADS) calls in all).
# Lock: the wait for the row lock.  Black hole: a statement ends at the
# client-side deadline (statement timeout + 1 s, server/store_conn.c), and
# the transaction then reconnects once (up to the connect timeout,
# server/store.c).  Plus 1 s of slack for the machine.
per_call_ms() {
    case $1 in
    lock) echo "$LOCK_MS" ;;
    blackhole) echo $((STMT_MS + 1000 + CONNECT_S * 1000)) ;;
    esac
}
write_bound_ms() { echo $(($(per_call_ms "$1") * ((WRITERS + DB_THREADS - 1) / DB_THREADS) + 1000)); }

bench_init
MACHINE_BEFORE=$(bench_machine_note)
bench_raise_nofile 4096
command -v python3 >/dev/null || bench_die "python3 not found (the black-hole relay)"
bench_build_vexil
bench_start_pg

# The relay in front of PostgreSQL, for vexil serve only (migrate, token
# create and the lock holder talk to PostgreSQL directly).
PG_DIRECT_PORT=$PGPORT
PROXY_PORT=$(bench_free_port)
bench_spawn "$BENCH_WORK/log/proxy.log" python3 "$BENCH_DIR/blackhole_proxy.py" --port "$PROXY_PORT" \
    --target-port "$PG_DIRECT_PORT" --max-seconds $((REPEAT * (3 * DURATION + 120) + 600))
PROXY_PID=$BENCH_LAST_PID
for _ in $(seq 1 50); do
    grep -q ready "$BENCH_WORK/log/proxy.log" 2>/dev/null && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q ready "$BENCH_WORK/log/proxy.log" || {
    cat "$BENCH_WORK/log/proxy.log" >&2
    bench_die "the relay did not start"
}

bench_vexil_prepare
DIRECT_DB_URL=$BENCH_DB_URL
PROXY_DB_URL="postgresql://postgres@127.0.0.1:$PROXY_PORT/vexil_bench"
VPORT=$(bench_free_port)
SERVE_ARGS=(--max-connections 1000 --threads "$HTTP_THREADS" --db-threads "$DB_THREADS"
    --db-lock-timeout "$LOCK_MS" --db-statement-timeout "$STMT_MS" --db-connect-timeout "$CONNECT_S")
BENCH_DB_URL=$PROXY_DB_URL
bench_start_vexil vexil "$VPORT" "${SERVE_ARGS[@]}"
BENCH_DB_URL=$DIRECT_DB_URL
VPID=$BENCH_LAST_PID
bench_create_flags "$VPORT"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" \
    "http://127.0.0.1:$VPORT/flags?user=u1_100000")
[ "$code" = 200 ] || bench_die "GET /flags?user= answered $code"

metric() { # metric NAME : its value in vexil's /metrics, or "?"
    curl -s -m 2 "http://127.0.0.1:$VPORT/metrics" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "?" }'
}

# run_wrk KEY : one wrk run on the per-user read; appends its BENCH line to
# $BENCH_WORK/log/KEY.lines.
run_wrk() {
    local key=$1 out line errs
    bench_log "wrk ${DURATION}s: $key"
    out=$(BENCH_PATH=/flags BENCH_VARY_USER=1 BENCH_TOKEN=$BENCH_TOKEN \
        timeout $((DURATION + 30)) wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --latency \
        -s "$BENCH_DIR/wrk.lua" "http://127.0.0.1:$VPORT") || bench_die "wrk failed: $out"
    printf '%s\n' "$out" >>"$BENCH_WORK/log/wrk-$key.txt"
    line=$(printf '%s\n' "$out" | grep '^BENCH ') || bench_die "no BENCH line from wrk"
    echo "$line" >>"$BENCH_WORK/log/$key.lines"
    errs=$(printf '%s' "$line" | awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^err_/) s += kv[2] } print s + 0 }')
    bench_log "  $(printf '%s' "$line" | cut -d' ' -f4-7) errors=$errs"
}

# One writer: PATCH flag_000 until the stop file exists; one line per answer:
# "<status> <seconds> <Retry-After>" ("000" when curl got no answer).  A
# write refused at once (the database is known to be away) is followed by a
# quarter-second pause, as a client that honours Retry-After pauses (longer):
# the writers stand for clients stuck on the database, not for a flood of
# curl processes competing with the server for the two cores.
writer_loop() {
    local out=$1 stop=$2 bound=$3 line
    trap - EXIT
    while [ ! -e "$stop" ]; do
        line=$(curl -s -o /dev/null -m "$bound" -X PATCH -H "Authorization: Bearer $BENCH_TOKEN" \
            -H 'Content-Type: application/json' --data '{"description":"hang bench"}' \
            -w '%{http_code} %{time_total} %header{retry-after}' \
            "http://127.0.0.1:$VPORT/api/flags/flag_000") || line="000 $bound -"
        echo "$line" >>"$out"
        case $line in
        "503 0."[0-4]*) sleep 0.25 ;;
        esac
    done
}

WRITER_PIDS=()
start_writers() { # start_writers MODE RUN
    local mode=$1 run=$2 i bound
    bound=$(($(write_bound_ms "$mode") / 1000 + 10)) # curl's own limit, above the target
    rm -f "$BENCH_WORK/stop"
    WRITER_PIDS=()
    for i in $(seq 1 "$WRITERS"); do
        bench_spawn "$BENCH_WORK/log/writer-$i.log" writer_loop "$BENCH_WORK/log/writes-$mode-$run.txt" \
            "$BENCH_WORK/stop" "$bound"
        WRITER_PIDS+=("$BENCH_LAST_PID")
    done
}
stop_writers() { # each finishes its current write (bounded by curl -m), then stops
    local pid i
    touch "$BENCH_WORK/stop"
    for pid in "${WRITER_PIDS[@]}"; do
        for i in $(seq 1 600); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        bench_stop "$pid"
    done
    WRITER_PIDS=()
}

psql_direct() { psql "$DIRECT_DB_URL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

HOLDER_PID=
hold_lock() {
    local i
    bench_spawn "$BENCH_WORK/log/holder.log" env PGAPPNAME=$HOLDER_APP psql "$DIRECT_DB_URL" -X -q \
        -v ON_ERROR_STOP=1 -c "BEGIN" -c "SELECT 1 FROM flags WHERE name = 'flag_000' FOR UPDATE" \
        -c "SELECT pg_sleep($((DURATION + 120)))" -c "ROLLBACK"
    HOLDER_PID=$BENCH_LAST_PID
    # Held once another session cannot take it.
    for i in $(seq 1 100); do
        if ! psql_direct -c "SELECT 1 FROM flags WHERE name = 'flag_000' FOR UPDATE NOWAIT" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$HOLDER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$BENCH_WORK/log/holder.log" >&2
    bench_die "the row lock on flag_000 was not taken"
}
release_lock() {
    psql_direct -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$HOLDER_APP'" \
        >/dev/null || true
    [ -z "$HOLDER_PID" ] || bench_stop "$HOLDER_PID"
    HOLDER_PID=
}

# Until vexil says its database is up again and no call is pending (after
# the black hole), at most 60 s.
wait_db_settled() {
    local i
    for i in $(seq 1 600); do
        [ "$(metric vexil_database_up)" = 1 ] && [ "$(metric vexil_database_busy)" = 0 ] && return 0
        sleep 0.1
    done
    bench_log "warning: vexil did not report its database up and idle within 60 s"
}

# hang_run MODE RUN : writers stuck on the database during one wrk run.
hang_run() {
    local mode=$1 run=$2
    case $mode in
    lock) hold_lock ;;
    blackhole) kill -USR1 "$PROXY_PID" ;;
    esac
    start_writers "$mode" "$run"
    sleep 1 # the writers' first calls are waiting
    echo "$(metric vexil_database_busy) $(metric vexil_database_queued) $(metric vexil_database_up)" \
        >>"$BENCH_WORK/log/gauges-$mode.txt"
    run_wrk "$mode"
    echo "$(metric vexil_database_busy) $(metric vexil_database_queued) $(metric vexil_database_up)" \
        >>"$BENCH_WORK/log/gauges-$mode.txt"
    # The writes under way finish inside the hang (and are counted); then it ends.
    stop_writers
    case $mode in
    lock) release_lock ;;
    blackhole) kill -USR2 "$PROXY_PID" ;;
    esac
    kill -0 "$VPID" 2>/dev/null || bench_die "vexil exited during the $mode run (see its log with BENCH_KEEP=1)"
    wait_db_settled
}

for rep in $(seq 1 "$REPEAT"); do
    bench_log "repeat $rep/$REPEAT"
    run_wrk base
    for m in $MODES; do
        hang_run "$m" "$rep"
    done
done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$BENCH_WORK/log/$2.lines"; } # field NAME KEY: one per run
med() { field "$1" "$2" | median; }
errsum() { awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^err_/) s += kv[2] } } END { print s + 0 }' "$BENCH_WORK/log/$1.lines"; }
row() { # row KEY LABEL
    awk -v l="$2" -v rps="$(med rps "$1")" -v p50="$(med p50_us "$1")" -v p99="$(med p99_us "$1")" \
        -v mx="$(med max_us "$1")" -v e="$(errsum "$1")" -v all="$(field rps "$1" | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }')" \
        'BEGIN { printf "  %-34s %9.0f %8.2f %8.2f %8.2f %7d   %s\n", l, rps, p50 / 1000, p99 / 1000, mx / 1000, e, all }'
}
# Per-repeat ratios hang/base of FIELD, and their median.
# Every write was answered 503 with Retry-After, none later than its bound.
writes_ok() { [ "$1" -gt 0 ] && [ "$2" = "$1" ] && [ "$3" = 0 ]; }
paired() { # paired FIELD KEY
    paste -d' ' <(field "$1" "$2") <(field "$1" base) | awk '$2 > 0 { printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2 }'
}

echo
echo "hang: wrk -t$THREADS -c$CONNS -d${DURATION}s GET /flags?user=<new user per request>, $REPEAT x (median), on 127.0.0.1, $(nproc) CPUs shared by wrk, writers and the server"
echo "  vexil serve ${SERVE_ARGS[*]} (database through the relay in every run)"
echo "  writers: $WRITERS curl loops of PATCH /api/flags/flag_000 (= --threads $HTTP_THREADS + --db-threads $DB_THREADS unless BENCH_WRITERS)"
printf '  %-34s %9s %8s %8s %8s %7s   %s\n' "" "req/s" "p50 ms" "p99 ms" "max ms" "errors" "req/s of each run"
row base "A baseline, no writer"
for m in $MODES; do
    case $m in
    lock) row lock "B writers stuck on a row lock" ;;
    blackhole) row blackhole "C database black-holed" ;;
    esac
done
echo "  before: $MACHINE_BEFORE"
echo "  after:  $(bench_machine_note)"

echo
RESULT="RESULT base_rps=$(med rps base) base_p99_us=$(med p99_us base)"
for m in $MODES; do
    r_rps=$(bench_ratio "$(med rps "$m")" "$(med rps base)")
    r_p99=$(bench_ratio "$(med p99_us "$m")" "$(med p99_us base)")
    # The writers' answers over all runs of this mode.
    cat "$BENCH_WORK"/log/writes-"$m"-*.txt >"$BENCH_WORK/log/writes-$m.txt" 2>/dev/null || true
    bound=$(write_bound_ms "$m")
    read -r n nra nother tmax late <<<"$(awk -v b="$bound" '
        { n++; if ($1 == 503) { if ($3 != "" && $3 != "-") nra++ } else other++
          if ($2 > mx) mx = $2; if ($2 * 1000 > b) late++ }
        END { printf "%d %d %d %.2f %d\n", n, nra, other, mx, late }' "$BENCH_WORK/log/writes-$m.txt")"
    tmed=$(awk '{ print $2 }' "$BENCH_WORK/log/writes-$m.txt" | median | awk '{ printf "%.2f", $1 }')
    statuses=$(awk '{ c[$1]++ } END { for (s in c) printf "%s%s x%d", (k++ ? ", " : ""), s, c[s] }' "$BENCH_WORK/log/writes-$m.txt")
    gauges=$(awk '{ if ($1 > b) b = $1; if ($2 > q) q = $2; if ($3 == 0) d++ } END { printf "busy max %d, queued max %d, database_up=0 in %d of %d samples", b, q, d, NR }' \
        "$BENCH_WORK/log/gauges-$m.txt")
    case $m in
    lock) echo "B: a row lock on flag_000 held by another session (--db-lock-timeout $LOCK_MS ms)" ;;
    blackhole) echo "C: the relay to PostgreSQL forwards nothing (--db-statement-timeout $STMT_MS ms, --db-connect-timeout $CONNECT_S s)" ;;
    esac
    printf '  %-52s %6s   target >= 0.90  %s   (each repeat: %s)\n' "reads during the hang / baseline (requests/s)" "$r_rps" \
        "$(bench_verdict bench_le 0.9 "$r_rps")" "$(paired rps "$m")"
    printf '  %-52s %6s   target <= 1.50  %s   (each repeat: %s)\n' "p99 during the hang / baseline" "$r_p99" \
        "$(bench_verdict bench_le "$r_p99" 1.5)" "$(paired p99_us "$m")"
    printf '  %-52s %6s   target 0        %s\n' "read errors during the hang (all runs)" "$(errsum "$m")" \
        "$(bench_verdict [ "$(errsum "$m")" = 0 ])"
    printf '  writes answered: %d (%s); 503 with Retry-After: %d; other: %d\n' "$n" "$statuses" "$nra" "$nother"
    printf '  write time: median %s s, max %s s; over the bound of %.1f s: %d   %s\n' "$tmed" "$tmax" \
        "$(awk -v b="$bound" 'BEGIN { print b / 1000 }')" "$late" \
        "$(bench_verdict writes_ok "$n" "$nra" "$late")"
    echo "  database gauges (1 s into the hang and at its end): $gauges"
    RESULT="$RESULT ${m}_rps=$(med rps "$m") ${m}_p99_us=$(med p99_us "$m") ${m}_ratio_rps=$r_rps ${m}_ratio_p99=$r_p99 ${m}_writes=$n ${m}_writes_503_retry_after=$nra ${m}_write_max_s=$tmax ${m}_writes_late=$late"
done
echo "$RESULT"
