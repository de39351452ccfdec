#!/usr/bin/env bash
# tests/bench/refs.sh -- how fast `vexil refs` finds flag names in a large tree,
# against grep with the same names.
#
# Why: `vexil refs` runs in CI on every build and from the daily cron job
# over whole repositories, with every flag name a team ever made.  One pass
# per file with all names at once must cost no more than the plain text
# search everybody already has.  Target: faster than `grep -rFwf`.
#
# How: a generated tree of BENCH_REFS_LINES lines (default 1 000 000) in
# BENCH_REFS_FILES files (default 1 000, in 50 directories) of code-like
# lines -- plain statements, string literals that are not flag names,
# literals shaped like flag names that are not flags (CSS classes, MIME
# types), comments that name flags without quotes, and about 3 % of lines
# that call a flag by name -- and a file of BENCH_REFS_NAMES flag names
# (default 10 000).  Then, BENCH_REPEAT times (default 3) and interleaved,
# after one warm-up run of each (so both read from the page cache):
#   vexil refs --names names.txt --fail-on none TREE    (release build)
#   LC_ALL=C grep -rFwf names.txt TREE                  (grep's fastest locale)
# each with its output to a file.  Prints the tree, each tool's median wall
# time, MB/s over the tree's bytes, and what it found, and the ratio.  The
# two do not find the same things: grep -w also counts a name in a comment
# or inside a longer literal ("checkout.v2" holds the word checkout); refs
# counts whole literals only.  grep is the yardstick of what a search with
# this many patterns costs, not a reference for the answer.
#
# Usage: tests/bench/refs.sh
#   BENCH_REFS_LINES=1000000 BENCH_REFS_FILES=1000 BENCH_REFS_NAMES=10000 BENCH_REPEAT=3
#   BENCH_REFS_THREADS  vexil's --threads (default: its own, the CPUs)
#   and the knobs of lib.sh (BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_MESON_ARGS, BENCH_KEEP).
# Prints figures; never fails on them (exit 0 whenever the measurement ran).
set -euo pipefail

. "$(dirname "$0")/lib.sh"

LINES=${BENCH_REFS_LINES:-1000000}
FILES=${BENCH_REFS_FILES:-1000}
NAMES=${BENCH_REFS_NAMES:-10000}
REFS_THREADS=${BENCH_REFS_THREADS:-}

for v in LINES FILES NAMES REPEAT; do
    case ${!v} in '' | *[!0-9]*) bench_die "$v must be a whole number" ;; esac
    [ "${!v}" -ge 1 ] || bench_die "$v must be at least 1"
done
[ -z "$REFS_THREADS" ] || case $REFS_THREADS in *[!0-9]*) bench_die "BENCH_REFS_THREADS must be a whole number" ;; esac

for t in python3 grep meson ninja; do
    command -v "$t" >/dev/null || bench_die "$t not found"
done
BENCH_WORK=$(mktemp -d /tmp/vexil-bench.XXXXXX) || bench_die "mktemp failed"
mkdir -p "$BENCH_WORK/log"
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

MACHINE_BEFORE=$(bench_machine_note)
bench_build_vexil

# ---------------------------------------------------------------- the tree

TREE=$BENCH_WORK/tree
bench_log "generating $LINES lines in $FILES files, $NAMES flag names"
python3 - "$TREE" "$BENCH_WORK/names.txt" "$LINES" "$FILES" "$NAMES" <<'PY'
import os, random, sys

tree, names_path, lines, files, n_names = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
rnd = random.Random(42)
words = ["checkout", "search", "billing", "invoice", "cart", "profile", "export", "upload",
         "banner", "pricing", "onboarding", "dashboard", "payments", "inbox", "reports"]
names = []
for i in range(n_names):
    w, v = rnd.choice(words), rnd.choice(words)
    names.append(rnd.choice([f"{w}_{v}_{i}", f"{w}-{v}-{i}", f"{w}.{v}.v{i}", f"exp{i:05d}"]))
with open(names_path, "w") as f:
    f.write("\n".join(names) + "\n")

plain = ["    total += items[i].price * {n};", "    const x{n} = compute(a, b) + {n};", "    }}",
         "", "    return result;", "    for (let i = 0; i < n; i++) {{"]
strings = ["    log.info(\"processing item %d of %d\", i, {n});",
           "    throw new Error('unexpected state: ' + state);",
           "    return fetch(`/api/items/${{id}}?page={n}`);",
           "    el.classList.add(\"btn-primary\");", "    headers['content-type'] = \"application/json\";",
           "import {{ useState }} from \"react\";", "    const label = t('{w}.title');",
           "    emit(\"{w}-updated\", {{ id }});"]
