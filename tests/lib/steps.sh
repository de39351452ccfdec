# tests/lib/steps.sh -- what the test scripts share for saying what they do:
# say, now, elapsed, and step (run one named step between a header and a
# footer with its outcome and duration).  Source it.

say() { printf '%s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# step NAME FUNCTION [ARGS...]: run it between a header and a footer with
# its outcome and duration; returns its status.
step() {
    local name=$1 t0 rc=0
    shift
    say "--> [$name]"
    t0=$(now)
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        say "<-- [$name] ok in $(elapsed "$t0")"
    else
        say "<-- [$name] FAILED (status $rc) in $(elapsed "$t0")"
    fi
    return "$rc"
}
