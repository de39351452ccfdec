#!/usr/bin/env bash
# tests/quality.sh -- the quality gates: line coverage and lint.
#
#   tests/quality.sh coverage [BUILDDIR]   line coverage of server/ >= 80 %
#   tests/quality.sh lint [BUILDDIR]       clang-format + cppcheck + clang-tidy
#   tests/quality.sh format | cppcheck | tidy [BUILDDIR]   one lint tool alone
#   tests/quality.sh all                   lint, then coverage
#   tests/quality.sh coverage-report BUILDDIR   only the gcovr report and gate, for
#                                          a coverage build whose tests already ran
#                                          (tests/run.sh: build/plain)
#
# Each step prints its name and duration; the exit status is 0 when every
# gate passes, 1 when one fails, 2 on bad use or a missing tool.
#
# coverage
#   Builds BUILDDIR (default build/cov) with -Db_coverage=true (set up, or
#   configured if it exists; tests/lib/build.sh), deletes old .gcda files,
#   runs `meson test` (the Check unit tests) and `node --test
#   tests/integration/` with VEXIL_BIN=BUILDDIR/vexil, then
#   `gcovr --root . --filter server/ --txt --fail-under-line 80`, which
#   prints the figure per file.  An HTML report goes to BUILDDIR/coverage/.
#   The integration tests need PostgreSQL: VEXIL_TEST_PG_URL as exported by
#   tests/lib/pg.sh (tests/run.sh does that); when it is unset, a private
#   cluster is started here and stopped on exit.  The daemon writes its .gcda
#   files only when it exits normally: the harness stops it with SIGTERM
#   (docs/operations.md §1), so a daemon that dies otherwise shows up as missing coverage.
#   A failing test fails the gate too (coverage of a broken run means little).
#   Knobs: COVERAGE_MIN (default 80), VEXIL_TEST_JOBS (node test files run at
#   once, default 4).
#
# lint
#   clang-format --dry-run --Werror on server/, tests/unit/, tests/fuzz/ (the
#   style is /.clang-format);
#   cppcheck on server/ with the flags in run_cppcheck below;
#   clang-tidy on server/*.c with the checks in /.clang-tidy (reasons there),
#   using BUILDDIR/compile_commands.json (default build/plain if it has one,
#   else a build/lint that is only configured, never compiled).
#   Findings of cppcheck and clang-tidy that were judged false positives are
#   listed, with the reason, in tests/lint-suppressions.txt; anything else
#   fails the gate.  Fix the code rather than add a line there.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT" || exit 2
SUPPRESSIONS=tests/lint-suppressions.txt
COVERAGE_MIN=${COVERAGE_MIN:-80}
JOBS=${VEXIL_TEST_JOBS:-4}
NPROC=$(nproc 2>/dev/null || echo 2)

# shellcheck source=tests/lib/steps.sh
source "$ROOT/tests/lib/steps.sh"
# shellcheck source=tests/lib/build.sh
source "$ROOT/tests/lib/build.sh"
# shellcheck source=tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"

need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || {
            say "$t not found: apt-get install $(deb_of "$t")" >&2
            return 2
        }
    done
}

deb_of() {
    case $1 in
    gcovr) echo gcovr ;;
    cppcheck) echo cppcheck ;;
    clang-tidy) echo clang-tidy ;;
    clang-format) echo clang-format ;;
    meson) echo meson ;;
    ninja) echo ninja-build ;;
    node) echo nodejs ;;
    *) echo "$1" ;;
    esac
}

# ---------------------------------------------------------------- lint

