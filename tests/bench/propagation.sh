#!/usr/bin/env bash
# tests/bench/propagation.sh -- how fast a flag change reaches held long-polls.
#
# Why: "turning a flag off reaches every service in well under a second" is
# vexil's main promise (docs/propagation.md, docs/api.md §2).  This measures it with N clients held at
# once, against the ceiling of libmicrohttpd resuming N suspended connections
# (ref_server /hold + /release, same thread pool and per-connection memory as
# vexil), and across two instances sharing one database (LISTEN/NOTIFY path).
#
# How (every step bounded, everything on 127.0.0.1, all removed on exit):
#   1. ceiling: fresh ref_server, propagation tool with N clients on /hold,
#      trigger POST /release; BENCH_ROUNDS rounds.  Twice: held clients get an
#      18-byte answer, then answers as large as vexil's per-user body (the
#      fairer comparison: vexil sends ~1.7 KB to each).
#   2. vexil (set up before step 1, idle during it): release build, private
#      PostgreSQL, migrate, token, 100 flags at 50 %; N clients GET /flags?user=u<i>&wait=60 with If-None-Match of the
#      current version; trigger PATCH /api/flags/flag_000 {"enabled":false}
#      (then true, false, ... in later rounds; each round waits on the version
#      the previous one ended at).
#   3. two instances: vexil B on the same database; one client held on B, the
#      PATCH sent to A; BENCH_PAIR_TRIES tries.
# Targets (N = 10000): every client gets the new value; p99 <= 3 x ceiling p99;
# max < 500 ms; server VmRSS while holding <= 100 MB; two-instance p99 <= 50 ms.
# Latencies are "client has its whole answer" minus "admin has the write's answer".
#
# Usage: tests/bench/propagation.sh
#   BENCH_CLIENTS=10000 BENCH_ROUNDS=3 BENCH_PAIR_TRIES=100
#   BENCH_CEILING_ONLY=1  only step 1 (no PostgreSQL, no vexil)
#   and the knobs of lib.sh (BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_KEEP, BENCH_FLAGS).
set -euo pipefail

. "$(dirname "$0")/lib.sh"

N=${BENCH_CLIENTS:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
PAIR_TRIES=${BENCH_PAIR_TRIES:-100}
CEILING_ONLY=${BENCH_CEILING_ONLY:-0}
for v in N ROUNDS PAIR_TRIES; do
    case ${!v} in '' | *[!0-9]*) bench_die "$v must be a whole number" ;; esac
done
if [ "$N" -lt 1 ] || [ "$N" -gt 50000 ]; then bench_die "BENCH_CLIENTS must be 1..50000"; fi
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 10 ]; then bench_die "BENCH_ROUNDS must be 1..10"; fi
if [ "$PAIR_TRIES" -lt 1 ] || [ "$PAIR_TRIES" -gt 1000 ]; then bench_die "BENCH_PAIR_TRIES must be 1..1000"; fi

bench_init
MACHINE_BEFORE=$(bench_machine_note)
# Each side holds N sockets (the tool and the server are separate processes).
bench_raise_nofile $((N + 1024))
bench_build_tools

