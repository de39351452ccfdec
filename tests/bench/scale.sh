#!/usr/bin/env bash
# tests/bench/scale.sh -- does a change cost what changed, whatever the size
# of the flag set?
#
# Why: every instance applies a change by reading only the changed rows and
# sharing the rest of its snapshot (docs/propagation.md).  This checks that a
# write answers, and wakes a client held on another instance, as fast with
# 10 000 flags and a million listed users as with 1 000 flags, and that the
# snapshot costs little more memory than the data.
#
# How (every step bounded, everything on 127.0.0.1, all removed on exit):
# release build, private PostgreSQL, migrate, token; then for each case
# (1 000 / 10 000 flags, without / with user lists: every 10th flag lists
# 1 000 users) the flags are inserted in bulk with psql (generate_series),
# two instances A and B are started (each loads everything), and
# scale.mjs runs BENCH_SCALE_ROUNDS rounds of: a long-poll held on B, one
# PATCH through A; latencies from sending the PATCH.  Then the size of the
# full GET /flags answer, plain and gzip, and B's VmRSS.
# Targets (10 000 flags with lists): PATCH p50 <= 50 ms, write-to-wake p99
# <= 100 ms, RSS <= 100 MB, gzip <= 1/5 of plain, and neither latency more
# than 2x its value at 1 000 flags without lists.
#
# Usage: tests/bench/scale.sh    (about 2 minutes)
#   BENCH_SCALE_ROUNDS=40  and the knobs of lib.sh (BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_KEEP).
set -euo pipefail

. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_SCALE_ROUNDS:-40}
case $ROUNDS in '' | *[!0-9]*) bench_die "BENCH_SCALE_ROUNDS must be a whole number" ;; esac
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 1000 ]; then bench_die "BENCH_SCALE_ROUNDS must be 1..1000"; fi
command -v node >/dev/null || bench_die "node not found"

bench_init
MACHINE_BEFORE=$(bench_machine_note)
bench_build_vexil
bench_start_pg
bench_vexil_prepare

# fill N LISTS : exactly N flags flag_00000..., 50 %; with LISTS=1 every 10th
# lists 1 000 users.  One statement; the version moves so that nothing
# mistakes the new set for the old.
fill() {
    local n=$1 lists=$2
    psql "$BENCH_DB_URL" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL || bench_die "bulk insert failed"
TRUNCATE flags, flag_changes CASCADE;
INSERT INTO flags (name, description, owner, created_at, updated_at, revision)
SELECT format('flag_%s', lpad(i::text, 5, '0')), 'bench flag', 'bench', now(), now(), 1
FROM generate_series(0, $n - 1) i;
INSERT INTO flag_states (flag, environment, enabled, percentage, users)
SELECT format('flag_%s', lpad(i::text, 5, '0')), 'production', true, 50,
       CASE WHEN $lists = 1 AND i % 10 = 0
            THEN ARRAY(SELECT format('user-%s-%s', i, lpad(u::text, 4, '0')) FROM generate_series(1, 1000) u)
            ELSE '{}' END
FROM generate_series(0, $n - 1) i;
UPDATE vexil_state SET version = version + 1;
UPDATE environments SET version = version + 1;
SQL
}

rss_mb() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }

