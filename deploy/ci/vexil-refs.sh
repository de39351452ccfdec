#!/usr/bin/env bash
# vexil-refs.sh -- a CI step: fail the build when the code names a flag that
# was deleted in vexil (an unknown flag evaluates to off, silently), or, if
# asked, one that is due for removal.  It runs `vexil refs` over the paths
# (docs/operations.md §3, "Where the code still uses a flag").
#
# Usage: vexil-refs.sh [--help] [PATH...]     (default: the current directory)
#
# Environment -- where the flag names come from (the first that is set):
#   VEXIL_DATABASE_URL  the vexil database; a role that may only read it is
#                       enough.  Knows the live flags and the deleted ones:
#                       the only way to catch a deleted flag.
#   VEXIL_SERVER_URL    a vexil server, with VEXIL_TOKEN an admin token.
#                       Knows the live flags only: deleted flags are not
#                       seen, so use it with VEXIL_REFS_FAIL_ON=stale.
# and:
#   VEXIL_REFS_FAIL_ON  unknown (default): fail on a deleted flag; stale: also
#                       on a flag due for removal; none: report only
#   VEXIL_REFS_ARGS     more options for vexil refs, split on spaces
#                       (e.g. --days 45 --max-file-size 2000000)
#   VEXIL_BIN           the vexil program (default: vexil on PATH)
#
# Prints the references that fail the build (and those to stale flags, as a
# reminder, when they do not), then one summary line.
# Exit status: 0 pass, 1 fail the build, 2 error (bad setting, vexil failed).

set -uo pipefail

PROG=vexil-refs
VEXIL=${VEXIL_BIN:-vexil}
FAIL_ON=${VEXIL_REFS_FAIL_ON:-unknown}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 2
}

case ${1:-} in
-h | --help)
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
esac

case $FAIL_ON in
unknown | stale | none) ;;
*) die "VEXIL_REFS_FAIL_ON must be unknown, stale or none, not '$FAIL_ON'" ;;
esac
if [ -n "${VEXIL_DATABASE_URL:-}" ]; then
    SOURCE=(--database "$VEXIL_DATABASE_URL")
elif [ -n "${VEXIL_SERVER_URL:-}" ]; then
    # The token stays in the environment (VEXIL_TOKEN), out of the process list.
    [ -n "${VEXIL_TOKEN:-}" ] || die "VEXIL_SERVER_URL needs VEXIL_TOKEN (an admin token)"
    SOURCE=(--server "$VEXIL_SERVER_URL")
else
    die "set VEXIL_DATABASE_URL, or VEXIL_SERVER_URL and VEXIL_TOKEN"
fi
read -r -a EXTRA <<<"${VEXIL_REFS_ARGS:-}"
[ $# -gt 0 ] || set -- .

OUT=$(mktemp) || die "mktemp failed"
trap 'rm -f "$OUT"' EXIT
"$VEXIL" refs "${SOURCE[@]}" --fail-on "$FAIL_ON" "${EXTRA[@]}" -- "$@" >"$OUT"
rc=$?
[ "$rc" -le 1 ] || die "'vexil refs' failed (exit status $rc)"

total=$(wc -l <"$OUT")
unknown=$(grep -c ' (unknown: [^)]*)$' "$OUT")
stale=$(grep -c ' (stale: [^)]*)$' "$OUT")
if [ "$unknown" -gt 0 ]; then
    printf 'Deleted flags the code still names (they evaluate to off):\n'
    grep ' (unknown: [^)]*)$' "$OUT"
    printf '\n'
fi
if [ "$stale" -gt 0 ]; then
    printf 'Flags due for removal that the code still names:\n'
    grep ' (stale: [^)]*)$' "$OUT"
    printf '\n'
fi
printf '%s: %d references to flags in the code: %d to deleted flags, %d to flags due for removal\n' \
    "$PROG" "$total" "$unknown" "$stale"
if [ "$rc" -eq 1 ]; then
    printf '%s: failing the build (VEXIL_REFS_FAIL_ON=%s): remove these references, or bring the flag back in vexil\n' \
        "$PROG" "$FAIL_ON"
fi
exit "$rc"