# parse RESULT-LINE PREFIX : P_<prefix>_<key>=value for every key=value.
parse() {
    local kv
    for kv in ${1#RESULT }; do
        printf -v "P_$2_${kv%%=*}" '%s' "${kv#*=}"
    done
}
get() { # get PREFIX KEY
    local n="P_$1_$2"
    printf '%s' "${!n:-}"
}

# run_tool PREFIX ARGS... : run the propagation tool, show its report, parse RESULT.
run_tool() {
    local prefix=$1 out
    shift
    out=$(timeout 600 "$PROPAGATION" "$@") || bench_die "propagation tool failed ($prefix): $out"
    printf '%s\n' "$out" | grep -v '^RESULT ' >&2
    parse "$(printf '%s\n' "$out" | grep '^RESULT ')" "$prefix"
}

LIMIT_CONN=$((N + 2000))
LIMIT_HELD=$((N + 1000))

# run_ceiling PREFIX BODYSIZE : a fresh ref_server, N clients on /hold, released
# with answers of BODYSIZE bytes (0: a small 18-byte answer).
run_ceiling() {
    local prefix=$1 size=$2 port pid
    port=$(bench_free_port)
    bench_start_ref "$port" --threads 2 --max-conn "$LIMIT_CONN" --max-held "$LIMIT_HELD" \
        --mem-limit 16384 --idle-timeout 120
    pid=$BENCH_LAST_PID
    bench_log "ceiling: $N clients on ref_server, answers of $size B (0: 18 B), $ROUNDS round(s)"
    run_tool "$prefix" --port "$port" --clients "$N" --rounds "$ROUNDS" --server-pid "$pid" \
        --trigger-path "/release?size=$size" --label "ceiling-body-$size"
    bench_stop "$pid"
}

if [ "$CEILING_ONLY" != 1 ]; then
    bench_build_vexil
    bench_start_pg
    bench_vexil_prepare
    APORT=$(bench_free_port)
    bench_start_vexil vexil-a "$APORT" --max-connections "$LIMIT_CONN" --max-waiters "$LIMIT_HELD" \
        --idle-timeout 120
    APID=$BENCH_LAST_PID
    bench_create_flags "$APORT"
    BODY_USER=$(curl -s -m 10 -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $BENCH_TOKEN" \
        "http://127.0.0.1:$APORT/flags?user=u5000")
else
    BODY_USER=${BENCH_BODY_USER:-1700}
fi

# 1. Ceilings (vexil, if started, sits idle): the small answer of the plain
#    /release, and answers as large as vexil's per-user body.
run_ceiling ceil 0
run_ceiling ceilsz "$BODY_USER"

if [ "$CEILING_ONLY" != 1 ]; then
    # 2. vexil, one instance.
    ETAG=$(bench_etag "$APORT")
    [ -n "$ETAG" ] || bench_die "GET /flags has no ETag"
    bench_log "vexil: $N clients, $ROUNDS round(s), starting at ETag $ETAG"
    run_tool vx --port "$APORT" --clients "$N" --rounds "$ROUNDS" --server-pid "$APID" \
        --path '/flags?user=u{i}&wait=60' --if-none-match "$ETAG" --auth "$BENCH_TOKEN" \
        --trigger-method PATCH --trigger-path /api/flags/flag_000 \
        --trigger-body '{"enabled":false}' --trigger-body '{"enabled":true}' \
        --expect-body '"flag_000":false' --expect-body '' --follow-etag --label vexil

    # 3. Two instances on one database: hold on B, write on A.
    BPORT=$(bench_free_port)
    bench_start_vexil vexil-b "$BPORT" --max-connections 1000 --max-waiters 100 --idle-timeout 120
    ETAG=$(bench_etag "$BPORT")
    bench_log "two instances: hold on B, PATCH on A, $PAIR_TRIES tries"
    run_tool pair --port "$BPORT" --trigger-port "$APORT" --clients 1 --rounds "$PAIR_TRIES" \
        --path '/flags?user=pair&wait=60' --if-none-match "$ETAG" --auth "$BENCH_TOKEN" \
        --trigger-method PATCH --trigger-path /api/flags/flag_001 \
        --trigger-body '{"enabled":false}' --trigger-body '{"enabled":true}' \
        --follow-etag --collect-timeout 5 --hold-timeout 10 --label two-instances
fi

ms() { awk -v v="$1" 'BEGIN { if (v == "" || v == "nan") print "-"; else printf "%.1f", v }'; }
mb() { awk -v v="$1" 'BEGIN { if (v == "" || v < 0) print "-"; else printf "%.1f", v / 1024 }'; }
line() { # line PREFIX LABEL
    printf '  %-28s %13s %8s %8s %8s %8s %9s %10s\n' "$2" "$(get "$1" received)/$(get "$1" clients)" \
        "$(ms "$(get "$1" p50_ms)")" "$(ms "$(get "$1" p90_ms)")" "$(ms "$(get "$1" p99_ms)")" \
        "$(ms "$(get "$1" max_ms)")" "$(mb "$(get "$1" rss_first_kb)")" "$(mb "$(get "$1" rss_kb)")"
}

echo
echo "propagation: $N held clients, $ROUNDS round(s) each; ms from the write's answer (t1) to each client's whole answer"
printf '  %-28s %13s %8s %8s %8s %8s %9s %10s\n' "" received p50 p90 p99 max "RSS MB r0" "RSS MB max"
line ceil "ceiling, 18 B answers"
line ceilsz "ceiling, $BODY_USER B answers"
[ "$CEILING_ONLY" = 1 ] || line vx "vexil"
echo "  before: $MACHINE_BEFORE"
echo "  after:  $(bench_machine_note)"
if [ "$CEILING_ONLY" != 1 ]; then
    echo
    ratio=$(bench_ratio "$(get vx p99_ms)" "$(get ceil p99_ms)")
    ratiosz=$(bench_ratio "$(get vx p99_ms)" "$(get ceilsz p99_ms)")
    rss_mb=$(mb "$(get vx rss_kb)")
    printf '  %-44s %10s   %-18s %s\n' "clients with the new value" \
        "$(get vx received)/$(get vx clients)" "target all" \
        "$(bench_verdict test "$(get vx received)" = "$(get vx clients)")"
    printf '  %-44s %10s   %-18s %s\n' "vexil p99 / ceiling p99 (18 B answers)" "$ratio" "target <= 3" \
        "$(bench_verdict bench_le "$ratio" 3)"
    printf '  %-44s %10s   %-18s %s\n' "vexil p99 / ceiling p99 ($BODY_USER B answers)" "$ratiosz" "target <= 3" \
        "$(bench_verdict bench_le "$ratiosz" 3)"
    printf '  %-44s %10s   %-18s %s\n' "vexil max (ms)" "$(ms "$(get vx max_ms)")" "target < 500" \
        "$(bench_verdict awk -v m="$(get vx max_ms)" 'BEGIN { exit !(m != "nan" && m < 500) }')"
    printf '  %-44s %10s   %-18s %s\n' "vexil VmRSS holding, worst round (MB)" "$rss_mb" "target <= 100" \
        "$(bench_verdict bench_le "$rss_mb" 100)"
    printf '  %-44s %10s   %-18s %s\n' "two instances p99 (ms), $(get pair received)/$(get pair clients) received" \
        "$(ms "$(get pair p99_ms)")" "target <= 50" \
        "$(bench_verdict awk -v m="$(get pair p99_ms)" 'BEGIN { exit !(m != "nan" && m <= 50) }')"
    printf '  %-44s %10s\n' "two instances p50 / max (ms)" "$(ms "$(get pair p50_ms)") / $(ms "$(get pair max_ms)")"
    printf '  %-44s %10s\n' "two instances p99 from the write's send (t0)" "$(ms "$(get pair p99_t0_ms)")"
    printf '  %-44s %10s\n' "vexil p99 / max from the write's send (t0)" "$(ms "$(get vx p99_t0_ms)") / $(ms "$(get vx max_t0_ms)")"
    printf '  %-44s %10s\n' "PATCH answered, median (ms)" "$(ms "$(get vx trigger_ms)")"
    echo "RESULT clients=$N rounds=$ROUNDS ceiling_p99_ms=$(get ceil p99_ms) ceiling_max_ms=$(get ceil max_ms) vexil_received=$(get vx received)/$(get vx clients) vexil_p50_ms=$(get vx p50_ms) vexil_p99_ms=$(get vx p99_ms) vexil_max_ms=$(get vx max_ms) ceiling_sized_p99_ms=$(get ceilsz p99_ms) ratio_p99=$ratio ratio_p99_sized=$ratiosz vexil_rss_kb=$(get vx rss_kb) vexil_rss_first_kb=$(get vx rss_first_kb) pair_received=$(get pair received)/$(get pair clients) pair_p50_ms=$(get pair p50_ms) pair_p99_ms=$(get pair p99_ms) pair_max_ms=$(get pair max_ms)"
else
    echo "RESULT clients=$N rounds=$ROUNDS ceiling_p99_ms=$(get ceil p99_ms) ceiling_max_ms=$(get ceil max_ms) ceiling_rss_kb=$(get ceil rss_kb) ceiling_sized_p99_ms=$(get ceilsz p99_ms) ceiling_sized_max_ms=$(get ceilsz max_ms) body=$BODY_USER"
fi
