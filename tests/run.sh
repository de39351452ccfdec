#!/usr/bin/env bash
# tests/run.sh -- the single test command (README, .ci/run).
#
# Runs as root on a fresh Debian 12 from a clean clone, in stages:
#   deps          install what the tests need when missing (apt-get, npm)
#   build:*       meson build dirs build/plain, build/asan (ASan + UBSan) and
#                 build/tsan (ThreadSanitizer)
#   postgres      a throwaway PostgreSQL 15 cluster (tests/lib/pg.sh), stopped on exit
#   unit:*        `meson test` in each build dir (Check unit tests)
#   integration:* `node --test tests/integration/` against each build's vexil;
#                 for build/tsan only TSAN_TESTS, the files whose daemons are
#                 busiest across threads (the whole suite would double its time)
#   browser       `node --test tests/browser/` when it holds *.test.mjs
#   quality:coverage  line coverage of server/ >= 80 % over everything build/plain ran
#                     (build/plain is a coverage build), printed per file
#   quality:lint  clang-format, cppcheck, clang-tidy (tests/quality.sh lint)
#   security:fuzz libFuzzer targets from the committed corpus, regressions replayed
#                 (tests/fuzz/run.sh, FUZZ_SECONDS each, default 20)
#   quickstart    deploy/quickstart.sh on a copy of the tree without the check
#                 library: it must build, serve and print a working token
#                 (tests/quickstart.sh)
# Each stage prints its name and duration; the last line is exactly
# "N passed, N failed" (", N skipped" when any), summed over all suites, and the
# exit status is non-zero when anything failed.
#
# To add a stage: write a function stage_NAME that returns non-zero on
# failure and calls `count PASS FAIL SKIP` for the tests it ran, then add a
# `run_stage` line to main() naming the stages it needs.
#
# Environment: VEXIL_TEST_JOBS (parallel integration test files, default 4),
# VEXIL_SKIP_INSTALL=1 (skip apt/npm, for a machine known to be ready).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT" || exit 2
ART="$ROOT/tests/artifacts/run"
JOBS=${VEXIL_TEST_JOBS:-4}

REQUIRED_DEBS=(build-essential pkg-config meson ninja-build libmicrohttpd-dev libpq-dev
    libjansson-dev uuid-dev zlib1g-dev libcurl4-openssl-dev check postgresql-15 chromium gcovr clang libclang-rt-14-dev cppcheck
    clang-tidy clang-format jq curl)
OPTIONAL_DEBS=(wrk) # benchmarks only

# ---------------------------------------------------------------- bookkeeping

TOTAL_PASS=0
TOTAL_FAIL=0
TOTAL_SKIP=0
declare -A STAGE_RC=() # name -> exit status, or "skipped" (absent: not run)
FAILED_STAGES=()       # in the order they ran

# shellcheck source=tests/lib/steps.sh
source "$ROOT/tests/lib/steps.sh" # say, now, elapsed
# shellcheck source=tests/lib/build.sh
source "$ROOT/tests/lib/build.sh" # meson_build
# shellcheck source=tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh" # pg_start_throwaway, pg_stop_throwaway

count() {
    TOTAL_PASS=$((TOTAL_PASS + ${1:-0}))
    TOTAL_FAIL=$((TOTAL_FAIL + ${2:-0}))
    TOTAL_SKIP=$((TOTAL_SKIP + ${3:-0}))
}


# run_stage NAME "NEEDED STAGES" FUNCTION [ARGS...]
# Runs FUNCTION unless a stage it needs failed or did not run.  A failed stage
# that reported no failed test counts as one failure, so that a broken build
# can never end in "0 failed".
run_stage() {
    local name=$1 needs=$2 fn=$3
    shift 3
    local n
    for n in $needs; do
        if [ "${STAGE_RC[$n]:-x}" != 0 ]; then
            say "--- [$name] not run: needs stage '$n', which failed or did not run"
            STAGE_RC[$name]=skipped
            FAILED_STAGES+=("$name (not run)")
            return 1
        fi
    done
    say ""
    say "==> [$name]"
    local t0 fail0=$TOTAL_FAIL rc=0
    t0=$(now)
    "$fn" "$@" || rc=$?
    STAGE_RC[$name]=$rc
    if [ "$rc" -ne 0 ]; then
        FAILED_STAGES+=("$name")
        [ "$TOTAL_FAIL" -eq "$fail0" ] && TOTAL_FAIL=$((TOTAL_FAIL + 1))
        say "<== [$name] FAILED (status $rc) in $(elapsed "$t0")"
    else
        say "<== [$name] ok in $(elapsed "$t0")"
    fi
    return "$rc"
}

# ---------------------------------------------------------------- stages

deb_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

