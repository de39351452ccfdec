#!/usr/bin/env bash
# tests/bench/throughput.sh -- read throughput of vexil against an HTTP ceiling.
#
# Why: every service asks vexil for its flags, so the read path must cost close
# to nothing beyond HTTP itself.  An absolute requests/s depends on the machine;
# the ratio to ref_server (libmicrohttpd answering a same-sized body from
# memory, same thread pool and limits) says how much vexil adds.
# Targets: vexil per-user >= 0.6 x ceiling, vexil per-user p99 < 5 ms, and the
# same ratio with 3 environments and a 10 000-user segment on every flag.
#
# How: release build, private PostgreSQL, migrate, admin token, `vexil serve`,
# 100 flags at 50 %, then wrk (64 connections, 2 threads, BENCH_DURATION s) on
#   1. vexil GET /flags?user=<new id per request>   (wrk.lua varies the user)
#   2. ref_server body of the size of (1)           (the ceiling for 1)
#   3. vexil GET /flags                             (all flags, no evaluation)
#   4. ref_server body of the size of (3)           (the ceiling for 3)
#   5. vexil GET /flags?user=<new id> in `staging`, one of 3 environments, where
#      every flag also names a segment of 10 000 users (a client token of
#      staging; BENCH_ENVIRONMENTS=0 skips it), against the ceiling of (2)
# BENCH_REPEAT times, interleaved so that a noisy minute on a shared machine
# hits both sides, and prints the median of each figure in one table.  Both
# servers stay up; only one is loaded at a time.  Everything runs on
# 127.0.0.1 and is removed on exit.
#
# Usage: tests/bench/throughput.sh
#   BENCH_DURATION=10 BENCH_REPEAT=3 BENCH_CONNECTIONS=64 BENCH_THREADS=2
#   BENCH_CEILING_ONLY=1  only the ref_server rows (no PostgreSQL, no vexil)
#   and the knobs of lib.sh (BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_KEEP, BENCH_FLAGS).
set -euo pipefail

. "$(dirname "$0")/lib.sh"

CEILING_ONLY=${BENCH_CEILING_ONLY:-0}
ENVS=${BENCH_ENVIRONMENTS:-1}
CLK_TCK=$(getconf CLK_TCK)

case $DURATION in '' | *[!0-9]*) bench_die "BENCH_DURATION must be whole seconds" ;; esac
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 300 ]; then bench_die "BENCH_DURATION must be 1..300"; fi
case $REPEAT in '' | *[!0-9]*) bench_die "BENCH_REPEAT must be a whole number" ;; esac
if [ "$REPEAT" -lt 1 ] || [ "$REPEAT" -gt 20 ]; then bench_die "BENCH_REPEAT must be 1..20"; fi

bench_init
MACHINE_BEFORE=$(bench_machine_note)
bench_raise_nofile 4096
bench_build_tools

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run_wrk KEY PORT PID PATH VARY TOKEN : one wrk run; appends its BENCH line
# (plus the server's CPU seconds) to $BENCH_WORK/log/KEY.lines.
run_wrk() {
    local key=$1 port=$2 pid=$3 path=$4 vary=$5 token=$6 out line c0 c1
    bench_log "wrk ${DURATION}s: $key ($path)"
    c0=$(cpu_ticks "$pid")
    out=$(BENCH_PATH=$path BENCH_VARY_USER=$vary BENCH_TOKEN=$token \
        timeout $((DURATION + 30)) wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --latency \
        -s "$BENCH_DIR/wrk.lua" "http://127.0.0.1:$port") || bench_die "wrk failed: $out"
    c1=$(cpu_ticks "$pid")
    printf '%s\n' "$out" >>"$BENCH_WORK/log/wrk-$key.txt"
    line=$(printf '%s\n' "$out" | grep '^BENCH ') || bench_die "no BENCH line from wrk"
    # eff: requests per CPU-second of the server process during this run.
    echo "$line $(printf '%s' "$line" | awk -v t=$((c1 - c0)) -v h="$CLK_TCK" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "cpu=%.2f eff=%.0f", t / h, (t > 0 ? f["requests"] / (t / h) : 0) }')" \
        >>"$BENCH_WORK/log/$key.lines"
    bench_log "  $(printf '%s' "$line" | cut -d' ' -f4-7)"
}