# Sources under the lint: every C file and header of the daemon, the unit
# tests and the fuzzers.
format_files() {
    local f
    for f in server/*.c server/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
}

run_format() {
    need clang-format || return 2
    local files=() bad=() f
    mapfile -t files < <(format_files)
    for f in "${files[@]}"; do
        clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    say "clang-format: ${#files[@]} files, ${#bad[@]} not formatted"
    if [ ${#bad[@]} -gt 0 ]; then
        for f in "${bad[@]}"; do
            say "  $f: $(clang-format "$f" | diff "$f" - | grep -c '^>') line(s) differ"
        done
        clang-format "${bad[0]}" | diff -u "${bad[0]}" - | head -n 30
        say "fix with: clang-format -i ${bad[*]}"
        return 1
    fi
}

# filter_findings TOOL RAW [BASE]: print the findings of TOOL (cppcheck or
# clang-tidy) in RAW that tests/lint-suppressions.txt does not cover, with
# their source line; report stale suppressions; fail when any remain.
# Relative paths in RAW are relative to BASE (clang-tidy prints them relative
# to the build directory), else to the repository root.
filter_findings() {
    python3 - "$1" "$2" "$ROOT" "$SUPPRESSIONS" "${3:-$ROOT}" <<'PY'
import os, re, sys

tool, raw, root, supp_path, base = sys.argv[1:6]
base = os.path.realpath(os.path.join(root, base))
line_re = re.compile(r'^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)? '
                     r'(?P<sev>warning|error|style|performance|portability|information|note)?:? ?'
                     r'(?P<msg>.*) \[(?P<check>[A-Za-z0-9_.,-]+)\]$')

def rel(p):
    p = os.path.realpath(p if os.path.isabs(p) else os.path.join(base, p))
    return os.path.relpath(p, root)

def is_tidy_check(c):
    return '-' in c or '.' in c

supps = []
with open(os.path.join(root, supp_path), encoding='utf-8') as f:
    for n, l in enumerate(f, 1):
        l = l.strip()
        if not l or l.startswith('#'):
            continue
        parts = [p.strip() for p in l.split(' | ')]
        if len(parts) != 4 or not all(parts):
            print(f'{supp_path}:{n}: malformed (want FILE | CHECK | TEXT | REASON): {l}')
            sys.exit(2)
        if is_tidy_check(parts[1]) == (tool == 'clang-tidy'):
            supps.append({'file': parts[0], 'check': parts[1], 'text': parts[2], 'used': 0, 'n': n})

findings = {}
with open(raw, encoding='utf-8', errors='replace') as f:
    for l in f:
        m = line_re.match(l.rstrip('\n'))
        if not m or m.group('sev') == 'note':
            continue
        path = rel(m.group('file'))
        # Findings in system and library headers are not ours; anything
        # else counts, also when its file cannot be found (never skip a
        # finding because its path was misread).
        if path.startswith('..') and (m.group('file').startswith('/usr/') or
                                      os.path.isfile(os.path.join(root, path))):
            continue
        if not path.startswith('..') and not path.startswith('server/') and \
                os.path.isfile(os.path.join(root, path)):
            continue
        key = (path, int(m.group('line')), m.group('check'))
        findings.setdefault(key, m.group('msg'))

left = []
for (path, line, check), msg in sorted(findings.items()):
    try:
        with open(os.path.join(root, path), encoding='utf-8', errors='replace') as f:
            src = f.read().split('\n')[line - 1].strip()
    except (OSError, IndexError):
        src = ''
    hit = None
    for s in supps:
        if s['file'] == path and s['check'] == check and s['text'] in src:
            hit = s
            break
    if hit:
        hit['used'] += 1
    else:
        left.append((path, line, check, msg, src))

for s in supps:
    if s['used'] == 0:
        print(f'note: stale suppression {supp_path}:{s["n"]} ({s["file"]} {s["check"]}): '
              'nothing matches it any more; delete it')
for path, line, check, msg, src in left:
    print(f'{path}:{line}: [{check}] {msg}\n    {src}')
used = sum(1 for s in supps if s['used'])
print(f'{tool}: {len(left)} finding(s), {sum(s["used"] for s in supps)} suppressed '
      f'by {used} entr{"y" if used == 1 else "ies"} of {supp_path}')
sys.exit(1 if left else 0)
PY
}

# cppcheck: the warning, performance and portability classes (plus errors,
# always on), with --inconclusive.  Not `style`: it is mostly "the scope of
# this variable can be reduced" and `x | 0` in the routing table's flags.
# missingIncludeSystem: cppcheck does not need libc's or jansson's headers
# to check our code, and looking for them is slow and noisy.
run_cppcheck() {
    need cppcheck python3 || return 2
    local raw rc=0
    raw=$(mktemp) || return 2
    cppcheck --enable=warning,performance,portability --inconclusive --std=c11 \
        --library=posix --inline-suppr --suppress=missingIncludeSystem \
        --error-exitcode=0 -I server -D_GNU_SOURCE -DVEXIL_VERSION='"0"' -j "$NPROC" --quiet \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' server/ >"$raw" 2>&1 ||
        rc=2
    if [ "$rc" -ne 0 ]; then
        cat "$raw"
        rm -f "$raw"
        return 2
    fi
    filter_findings cppcheck "$raw" || rc=$?
    rm -f "$raw"
    return "$rc"
}

# The build dir whose compile_commands.json clang-tidy reads.
lint_build_dir() {
    local dir=${1:-}
    if [ -z "$dir" ]; then
        if [ -f build/plain/compile_commands.json ]; then
            dir=build/plain
        else
            dir=build/lint
        fi
    fi
    if [ ! -f "$dir/compile_commands.json" ]; then
        need meson || return 2
        meson setup "$dir" >"${TMPDIR:-/tmp}/vexil-lint-setup.log" 2>&1 || {
            tail -n 30 "${TMPDIR:-/tmp}/vexil-lint-setup.log" >&2
            say "meson setup $dir failed" >&2
            return 2
        }
    fi
    printf '%s\n' "$dir"
}

run_tidy() {
    need clang-tidy python3 || return 2
    local dir out rc=0 files=()
    dir=$(lint_build_dir "${1:-}") || return 2
    mapfile -t files < <(ls server/*.c)
    out=$(mktemp -d) || return 2
    say "clang-tidy: ${#files[@]} files with $dir/compile_commands.json, $NPROC at a time"
    # One output file per source: parallel runs must not interleave lines.
    # shellcheck disable=SC2016 # $1..$3 are the inner sh's arguments
    printf '%s\n' "${files[@]}" | xargs -P "$NPROC" -I{} sh -c \
        'clang-tidy -p "$1" --quiet "$2" >"$3/$(basename "$2").txt" 2>&1; echo $? >"$3/$(basename "$2").rc"' \
        sh "$dir" {} "$out"
    cat "$out"/*.txt >"$out/all"
    # clang-tidy exits non-zero on a compile error; that is a finding too
    # ([clang-diagnostic-error]), unless it printed nothing we can read.
    if grep -q 'Error while processing\|Could not auto-detect compilation database' "$out/all" &&
        ! grep -q '\[clang-diagnostic-' "$out/all"; then
        grep -B5 'Error while processing' "$out/all" | head -n 40
        rc=1
    fi
    filter_findings clang-tidy "$out/all" "$dir" || rc=$?
    rm -rf "$out"
    return "$rc"
}

cmd_lint() {
    local rc=0 r
    step "lint:clang-format" run_format || { r=$?; [ "$r" -gt "$rc" ] && rc=$r; }
    step "lint:cppcheck" run_cppcheck || { r=$?; [ "$r" -gt "$rc" ] && rc=$r; }
    step "lint:clang-tidy" run_tidy "${1:-}" || { r=$?; [ "$r" -gt "$rc" ] && rc=$r; }
    return "$rc"
}

# ---------------------------------------------------------------- coverage

# The daemon is multi-threaded: count with atomic updates, or racing
# increments corrupt the counters (gcov then reports negative hits).
cov_build() {
    meson_build "$1" "${TMPDIR:-/tmp}/vexil-cov-setup.log" -Db_coverage=true -Dc_args=-fprofile-update=atomic
}

cov_postgres() {
    if [ -n "${VEXIL_TEST_PG_URL:-}" ]; then
        say "PostgreSQL: $VEXIL_TEST_PG_URL (from the environment)"
        return 0
    fi
    pg_start_throwaway vexil-cov || return 1
    say "PostgreSQL: $VEXIL_TEST_PG_URL (private, stopped on exit)"
}

cov_unit() {
    meson test -C "$1" --print-errorlogs --num-processes "$NPROC"
}

cov_integration() {
    VEXIL_BIN="$ROOT/$1/vexil" timeout --kill-after=10 1500 \
        node --test --test-concurrency="$JOBS" --test-reporter=spec tests/integration/
}

cov_report() {
    local dir=$1
    mkdir -p "$dir/coverage"
    gcovr --root . --filter 'server/' -j "$NPROC" --txt --print-summary \
        --html-details "$dir/coverage/index.html" \
        --fail-under-line "$COVERAGE_MIN" "$dir"
    local rc=$?
    [ "$rc" -ne 0 ] && say "line coverage of server/ is below $COVERAGE_MIN % (or gcovr failed)" >&2
    say "HTML report: $dir/coverage/index.html"
    return "$rc"
}

cmd_coverage() {
    local dir=${1:-build/cov} rc=0
    need meson ninja node gcovr python3 || return 2
    case $dir in /*) dir=$(realpath --relative-to="$ROOT" "$dir") ;; esac
    trap pg_stop_throwaway EXIT
    trap 'exit 130' INT TERM
    step "coverage:build $dir" cov_build "$dir" || return 1
    step "coverage:postgres" cov_postgres || return 1
    step "coverage:unit" cov_unit "$dir" || rc=1
    step "coverage:integration" cov_integration "$dir" || rc=1
    step "coverage:report (>= $COVERAGE_MIN % of lines)" cov_report "$dir" || rc=1
    [ "$rc" -ne 0 ] && say "coverage gate failed" >&2
    return "$rc"
}

# ---------------------------------------------------------------- main

usage() {
    say "usage: tests/quality.sh coverage [BUILDDIR] | coverage-report BUILDDIR | lint [BUILDDIR] | format | cppcheck | tidy [BUILDDIR] | all"
}

main() {
    local cmd=${1:-} t0 rc=0
    [ $# -gt 0 ] && shift
    t0=$(now)
    case $cmd in
    coverage) cmd_coverage "$@" || rc=$? ;;
    coverage-report)
        need gcovr || return 2
        step "coverage:report (>= $COVERAGE_MIN % of lines)" cov_report "${1:?BUILDDIR}" || rc=$?
        ;;
    lint) cmd_lint "$@" || rc=$? ;;
    format) step "lint:clang-format" run_format || rc=$? ;;
    cppcheck) step "lint:cppcheck" run_cppcheck || rc=$? ;;
    tidy) step "lint:clang-tidy" run_tidy "$@" || rc=$? ;;
    all)
        cmd_lint || rc=$?
        cmd_coverage "$@" || { [ "$rc" -eq 0 ] && rc=1; }
        ;;
    -h | --help)
        usage
        return 0
        ;;
    *)
        usage >&2
        return 2
        ;;
    esac
    say "quality $cmd: $([ "$rc" -eq 0 ] && echo ok || echo FAILED) in $(elapsed "$t0")"
    return "$rc"
}

main "$@"