# run_case LABEL N LISTS : prints one row, sets R_<LABEL>_<key>.
run_case() {
    local label=$1 n=$2 lists=$3 pa pb line plain gz kv
    bench_log "case $label: $n flags, lists=$lists"
    fill "$n" "$lists"
    local port_a port_b
    port_a=$(bench_free_port)
    bench_start_vexil "a_$label" "$port_a"
    pa=$BENCH_LAST_PID
    port_b=$(bench_free_port)
    bench_start_vexil "b_$label" "$port_b"
    pb=$BENCH_LAST_PID
    line=$(node "$BENCH_DIR/scale.mjs" "http://127.0.0.1:$port_a" "http://127.0.0.1:$port_b" \
        "$BENCH_TOKEN" "$ROUNDS" flag_00001 2>"$BENCH_WORK/log/scale_$label.err") || {
        cat "$BENCH_WORK/log/scale_$label.err" >&2
        bench_die "scale.mjs failed ($label)"
    }
    plain=$(curl -s -m 60 -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $BENCH_TOKEN" \
        "http://127.0.0.1:$port_b/flags")
    # The first request that accepts gzip gets the plain body and has the
    # compressed one made in the background: ask until it is there (10 s).
    for _ in $(seq 1 50); do
        gz=$(curl -s -m 60 -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $BENCH_TOKEN" \
            -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port_b/flags")
        [ "$gz" -lt "$plain" ] && break
        sleep 0.2
    done
    for kv in ${line#RESULT }; do
        printf -v "R_${label}_${kv%%=*}" '%s' "${kv#*=}"
    done
    printf -v "R_${label}_plain" '%s' "$plain"
    printf -v "R_${label}_gzip" '%s' "$gz"
    printf -v "R_${label}_rss" '%s' "$(rss_mb "$pb")"
    bench_stop "$pa"
    bench_stop "$pb"
}
r() { local v="R_$1_$2"; printf '%s' "${!v}"; }

run_case small 1000 0
run_case small_lists 1000 1
run_case large 10000 0
run_case large_lists 10000 1

echo
echo "scale: $ROUNDS single-flag PATCHes through A, one long-poll held on B, 127.0.0.1, $(nproc) CPUs"
printf '  %-26s %9s %9s %9s %9s %9s %12s %11s %7s\n' case "PATCH p50" "p99" "wake p50" "p99" "body p99" "GET /flags B" "gzip B" "RSS MB"
for c in small:"1 000 flags" small_lists:"1 000, 100 with lists" large:"10 000 flags" \
    large_lists:"10 000, 1 000 with lists"; do
    k=${c%%:*}
    printf '  %-26s %9s %9s %9s %9s %9s %12s %11s %7s\n' "${c#*:}" "$(r "$k" patch_p50)" "$(r "$k" patch_p99)" \
        "$(r "$k" wake_p50)" "$(r "$k" wake_p99)" "$(r "$k" body_p99)" "$(r "$k" plain)" "$(r "$k" gzip)" "$(r "$k" rss)"
done
echo "  (ms from sending the PATCH; wake = the held request's headers on B, body = its whole answer)"
echo "  before: $MACHINE_BEFORE"
echo "  after:  $(bench_machine_note)"
echo
L=large_lists S=small
printf '  %-52s %8s   %-22s %s\n' "PATCH p50, 10 000 flags with lists (ms)" "$(r $L patch_p50)" "target <= 50" \
    "$(bench_verdict bench_le "$(r $L patch_p50)" 50)"
printf '  %-52s %8s   %-22s %s\n' "write-to-wake p99 on B, 10 000 with lists (ms)" "$(r $L wake_p99)" "target <= 100" \
    "$(bench_verdict bench_le "$(r $L wake_p99)" 100)"
printf '  %-52s %8s   %-22s %s\n' "RSS of B, 10 000 with lists (MB)" "$(r $L rss)" "target <= 100" \
    "$(bench_verdict bench_le "$(r $L rss)" 100)"
ratio=$(bench_ratio "$(r $L gzip)" "$(r $L plain)")
printf '  %-52s %8s   %-22s %s\n' "GET /flags gzip / plain, 10 000 with lists" "$ratio" "target <= 0.20" \
    "$(bench_verdict bench_le "$ratio" 0.20)"
for k in patch_p50 patch_p99 wake_p50 wake_p99; do
    ratio=$(bench_ratio "$(r $L $k)" "$(r $S $k)")
    printf '  %-52s %8s   %-22s %s\n' "$k, 10 000 with lists / 1 000 without" "$ratio" "target <= 2" \
        "$(bench_verdict bench_le "$ratio" 2)"
done
line="RESULT"
for c in small small_lists large large_lists; do
    for k in patch_p50 patch_p99 wake_p50 wake_p99 body_p99 plain gzip rss; do
        line+=" ${c}_$k=$(r $c $k)"
    done
done
echo "$line"