stage_deps() {
    if [ "${VEXIL_SKIP_INSTALL:-}" = 1 ]; then
        say "VEXIL_SKIP_INSTALL=1: not installing anything"
        return 0
    fi
    local p missing=() optional=()
    for p in "${REQUIRED_DEBS[@]}"; do
        if [ "$p" = postgresql-15 ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] &&
            id postgres >/dev/null 2>&1; then continue; fi
        deb_installed "$p" || missing+=("$p")
    done
    for p in "${OPTIONAL_DEBS[@]}"; do
        deb_installed "$p" || optional+=("$p")
    done
    if [ $((${#missing[@]} + ${#optional[@]})) -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            say "missing packages: ${missing[*]} ${optional[*]}; run as root or install them" >&2
            [ ${#missing[@]} -eq 0 ] || return 1
        else
            say "installing: ${missing[*]} ${optional[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq || return 1
            if [ ${#missing[@]} -gt 0 ]; then
                apt-get install -y -q "${missing[@]}" >"$ART/apt-required.log" 2>&1 || {
                    tail -n 30 "$ART/apt-required.log"
                    say "apt-get install of required packages failed" >&2
                    return 1
                }
            fi
            if [ ${#optional[@]} -gt 0 ]; then
                apt-get install -y -q "${optional[@]}" >"$ART/apt-optional.log" 2>&1 ||
                    say "warning: could not install optional tools (${optional[*]}); see $ART/apt-optional.log"
            fi
        fi
    else
        say "all packages present"
    fi

    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        say "node and npm (Node 20 or newer) are required and not found" >&2
        return 1
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 20 ]; then
        say "Node $major found; Node 20 or newer is required" >&2
        return 1
    fi

    if [ -f tests/package.json ]; then
        if [ -f tests/package-lock.json ]; then
            (cd tests && npm ci --no-audit --no-fund) || return 1
        else
            (cd tests && npm install --no-audit --no-fund --no-package-lock) || return 1
        fi
    fi
}

# build/plain: the project's default buildtype, instrumented for coverage
# (its runs feed quality:coverage); build/asan: with ASan + UBSan;
# build/tsan: with ThreadSanitizer.
build_opts() {
    case $1 in
    # The daemon is multi-threaded: count with atomic updates, or racing
    # increments corrupt the counters (gcov then reports negative hits).
    plain) echo "-Db_coverage=true -Dc_args=-fprofile-update=atomic" ;;
    asan) echo "-Db_sanitize=address,undefined -Db_lundef=false" ;;
    tsan) echo "-Db_sanitize=thread" ;;
    esac
}

stage_build() {
    # shellcheck disable=SC2046
    meson_build "build/$1" "$ART/setup-$1.log" $(build_opts "$1")
}

stage_postgres() {
    pg_start_throwaway vexil-test || return 1
    say "PostgreSQL on $VEXIL_TEST_PG_URL"
}

sanitizer_env() {
    case $1 in
    asan)
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        unset TSAN_OPTIONS
        ;;
    tsan)
        # A report does not stop the daemon (the test would then fail on a
        # refused connection, far from the cause): it is printed, and the
        # exit status 66 and the harness's scan of stderr fail the test.
        export TSAN_OPTIONS="exitcode=66:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan-suppressions.txt"
        unset ASAN_OPTIONS UBSAN_OPTIONS
        ;;
    *) unset ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS ;;
    esac
}

# Parse meson's closing summary ("Ok:", "Fail:", ...) from LOG into count().
count_meson() {
    local log=$1 testlog=$2
    read -r ok xfail fail upass skip tmo < <(awk '
        /^Ok:/ {ok=$2} /^Expected Fail:/ {xf=$3} /^Fail:/ {f=$2}
        /^Unexpected Pass:/ {up=$3} /^Skipped:/ {s=$2} /^Timeout:/ {t=$2}
        END {print ok+0, xf+0, f+0, up+0, s+0, t+0}' "$log")
    # Count Check's own tests ("NN%: Checks: N, Failures: F, Errors: E", one
    # line per program) rather than programs; a program that died before its
    # summary still counts as one failure through meson's figures.
    read -r checks cfail < <(awk -F'[:,]' '/Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ {
        for (i = 1; i <= NF; i++) {
            if ($i ~ /Checks$/) c += $(i + 1)
            if ($i ~ /Failures$/ || $i ~ /Errors$/) f += $(i + 1)
        }
    } END {print c+0, f+0}' "$testlog" 2>/dev/null || echo 0 0)
    local passed=$((ok + xfail)) failed=$((fail + upass + tmo))
    if [ "$checks" -gt 0 ]; then
        passed=$((checks - cfail))
        [ "$cfail" -gt "$failed" ] && failed=$cfail
    fi
    count "$passed" "$failed" "$skip"
    say "unit: $passed passed, $failed failed, $skip skipped ($((ok + xfail + fail + upass + tmo)) programs)"
}

stage_unit() {
    local v=$1 rc=0
    (
        sanitizer_env "$v"
        meson test -C "build/$v" --print-errorlogs --num-processes "$(nproc)"
    ) 2>&1 | tee "$ART/unit-$v.log"
    rc=${PIPESTATUS[0]}
    count_meson "$ART/unit-$v.log" "build/$v/meson-logs/testlog.txt"
    return "$rc"
}

# Parse node's TAP closing lines ("# pass N", ...) from TAP into count().
count_node() {
    local tap=$1 label=$2
    read -r pass fail cancelled skip todo < <(awk '
        /^# pass / {p=$3} /^# fail / {f=$3} /^# cancelled / {c=$3}
        /^# skipped / {s=$3} /^# todo / {t=$3}
        END {print p+0, f+0, c+0, s+0, t+0}' "$tap" 2>/dev/null || echo 0 0 0 0 0)
    count "$pass" $((fail + cancelled)) $((skip + todo))
    say "$label: $pass passed, $((fail + cancelled)) failed, $((skip + todo)) skipped"
}

# node_tests LABEL VARIANT PATH...: node --test on the PATHs (directories or
# files) with VEXIL_BIN of VARIANT; a human-readable report on stdout and TAP
# in the artifacts for counting.
node_tests() {
    local label=$1 v=$2 tap="$ART/$1.tap" rc=0
    shift 2
    (
        sanitizer_env "$v"
        export VEXIL_BIN="$ROOT/build/$v/vexil"
        exec timeout --kill-after=10 1500 node --test --test-concurrency="$JOBS" \
            --test-reporter=spec --test-reporter-destination=stdout \
            --test-reporter=tap --test-reporter-destination="$tap" "$@"
    ) 2>&1 | tee "$ART/$label.log"
    rc=${PIPESTATUS[0]}
    count_node "$tap" "$label"
    return "$rc"
}

# The integration tests that run against build/tsan: long-poll and two
# instances (longpoll), database outage (outage, dbdown), the OFREP change
# streams (ofrep), which park and wake from several threads, the database
# threads, hangs and revocations (reliability), the incremental
# snapshots with their background compression (incremental), and the
# per-environment wake-ups across instances (environments).
TSAN_TESTS=(tests/integration/longpoll.test.mjs tests/integration/outage.test.mjs
    tests/integration/dbdown.test.mjs tests/integration/ofrep.test.mjs
    tests/integration/reliability.test.mjs tests/integration/incremental.test.mjs
    tests/integration/environments.test.mjs tests/integration/plans.test.mjs
    tests/integration/usage.test.mjs tests/integration/unleash.test.mjs)

stage_integration() {
    if [ "$1" = tsan ]; then
        node_tests "integration-$1" "$1" "${TSAN_TESTS[@]}"
    else
        node_tests "integration-$1" "$1" tests/integration/
    fi
}

have_browser_tests() {
    compgen -G 'tests/browser/*.test.mjs' >/dev/null
}

stage_browser() {
    node_tests browser plain tests/browser/
}

stage_coverage() {
    bash tests/quality.sh coverage-report build/plain
}

stage_lint() {
    bash tests/quality.sh lint build/plain
}

stage_fuzz() {
    bash tests/fuzz/run.sh
}

# The README's first command on a copy of the tree, without the check
# library (tests/quickstart.sh).
stage_quickstart() {
    local rc=0 pass fail
    bash tests/quickstart.sh 2>&1 | tee "$ART/quickstart.log"
    rc=${PIPESTATUS[0]}
    read -r pass fail < <(sed -n 's/^quickstart: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' \
        "$ART/quickstart.log" | tail -n 1)
    count "${pass:-0}" "${fail:-0}"
    return "$rc"
}

# ---------------------------------------------------------------- main

main() {
    rm -rf "$ART"
    mkdir -p "$ART"
    trap pg_stop_throwaway EXIT
    trap 'exit 130' INT TERM
    local t0
    t0=$(now)

    run_stage deps "" stage_deps
    run_stage build:plain "deps" stage_build plain
    run_stage build:asan "deps" stage_build asan
    run_stage build:tsan "deps" stage_build tsan
    run_stage postgres "deps" stage_postgres
    run_stage unit:plain "build:plain" stage_unit plain
    run_stage unit:asan "build:asan" stage_unit asan
    run_stage unit:tsan "build:tsan" stage_unit tsan
    run_stage integration:plain "build:plain postgres" stage_integration plain
    run_stage integration:asan "build:asan postgres" stage_integration asan
    run_stage integration:tsan "build:tsan postgres" stage_integration tsan
    if have_browser_tests; then
        run_stage browser "build:plain postgres" stage_browser
    fi
    run_stage quality:coverage "unit:plain integration:plain" stage_coverage
    run_stage quality:lint "build:plain" stage_lint
    run_stage security:fuzz "deps" stage_fuzz
    run_stage quickstart "deps" stage_quickstart

    say ""
    say "total time $(elapsed "$t0"); logs in ${ART#"$ROOT"/}"
    [ ${#FAILED_STAGES[@]} -gt 0 ] && say "failed stages: ${FAILED_STAGES[*]}"
    local line="$TOTAL_PASS passed, $TOTAL_FAIL failed"
    [ "$TOTAL_SKIP" -gt 0 ] && line+=", $TOTAL_SKIP skipped"
    say "$line"
    if [ "$TOTAL_FAIL" -gt 0 ] || [ ${#FAILED_STAGES[@]} -gt 0 ]; then
        return 1
    fi
    return 0
}

main "$@"