# summarise KEY : R_<field>_KEY = median over the runs (errors: the sum).
summarise() {
    local key=$1 f v
    for f in rps p50_us p90_us p99_us max_us secs cpu eff; do
        v=$(sed -n "s/.* $f=\([0-9.]*\).*/\1/p" "$BENCH_WORK/log/$key.lines" | sort -g |
            awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
        printf -v "R_${f}_$key" '%s' "$v"
    done
    for f in err_connect err_read err_write err_status err_timeout; do
        v=$(sed -n "s/.* $f=\([0-9]*\).*/\1/p" "$BENCH_WORK/log/$key.lines" | awk '{ s += $1 } END { print s + 0 }')
        printf -v "R_${f}_$key" '%s' "$v"
    done
    printf -v "R_all_rps_$key" '%s' "$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' "$BENCH_WORK/log/$key.lines" |
        awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }')"
}

fig() { # fig FIELD KEY
    local n="R_$1_$2"
    printf '%s' "${!n:-}"
}

row() { # row KEY LABEL BODYSIZE
    local k=$1 errs
    errs=$(($(fig err_connect "$k") + $(fig err_read "$k") + $(fig err_write "$k") + $(fig err_status "$k") + $(fig err_timeout "$k")))
    awk -v l="$2" -v rps="$(fig rps "$k")" -v p50="$(fig p50_us "$k")" -v p99="$(fig p99_us "$k")" \
        -v mx="$(fig max_us "$k")" -v e="$errs" -v b="$3" -v eff="$(fig eff "$k")" \
        'BEGIN { printf "  %-40s %9.0f %8.2f %8.2f %8.2f %7d %7d %9.0f\n", l, rps, p50 / 1000, p99 / 1000, mx / 1000, e, b, eff }'
}

