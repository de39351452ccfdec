# tests/lib/build.sh -- build one meson directory for the test scripts.
# Source it (after steps.sh, for say).
#
# meson_build DIR SETUP_LOG [MESON OPTIONS...]
#   Sets DIR up with the options when it has no build.ninja (a directory
#   without one is the wreck of a failed setup), else applies them with
#   `meson configure` (a developer's older build dir gets them too), compiles,
#   deletes coverage counts of earlier runs (they would add up with this
#   one), and checks that DIR/vexil exists.
meson_build() {
    local dir=$1 log=$2
    shift 2
    if [ ! -f "$dir/build.ninja" ]; then
        rm -rf "$dir"
        meson setup "$dir" -Dtests=true "$@" >"$log" 2>&1 || {
            tail -n 40 "$log"
            return 1
        }
    elif [ $# -gt 0 ]; then
        meson configure "$dir" "$@" >/dev/null || return 1
    fi
    meson compile -C "$dir" || return 1
    find "$dir" -name '*.gcda' -delete
    [ -x "$dir/vexil" ] || {
        say "$dir/vexil was not built" >&2
        return 1
    }
}
