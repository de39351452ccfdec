#!/usr/bin/env bash
# deploy/quickstart.sh -- a working vexil on this machine, from a fresh clone, as root.
#
#   sudo deploy/quickstart.sh            build, start PostgreSQL, migrate, serve
#   sudo deploy/quickstart.sh --stop-db  stop the quick start's PostgreSQL
#
# First run: installs the missing Debian packages, builds build/release,
# creates a private PostgreSQL cluster in .vexil/pg (git-ignored) on
# 127.0.0.1:5433 (VEXIL_PG_PORT to change), creates database `vexil`, applies
# the migrations, creates an admin token and prints it once, then runs
# `vexil serve` on 127.0.0.1:8080 (VEXIL_LISTEN to change) in the foreground.
# Later runs reuse the build, the cluster and the database, and create no token.
#
# The cluster trusts local connections (it listens on 127.0.0.1 only): it is
# for trying vexil on one machine, not for production (see deploy/ for that).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
STATE="$ROOT/.vexil"
PGDIR="$STATE/pg"
MARKER="$STATE/admin-token-created"
LISTEN=${VEXIL_LISTEN:-127.0.0.1:8080}
DEBS=(build-essential pkg-config meson ninja-build libmicrohttpd-dev libpq-dev libjansson-dev zlib1g-dev libcurl4-openssl-dev
    uuid-dev postgresql-15)

say() { printf 'quickstart: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# shellcheck source=tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
export PG_PORT=${VEXIL_PG_PORT:-5433}
export PG_FSYNC=on
export PG_FIX_PARENTS=1 # a checkout under /root: let postgres through to .vexil/pg

if [ "${1:-}" = --stop-db ]; then
    pg_stop "$PGDIR"
    say "PostgreSQL in $PGDIR stopped"
    exit 0
elif [ $# -gt 0 ]; then
    echo "usage: $0 [--stop-db]" >&2
    exit 2
fi

# --- packages -------------------------------------------------------------------
missing=()
for p in "${DEBS[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root, or install them first"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -q "${missing[@]}"
fi

# --- build ----------------------------------------------------------------------
# werror stays on in the development builds (tests/run.sh); a user's compiler,
# newer or at another optimisation level, must not stop the quick start over a warning.
# The unit tests are not built here (-Dtests=false): serving needs only the
# runtime libraries, not the test framework.  Any failure shows its reason.
mkdir -p "$STATE"
if [ ! -f build/release/build.ninja ]; then
    rm -rf build/release
    meson setup build/release --buildtype=release -Dwerror=false -Dtests=false \
        >"$STATE/meson-setup.log" 2>&1 || {
        tail -n 30 "$STATE/meson-setup.log" >&2
        die "meson setup failed (above; whole log in $STATE/meson-setup.log)"
    }
fi
say "building build/release"
meson compile -C build/release >"$STATE/meson-compile.log" 2>&1 || {
    tail -n 30 "$STATE/meson-compile.log" >&2
    die "build failed (above; whole log in $STATE/meson-compile.log)"
}
VEXIL="$ROOT/build/release/vexil"

# --- database -------------------------------------------------------------------
pg_start "$PGDIR" || die "could not start PostgreSQL in $PGDIR"
ADMIN_URL=$VEXIL_TEST_PG_URL
DB_URL="postgresql://postgres@127.0.0.1:$PGPORT/vexil"
if [ "$(psql -X -At -d "$ADMIN_URL" -c "SELECT 1 FROM pg_database WHERE datname = 'vexil'")" != 1 ]; then
    say "creating database vexil"
    psql -X -q -d "$ADMIN_URL" -c 'CREATE DATABASE vexil' || die "could not create database vexil"
fi
"$VEXIL" migrate --database "$DB_URL" || die "vexil migrate failed"

# --- first admin token ----------------------------------------------------------
if [ ! -f "$MARKER" ]; then
    secret=$("$VEXIL" token create --name quickstart-admin --role admin --database "$DB_URL") ||
        die "could not create the admin token"
    date -u +%FT%TZ >"$MARKER"
    cat <<EOF

  ======================================================================
  Admin token (shown this once; vexil keeps only its hash):

      $secret

  Save it now. Open http://$LISTEN/ and paste it, or:
      curl -H 'Authorization: Bearer $secret' http://$LISTEN/api/flags
  ======================================================================

EOF
else
    say "reusing the database; no new token (the admin token was shown on the first run)."
    say "another token: $VEXIL token create --name NAME --role admin|client --database '$DB_URL'"
fi

say "PostgreSQL keeps running after vexil stops; stop it with: $0 --stop-db"
say "serving on http://$LISTEN/ (Ctrl-C to stop)"
exec "$VEXIL" serve --listen "$LISTEN" --database "$DB_URL" --web "$ROOT/web"