if [ "$CEILING_ONLY" != 1 ]; then
    bench_build_vexil
    bench_start_pg
    bench_vexil_prepare
    VPORT=$(bench_free_port)
    bench_start_vexil vexil "$VPORT" --max-connections 1000
    VPID=$BENCH_LAST_PID
    bench_create_flags "$VPORT"
    BODY_USER=$(curl -s -m 10 -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $BENCH_TOKEN" \
        "http://127.0.0.1:$VPORT/flags?user=u1_100000")
    BODY_ALL=$(curl -s -m 10 -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $BENCH_TOKEN" \
        "http://127.0.0.1:$VPORT/flags")
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN" \
        "http://127.0.0.1:$VPORT/flags?user=u1_100000")
    [ "$code" = 200 ] || bench_die "GET /flags?user= answered $code"
    bench_log "body sizes: per-user $BODY_USER B, all flags $BODY_ALL B"
    if [ "$ENVS" = 1 ]; then
        # Three environments; in staging every flag is on at 50 % and names a
        # segment of 10 000 users that wrk's ids (u<thread>_<n>) run into.
        api() { # api METHOD PATH BODY: fails the benchmark unless 2xx
            local code
            code=$(curl -s -o "$BENCH_WORK/log/api.out" -w '%{http_code}' -m 30 -X "$1" \
                -H "Authorization: Bearer $BENCH_TOKEN" -H 'Content-Type: application/json' \
                --data-binary "@-" "http://127.0.0.1:$VPORT$2" <<<"$3")
            case $code in 2??) ;; *) cat "$BENCH_WORK/log/api.out" >&2; bench_die "$1 $2 answered $code" ;; esac
        }
        api POST /api/environments '{"name":"staging"}'
        api POST /api/environments '{"name":"development"}'
        api POST /api/segments "{\"name\":\"beta\",\"users\":$(seq 1 5000 | awk '{ printf "%s\"u1_%d\",\"u2_%d\"", (NR > 1 ? "," : "["), $1, $1 } END { print "]" }')}"
        for i in $(seq 0 $((${BENCH_FLAGS:-100} - 1))); do
            api PATCH "/api/flags/$(printf 'flag_%03d' "$i")?env=staging" '{"enabled":true,"percentage":50,"segments":["beta"]}'
        done
        STAGING_TOKEN=$(curl -s -m 10 -X POST -H "Authorization: Bearer $BENCH_TOKEN" \
            --data '{"name":"bench-staging","role":"client","environment":"staging"}' \
            "http://127.0.0.1:$VPORT/api/tokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
        [ -n "$STAGING_TOKEN" ] || bench_die "no staging token"
        BODY_ENV=$(curl -s -m 10 -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $STAGING_TOKEN" \
            "http://127.0.0.1:$VPORT/flags?user=u1_100")
        bench_log "3 environments, a 10 000-user segment on every flag in staging: per-user body $BODY_ENV B"
    fi
else
    BODY_USER=${BENCH_BODY_USER:-2100}
    BODY_ALL=${BENCH_BODY_ALL:-22000}
fi

RPORT=$(bench_free_port)
bench_start_ref "$RPORT" --threads 2 --max-conn 1000 --mem-limit 16384 --idle-timeout 60 --body-size "$BODY_USER"
RPID=$BENCH_LAST_PID

for rep in $(seq 1 "$REPEAT"); do
    bench_log "repeat $rep/$REPEAT"
    [ "$CEILING_ONLY" = 1 ] || run_wrk vuser "$VPORT" "$VPID" /flags 1 "$BENCH_TOKEN"
    run_wrk ruser "$RPORT" "$RPID" "/body?size=$BODY_USER" 0 ""
    [ "$CEILING_ONLY" = 1 ] || run_wrk vall "$VPORT" "$VPID" /flags 0 "$BENCH_TOKEN"
    [ "$CEILING_ONLY" = 1 ] || [ "$ENVS" != 1 ] || run_wrk venv "$VPORT" "$VPID" /flags 1 "$STAGING_TOKEN"
    run_wrk rall "$RPORT" "$RPID" "/body?size=$BODY_ALL" 0 ""
done
for key in vuser ruser vall rall venv; do
    [ -f "$BENCH_WORK/log/$key.lines" ] && summarise "$key"
done
[ "$CEILING_ONLY" = 1 ] || VRSS=$(awk '/^VmRSS/ { print $2 }' "/proc/$VPID/status")

echo
echo "throughput: wrk -t$THREADS -c$CONNS -d${DURATION}s x $REPEAT (median) on 127.0.0.1, $(nproc) CPUs shared by wrk and the server"
printf '  %-40s %9s %8s %8s %8s %7s %7s %9s\n' "" "req/s" "p50 ms" "p99 ms" "max ms" "errors" "body B" "req/cpu-s"
if [ "$CEILING_ONLY" != 1 ]; then
    row vuser "vexil GET /flags?user=<varying>" "$BODY_USER"
    row vall "vexil GET /flags" "$BODY_ALL"
    [ "$ENVS" != 1 ] || row venv "vexil staging ?user=, 3 envs, segment" "$BODY_ENV"
fi
row ruser "ceiling ref_server, $BODY_USER B body" "$BODY_USER"
row rall "ceiling ref_server, $BODY_ALL B body" "$BODY_ALL"
echo "  (req/cpu-s: requests per CPU-second spent by the server process itself)"
echo "  before: $MACHINE_BEFORE"
echo "  after:  $(bench_machine_note)"
for key in vuser ruser vall rall; do
    n="R_all_rps_$key"
    [ -n "${!n:-}" ] && printf '  req/s of each run, %-6s %s\n' "$key:" "${!n}"
done
[ "$CEILING_ONLY" = 1 ] || echo "  vexil VmRSS after the runs: $((VRSS / 1024)) MB"

if [ "$CEILING_ONLY" != 1 ]; then
    ratio_user=$(bench_ratio "$(fig rps vuser)" "$(fig rps ruser)")
    ratio_all=$(bench_ratio "$(fig rps vall)" "$(fig rps rall)")
    ratio_eff=$(bench_ratio "$(fig eff vuser)" "$(fig eff ruser)")
    # Each repeat ran vexil and the ceiling back to back: the median of those
    # paired ratios resists a machine that is busier in one repeat than another.
    ratio_paired=$(paste -d' ' \
        <(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' "$BENCH_WORK/log/vuser.lines") \
        <(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' "$BENCH_WORK/log/ruser.lines") |
        awk '$2 > 0 { print $1 / $2 }' | sort -g |
        awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
    ratios_each=$(paste -d' ' \
        <(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' "$BENCH_WORK/log/vuser.lines") \
        <(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' "$BENCH_WORK/log/ruser.lines") |
        awk '$2 > 0 { printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2 }')
    p99_user=$(awk -v p="$(fig p99_us vuser)" 'BEGIN { printf "%.2f", p / 1000 }')
    p99_ceil=$(awk -v p="$(fig p99_us ruser)" 'BEGIN { printf "%.2f", p / 1000 }')
    echo
    printf '  %-52s %6s   target >= 0.60  %s\n' "vexil per-user / ceiling (requests/s)" "$ratio_user" \
        "$(bench_verdict bench_le 0.6 "$ratio_user")"
    printf '  %-52s %6s   (each repeat: %s)\n' "  same, median of the per-repeat ratios" "$ratio_paired" "$ratios_each"
    if [ "$ENVS" = 1 ]; then
        ratio_env=$(bench_ratio "$(fig rps venv)" "$(fig rps ruser)")
        printf '  %-52s %6s   target >= 0.60  %s\n' "vexil staging per-user (3 envs, 10k segment) / ceiling" \
            "$ratio_env" "$(bench_verdict bench_le 0.6 "$ratio_env")"
    fi
    printf '  %-52s %6s   target <  5 ms  %s\n' "vexil per-user p99 (ms)" "$p99_user" \
        "$(bench_verdict awk -v p="$p99_user" 'BEGIN { exit !(p < 5) }')"
    printf '  %-52s %6s   (no target)\n' "ceiling p99 at the same load (ms)" "$p99_ceil"
    printf '  %-52s %6s   (no target)\n' "vexil per-user / ceiling (requests per server CPU-s)" "$ratio_eff"
    printf '  %-52s %6s   (no target)\n' "vexil all flags / ceiling of the same size (req/s)" "$ratio_all"
    echo "RESULT vexil_user_rps=$(fig rps vuser) vexil_user_p50_us=$(fig p50_us vuser) vexil_user_p99_us=$(fig p99_us vuser) vexil_all_rps=$(fig rps vall) vexil_all_p99_us=$(fig p99_us vall) ceiling_user_rps=$(fig rps ruser) ceiling_user_p99_us=$(fig p99_us ruser) ceiling_all_rps=$(fig rps rall) ratio_user=$ratio_user ratio_user_paired=$ratio_paired ratio_eff=$ratio_eff ratio_all=$ratio_all ratio_env=${ratio_env:-} body_user=$BODY_USER body_all=$BODY_ALL"
else
    echo "RESULT ceiling_user_rps=$(fig rps ruser) ceiling_user_p99_us=$(fig p99_us ruser) ceiling_all_rps=$(fig rps rall) body_user=$BODY_USER body_all=$BODY_ALL"
fi
