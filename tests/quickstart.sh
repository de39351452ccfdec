#!/usr/bin/env bash
# tests/quickstart.sh -- the README's first command works on a machine that
# has only what serving needs.
#
# Runs deploy/quickstart.sh on a copy of this tree (what git tracks, plus
# files not yet committed, without ignored ones), with the unit-test library
# `check` hidden from pkg-config as on a fresh Debian 12 where it was never
# installed, a private PostgreSQL on a free port and vexil on another.  It
# passes when the server comes up, the printed admin token lists and creates
# flags, and the build holds no test program.  Everything it starts is
# stopped, and the copy removed, however it ends.  Loopback only; bounded.
#
# Prints one line "quickstart: N passed, N failed" and exits non-zero on a
# failure.  Used by tests/run.sh (stage quickstart).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORK=$(mktemp -d /tmp/vexil-quickstart.XXXXXX)
QS_PID=
PASS=0
FAIL=0

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || {
            echo "$p"
            return 0
        }
    done
    return 1
}

cleanup() {
    [ -n "$QS_PID" ] && kill "$QS_PID" 2>/dev/null && wait "$QS_PID" 2>/dev/null
    [ -x "$WORK/v/deploy/quickstart.sh" ] && "$WORK/v/deploy/quickstart.sh" --stop-db >/dev/null 2>&1
    [ -n "${QS_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        PASS=$((PASS + 1))
        echo "ok - $name"
    else
        FAIL=$((FAIL + 1))
        echo "not ok - $name"
    fi
}

mkdir -p "$WORK/v" "$WORK/bin"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$WORK/v"
# A pkg-config that has never heard of check.
cat >"$WORK/bin/pkg-config" <<'EOF'
#!/bin/sh
for a in "$@"; do
    case $a in check | check\ *) exit 1 ;; esac
done
exec /usr/bin/pkg-config "$@"
EOF
chmod +x "$WORK/bin/pkg-config"

PG_PORT_FREE=$(free_port) || exit 2
HTTP_PORT=$(free_port) || exit 2
(cd "$WORK/v" && PATH="$WORK/bin:$PATH" VEXIL_PG_PORT=$PG_PORT_FREE \
    VEXIL_LISTEN=127.0.0.1:$HTTP_PORT exec deploy/quickstart.sh >"$WORK/out.log" 2>&1) &
QS_PID=$!

# Up to 5 minutes for a release build on a busy 2-core machine.
up=false
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1; then
        up=true
        break
    fi
    kill -0 "$QS_PID" 2>/dev/null || break
    sleep 0.5
done
check "the quick start serves /healthz without the check library" $up
if ! $up; then
    tail -n 40 "$WORK/out.log"
    echo "quickstart: $PASS passed, $FAIL failed"
    exit 1
fi

token=$(grep -oE 'vx_[A-Za-z0-9_-]{43}' "$WORK/out.log" | head -n 1)
check "an admin token is printed once" test -n "$token"
check "the token lists flags" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$HTTP_PORT/api/flags")" = 200
check "the token creates a flag" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
        -d '{"name":"quickstart_flag"}' "http://127.0.0.1:$HTTP_PORT/api/flags")" = 201
check "no test program was built" test ! -e "$WORK/v/build/release/tests"
check "meson never looked for check" \
    sh -c "! grep -q 'Run-time dependency check' '$WORK/v/.vexil/meson-setup.log'"

echo "quickstart: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