os.makedirs(tree, exist_ok=True)
per_file = lines // files
for f in range(files):
    d = os.path.join(tree, f"pkg{f % 50:02d}")
    os.makedirs(d, exist_ok=True)
    out = []
    count = per_file + (1 if f < lines % files else 0)
    for _ in range(count):
        r = rnd.random()
        n, w = rnd.randrange(1000), rnd.choice(words)
        if r < 0.03:
            out.append(f"    if (flags.isEnabled(\"{rnd.choice(names)}\")) {{")
        elif r < 0.06:
            out.append(f"    // {rnd.choice(names)}: remove after the rollout")
        elif r < 0.45:
            out.append(rnd.choice(strings).format(n=n, w=w))
        else:
            out.append(rnd.choice(plain).format(n=n))
    with open(os.path.join(d, f"file{f:05d}.js"), "w") as fh:
        fh.write("\n".join(out) + "\n")
PY
BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
NFILES=$(find "$TREE" -type f | wc -l)
NLINES=$(find "$TREE" -type f -exec cat {} + | wc -l)
MB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')

# ---------------------------------------------------------------- runs

VEXIL_ARGS=(refs --names "$BENCH_WORK/names.txt" --fail-on none)
[ -z "$REFS_THREADS" ] || VEXIL_ARGS+=(--threads "$REFS_THREADS")

# timed KEY CMD... : run once with stdout to $BENCH_WORK/KEY.out (a file:
# grep stops at the first match when its output is /dev/null); append the
# wall time in microseconds (bash's clock, no process of its own) to
# $BENCH_WORK/KEY.times.
timed() {
    local key=$1 t0 t1 rc=0
    shift
    t0=${EPOCHREALTIME/[.,]/}
    "$@" >"$BENCH_WORK/$key.out" 2>"$BENCH_WORK/log/$key.err" || rc=$?
    t1=${EPOCHREALTIME/[.,]/}
    # grep exits 1 when it finds nothing; anything else above 1 is a failure.
    [ "$rc" -le 1 ] || bench_die "$key failed ($rc): $(head -c 500 "$BENCH_WORK/log/$key.err")"
    echo $((t1 - t0)) >>"$BENCH_WORK/$key.times"
}

median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

bench_log "warm-up"
timed warm_vexil "$VEXIL" "${VEXIL_ARGS[@]}" "$TREE"
timed warm_grep env LC_ALL=C grep -rFwf "$BENCH_WORK/names.txt" "$TREE"
for i in $(seq 1 "$REPEAT"); do
    bench_log "run $i of $REPEAT"
    timed vexil "$VEXIL" "${VEXIL_ARGS[@]}" "$TREE"
    timed grep env LC_ALL=C grep -rFwf "$BENCH_WORK/names.txt" "$TREE"
done

V_US=$(median "$BENCH_WORK/vexil.times")
G_US=$(median "$BENCH_WORK/grep.times")
V_REFS=$(wc -l <"$BENCH_WORK/vexil.out")
G_LINES=$(wc -l <"$BENCH_WORK/grep.out")
mbs() { awk -v b="$BYTES" -v us="$1" 'BEGIN { printf "%.0f", b / us }'; }
secs() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }
RATIO=$(bench_ratio "$G_US" "$V_US")

echo
echo "vexil refs against grep -rFwf"
echo "$MACHINE_BEFORE"
printf 'tree: %s files, %s lines, %s MB; %s flag names\n' "$NFILES" "$NLINES" "$MB" "$NAMES"
echo
printf '%-38s %12s %8s  %s\n' "" "wall (median)" "MB/s" "found"
printf '%-38s %10s s %8s  %s\n' "vexil refs --names (threads: ${REFS_THREADS:-default})" "$(secs "$V_US")" "$(mbs "$V_US")" "$V_REFS references"
printf '%-38s %10s s %8s  %s\n' "LC_ALL=C grep -rFwf names.txt" "$(secs "$G_US")" "$(mbs "$G_US")" "$G_LINES lines"
echo
printf 'each run (us): vexil %s; grep %s\n' "$(paste -sd' ' "$BENCH_WORK/vexil.times")" "$(paste -sd' ' "$BENCH_WORK/grep.times")"
printf 'grep time / vexil time: %s (target > 1, faster than grep: %s)\n' "$RATIO" \
    "$(bench_verdict awk -v a="$G_US" -v b="$V_US" 'BEGIN { exit !(a > b) }')"
bench_machine_note
echo "RESULT bytes=$BYTES files=$NFILES lines=$NLINES names=$NAMES vexil_us=$V_US grep_us=$G_US vexil_refs=$V_REFS grep_lines=$G_LINES ratio=$RATIO"
