#!/usr/bin/env bash
# tests/fuzz/run.sh -- build the libFuzzer targets, replay the regressions,
# then fuzz each target for a bounded time.
#
#   tests/fuzz/run.sh                   every target
#   tests/fuzz/run.sh fuzz_json ...     only these
#
# Targets (each tests/fuzz/<target>.c, linked directly against the pure
# server/*.c sources it needs, no meson):
#   fuzz_json    request-body validation: flag_patch_from_json (create and
#                patch), flag_from_json, JSON string output (server/flag.c ...)
#   fuzz_router  url_unescape + router_find on the real routing table (server/routes.c,
#                server/httputil.c, server/router.c)
#   fuzz_etag    etag_parse/etag_matches and parse_int_range (server/httputil.c)
#   fuzz_refs    the reference scan of `vexil refs`, refs_scan_buffer, against a
#                plain reference (server/refs.c)
#
# For each target, in this order:
#   1. build:   clang -fsanitize=fuzzer,address,undefined (UB aborts too);
#   2. replay:  every file in tests/fuzz/regressions/<target>/ runs once;
#               a crash there fails the run;
#   3. fuzz:    libFuzzer for $FUZZ_SECONDS seconds, starting from the
#               committed seeds in tests/fuzz/corpus/<target>/ (read only;
#               new inputs go to the scratch corpus under the build dir).
#               A crash, leak, timeout or out-of-memory fails the run, and
#               the input that caused it is copied to
#               tests/fuzz/regressions/<target>/ so that it is replayed from
#               then on: commit it together with the fix.
#
# Adding a regression by hand: put the input (raw bytes, any file name; e.g.
# crash-<sha1> from libFuzzer, or a file you wrote) into
# tests/fuzz/regressions/<target>/ and commit it.  Reproduce one with
#   tests/fuzz/run.sh <target>              (builds, replays, fuzzes)
#   build/fuzz/<target> tests/fuzz/regressions/<target>/<file>   (replay only)
# Regressions are also good seeds: libFuzzer does not read them as corpus,
# so copy interesting ones to corpus/<target>/ too.
#
# Environment:
#   FUZZ_SECONDS  seconds of fuzzing per target (default 20; 0 = replay only)
#   FUZZ_BUILD    build directory (default build/fuzz)
#   FUZZ_CC       compiler (default clang)
#   FUZZ_JOBS     run this many targets at once (default 1)
# Exit status: 0 all clean, 1 a target crashed or a regression failed,
# 2 the fuzzers could not be built (clang or libclang-rt-14-dev missing).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$ROOT" || exit 2
FUZZ_DIR=tests/fuzz
SECONDS_EACH=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD:-build/fuzz}
CC=${FUZZ_CC:-clang}
ALL_TARGETS=(fuzz_json fuzz_router fuzz_etag fuzz_refs)

# The pure sources each target links (besides the target itself).
sources_of() {
    case $1 in
    fuzz_json) echo server/flag.c server/vx.c server/timeutil.c server/httputil.c server/text.c server/eval.c \
        server/murmur3.c ;;
    fuzz_router) echo server/router.c server/httputil.c ;;
    fuzz_etag) echo server/httputil.c ;;
    fuzz_refs) echo server/refs.c server/text.c server/vx.c ;;
    *) return 1 ;;
    esac
}

# shellcheck source=tests/lib/steps.sh
source "$ROOT/tests/lib/steps.sh"

# routes.inc: the routing table's method/pattern pairs, taken from
# server/routes.c so that fuzz_router tests what the daemon runs.  A table
# that can no longer be found fails the build (update the extraction here,
# not a hand-made copy).
extract_from_http() {
    local out=$1
    grep -oE '^[[:space:]]*ROUTE\("[A-Z]+", "[^"]*"' server/routes.c |
        sed -E 's/^[[:space:]]*ROUTE\(("[A-Z]+"), ("[^"]*")/    R(\1, \2),/' >"$out/routes.inc.tmp" || true
    if [ ! -s "$out/routes.inc.tmp" ] || [ "$(wc -l <"$out/routes.inc.tmp")" -lt 5 ]; then
        say "cannot find the routing table (ROUTE(\"METHOD\", \"/pattern\", ...) lines) in server/routes.c" >&2
        return 1
    fi
    mv "$out/routes.inc.tmp" "$out/routes.inc"
    say "routes from server/routes.c: $(wc -l <"$out/routes.inc")"
}

build_target() {
    local t=$1 src
    src=$(sources_of "$t") || return 2
    # shellcheck disable=SC2046,SC2086
    "$CC" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
        -Iserver -I"$BUILD" $(pkg-config --cflags jansson) \
        "$FUZZ_DIR/$t.c" $src \
        $(pkg-config --libs jansson) -lm -o "$BUILD/$t"
}

# signature LOG: one line naming a failure by where it happened, so that a
# fuzzer finding again a bug that a regression already shows is recognised.
signature() {
    grep -m1 -oE 'check failed at [^ ]+|SUMMARY: [A-Za-z]+Sanitizer: [a-z-]+ [^ ]+|[^ ]+:[0-9]+:[0-9]+: runtime error|libFuzzer: (timeout|out-of-memory|deadly signal)' \
        "$1" | head -n 1
}

# Replay every committed regression input once, each on its own so that
# every failing one is named.  The signatures of the failing ones are kept
# in $BUILD/logs/<target>-known: a fuzzer crash with one of them is the same
# bug and is not copied again.
replay() {
    local t=$1 dir="$FUZZ_DIR/regressions/$1" files=() f bad=0 log
    : >"$BUILD/logs/$t-known"
    mapfile -t files < <(find "$dir" -type f ! -name '.*' ! -name '*.md' 2>/dev/null | sort)
    if [ ${#files[@]} -eq 0 ]; then
        say "no regressions for $t"
        return 0
    fi
    say "replaying ${#files[@]} regression input(s) from $dir"
    for f in "${files[@]}"; do
        log="$BUILD/logs/$t-replay-$(basename "$f").log"
        if ! "$BUILD/$t" -runs=1 "$f" >"$log" 2>&1; then
            bad=$((bad + 1))
            printf '%s\t%s\n' "$(signature "$log")" "$f" >>"$BUILD/logs/$t-known"
            say "  FAILS: $f: $(signature "$log")"
            grep -E -m3 '^fuzz_[a-z]+: |runtime error|^SUMMARY' "$log" | sed 's/^/    /'
        fi
    done
    if [ "$bad" -gt 0 ]; then
        say "$bad regression input(s) of $t fail: the bug each one shows is back (or not yet fixed)" >&2
        return 1
    fi
}

fuzz() {
    local t=$1 work="$BUILD/corpus/$1" art="$BUILD/artifacts/$1/" rc=0 dict=()
    mkdir -p "$work" "$art"
    rm -f "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* 2>/dev/null
    [ -f "$FUZZ_DIR/$t.dict" ] && dict=(-dict="$FUZZ_DIR/$t.dict")
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb guards the box.
    "$BUILD/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$art" "${dict[@]}" \
        "$work" "$FUZZ_DIR/corpus/$t" >"$BUILD/logs/$t.log" 2>&1 || rc=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' \
        "$BUILD/logs/$t.log" | sed 's/^/    /'
    local found=()
    mapfile -t found < <(find "$art" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \))
    if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
        grep -E -A 30 '^==[0-9]+==ERROR|runtime error|^fuzz_[a-z]+: |ALARM|out-of-memory' \
            "$BUILD/logs/$t.log" | head -n 60
        local f sig known
        sig=$(signature "$BUILD/logs/$t.log")
        known=$(awk -F '\t' -v s="$sig" '$1 == s && s != "" { print $2; exit }' "$BUILD/logs/$t-known" 2>/dev/null)
        mkdir -p "$FUZZ_DIR/regressions/$t"
        for f in "${found[@]}"; do
            if [ -n "$known" ]; then
                say "same failure ($sig) as the regression $known: not kept again"
            else
                cp "$f" "$FUZZ_DIR/regressions/$t/"
                say "kept $FUZZ_DIR/regressions/$t/$(basename "$f") (commit it with the fix)"
            fi
        done
        say "$t failed (libFuzzer status $rc); full log: $BUILD/logs/$t.log" >&2
        return 1
    fi
}

run_target() {
    local t=$1 rc=0
    step "fuzz:$t:build" build_target "$t" || return 2
    step "fuzz:$t:replay" replay "$t" || rc=1
    if [ "$SECONDS_EACH" -gt 0 ]; then
        step "fuzz:$t:run ${SECONDS_EACH}s" fuzz "$t" || rc=1
    fi
    return "$rc"
}

main() {
    local targets=("$@") t rc=0 t0
    [ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
    for t in "${targets[@]}"; do
        sources_of "$t" >/dev/null || {
            say "unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2
            return 2
        }
    done
    case $SECONDS_EACH in '' | *[!0-9]*)
        say "FUZZ_SECONDS must be a whole number of seconds, not '$SECONDS_EACH'" >&2
        return 2
        ;;
    esac
    if ! command -v "$CC" >/dev/null; then
        say "$CC not found: apt-get install clang libclang-rt-14-dev" >&2
        return 2
    fi
    # libFuzzer's runtime ships in libclang-rt-14-dev, not in clang itself.
    if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        "$CC" -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
        say "$CC cannot link -fsanitize=fuzzer,address,undefined: apt-get install libclang-rt-14-dev" >&2
        return 2
    fi
    mkdir -p "$BUILD/logs" || return 2
    t0=$(now)
    step "fuzz:extract" extract_from_http "$BUILD" || return 2

    local jobs=${FUZZ_JOBS:-1} pids=() names=()
    for t in "${targets[@]}"; do
        if [ "$jobs" -le 1 ]; then
            local trc=0
            run_target "$t" || trc=$?
            [ "$trc" -gt "$rc" ] && rc=$trc
        else
            run_target "$t" >"$BUILD/logs/$t-driver.log" 2>&1 &
            pids+=($!)
            names+=("$t")
            if [ ${#pids[@]} -ge "$jobs" ]; then
                wait "${pids[0]}" || rc=1
                cat "$BUILD/logs/${names[0]}-driver.log"
                pids=("${pids[@]:1}")
                names=("${names[@]:1}")
            fi
        fi
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || rc=1
        cat "$BUILD/logs/${names[$i]}-driver.log"
    done
    say "fuzz: ${targets[*]} in $(elapsed "$t0"): $([ "$rc" -eq 0 ] && echo clean || echo FAILED)"
    return "$rc"
}

main "$@"
