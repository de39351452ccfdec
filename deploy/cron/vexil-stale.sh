#!/usr/bin/env bash
# vexil-stale.sh -- tell every flag owner, once a day, which of their flags are
# due for removal from the code (docs/operations.md §3: older than --days, or rolled out to
# 100 % for more than --rolled-out-days).  Meant for cron: see crontab.example.
#
# It runs `vexil stale --json`, groups the stale flags by owner and, for each
# owner that has some:
#   - mails the list to the owner's address(es) from the owners file (see
#     owners.example) through `sendmail -t`, where a sendmail is installed;
#   - POSTs it as JSON to $VEXIL_STALE_WEBHOOK, when that is set (the body
#     carries a "text" field too, so Slack/Mattermost incoming webhooks show it).
# Stale flags that reach nobody that way are printed on stdout, so that cron
# mails them to its own MAILTO.
#
# With --refs PATH (an option of vexil stale, repeatable) or VEXIL_STALE_REFS,
# each flag in a message is followed by the lines of the code under those
# paths that still name it (`vexil refs`), so the owner knows what to delete.
#
# Usage: vexil-stale.sh [--help] [options of vexil stale, e.g. --days 60
#                        --rolled-out-days 14 --database URL]
#
# Environment:
#   VEXIL_BIN             the vexil program (default: vexil on PATH)
#   VEXIL_DATABASE_URL    the database, as for every vexil command
#   VEXIL_STALE_OWNERS    owners file (default /etc/vexil/owners; a missing
#                         default file just means no mail)
#   VEXIL_STALE_WEBHOOK   URL to POST each owner's list to (optional)
#   VEXIL_STALE_FROM      From: of the mails (default vexil@<host name>)
#   VEXIL_STALE_RETRIES   extra webhook attempts on a transient failure (default 2)
#   VEXIL_STALE_SENDMAIL  sendmail program (default: sendmail on PATH, else
#                         /usr/sbin/sendmail, else /usr/lib/sendmail)
#   VEXIL_STALE_REFS      checkouts of the code to search for each stale flag,
#                         separated by ':' (each becomes --refs PATH)
#
# Needs bash, jq, base64 (coreutils) and, for the webhook, curl.
#
# Exit status, as `vexil stale`: 0 no stale flag; 1 stale flags found and
# every message handed over; 2 error (vexil stale failed, a bad owners file,
# a missing tool, or a message that could not be handed over -- the others
# are still sent).

set -uo pipefail

PROG=vexil-stale
VEXIL=${VEXIL_BIN:-vexil}
WEBHOOK=${VEXIL_STALE_WEBHOOK:-}
RETRIES=${VEXIL_STALE_RETRIES:-2}
HOST=$(hostname -f 2>/dev/null || hostname 2>/dev/null || echo localhost)
FROM=${VEXIL_STALE_FROM:-vexil@$HOST}

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    say "error: $*"
    exit 2
}

case ${1:-} in
-h | --help)
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
esac

command -v jq >/dev/null || die "jq is required (apt-get install jq)"
command -v base64 >/dev/null || die "base64 (coreutils) is required"
[[ $RETRIES =~ ^[0-9]+$ ]] || die "VEXIL_STALE_RETRIES must be a whole number, not '$RETRIES'"
if [ -n "$WEBHOOK" ]; then
    command -v curl >/dev/null || die "VEXIL_STALE_WEBHOOK is set but curl is missing (apt-get install curl)"
fi

# ---------------------------------------------------------------- owners file

# OWNER ADDRESS[,ADDRESS...] per line; the address is the last field, the
# owner everything before it (so owners may contain spaces).  '*' is the
# address for owners without a line of their own, including flags without
# an owner.  Blank lines and lines starting with # are ignored.
declare -A ADDR=()
if [ -n "${VEXIL_STALE_OWNERS:-}" ]; then
    OWNERS_FILE=$VEXIL_STALE_OWNERS
    [ -r "$OWNERS_FILE" ] || die "cannot read the owners file $OWNERS_FILE"
else
    OWNERS_FILE=/etc/vexil/owners
    [ -r "$OWNERS_FILE" ] || OWNERS_FILE=
fi
if [ -n "$OWNERS_FILE" ]; then
    n=0
    addr_re='^[^@[:space:]<>(),;:"]+@[^@[:space:]<>(),;:"]+$'
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        if ! [[ $line =~ ^[[:space:]]*(.*[^[:space:]])[[:space:]]+([^[:space:]]+)[[:space:]]*$ ]]; then
            die "$OWNERS_FILE:$n: expected 'OWNER ADDRESS', got: $line"
        fi
        owner=${BASH_REMATCH[1]}
        addrs=${BASH_REMATCH[2]}
        IFS=, read -r -a list <<<"$addrs"
        [ ${#list[@]} -gt 0 ] || die "$OWNERS_FILE:$n: no address"
        for a in "${list[@]}"; do
            [[ $a =~ $addr_re ]] || die "$OWNERS_FILE:$n: '$a' is not a mail address"
        done
        ADDR[$owner]=$addrs
    done <"$OWNERS_FILE"
fi

# ---------------------------------------------------------------- sendmail

SENDMAIL=
if [ -n "${VEXIL_STALE_SENDMAIL:-}" ]; then
    if [ -x "$VEXIL_STALE_SENDMAIL" ] || command -v "$VEXIL_STALE_SENDMAIL" >/dev/null; then
        SENDMAIL=$VEXIL_STALE_SENDMAIL
    fi
elif command -v sendmail >/dev/null; then
    SENDMAIL=sendmail
elif [ -x /usr/sbin/sendmail ]; then
    SENDMAIL=/usr/sbin/sendmail
elif [ -x /usr/lib/sendmail ]; then
    SENDMAIL=/usr/lib/sendmail
fi

# ---------------------------------------------------------------- vexil stale

REFS_ARGS=()
if [ -n "${VEXIL_STALE_REFS:-}" ]; then
    IFS=: read -r -a refs_paths <<<"$VEXIL_STALE_REFS"
    for p in "${refs_paths[@]}"; do
        [ -n "$p" ] || die "VEXIL_STALE_REFS has an empty path: '$VEXIL_STALE_REFS'"
        REFS_ARGS+=(--refs "$p")
    done
fi

json=$("$VEXIL" stale --json "${REFS_ARGS[@]}" "$@")
rc=$?
case $rc in
0) exit 0 ;;
1) ;;
*) die "'vexil stale' failed (exit status $rc)" ;;
esac
jq -e '.flags | type == "array" and length > 0' >/dev/null 2>&1 <<<"$json" ||
    die "'vexil stale --json' printed something other than a non-empty flag list"

# ---------------------------------------------------------------- messages

# Text from the database (owners, names) is free text and may hold control
# characters: in a mail or on a terminal they would act (a CR LF in an owner
# would start a new mail header, an ESC sequence would drive the terminal).
# jq's `visible` shows them escaped, as `vexil stale` does in its table
# (docs/decisions.md, "Text for people"): \\ \n \r \t, \xHH for the other C0
# and DEL, \uHHHH for C1, U+2028, U+2029 and the bidirectional controls.
# shellcheck disable=SC2016 # $w and $n are jq's
JQ_VISIBLE='
def hex($w): . as $n | [range($w - 1; -1; -1) | ($n / pow(16; .) | floor) % 16]
    | map("0123456789abcdef"[.:.+1]) | join("");
def visible: [explode[]
    | if . == 92 then "\\\\" elif . == 10 then "\\n" elif . == 13 then "\\r" elif . == 9 then "\\t"
      elif . < 32 or . == 127 then "\\x" + hex(2)
      elif (. >= 128 and . < 160) or . == 1564 or . == 8206 or . == 8207
        or (. >= 8232 and . <= 8238) or (. >= 8294 and . <= 8297) then "\\u" + hex(4)
      else [.] | implode end] | join("");
'

# The owner's flags as an aligned text table (jq: name, age, reasons), each
# followed by the lines of the code that name it when vexil stale was given
# --refs.
table() {
    jq -r --arg o "$1" "$JQ_VISIBLE"'
        [.flags[] | select(.owner == $o) | .shown = (.name | visible)] as $f
        | ([$f[].shown | length] | max) as $w
        | $f[]
        | "  " + .shown + (" " * ($w - (.shown | length) + 2))
          + (.age_days | tostring) + " days old" + "  "
          + (.stale | map(visible) | join(", "))
          + if .references == null then ""
            elif (.references | length) == 0 then "\n      (no references in the code)"
            else .references | map("\n      " + (.path | visible) + ":" + (.line | tostring))
                 | join("") end' <<<"$json"
}

# Did vexil stale look for references (--refs)?
with_refs() { jq -e '[.flags[] | has("references")] | any' >/dev/null <<<"$json"; }

count() { jq --arg o "$1" '[.flags[] | select(.owner == $o)] | length' <<<"$json"; }

# The owner as shown to people: escaped (see JQ_VISIBLE), never empty; at
# most $2 characters and "..." when $2 is given (for the Subject).
label() {
    if [ -n "$1" ]; then
        jq -jn --arg s "$1" --argjson max "${2:-0}" "$JQ_VISIBLE"'
            $s | visible | if $max > 0 and length > $max then .[:$max] + "..." else . end'
    else
        printf '(no owner)'
    fi
}

# RFC 2047 for a Subject that is not plain ASCII.  Its text comes from
# label(), so it holds no control character; any that did would be dropped
# here rather than end the header.
subject() {
    local s
    s=$(printf '%s' "$1" | LC_ALL=C tr -d '\000-\037\177')
    if LC_ALL=C grep -q '[^ -~]' <<<"$s"; then
        printf '=?UTF-8?B?%s?=' "$(printf '%s' "$s" | base64 -w0)"
    else
        printf '%s' "$s"
    fi
}

body() {
    local owner=$1 n=$2
    printf 'Hello %s,\n\n' "$(label "$owner")"
    if [ "$n" -eq 1 ]; then
        printf 'this feature flag of yours is due for removal from the code\n'
    else
        printf 'these %d feature flags of yours are due for removal from the code\n' "$n"
    fi
    printf '(older than the age limit, or rolled out to 100 %% for longer than the limit):\n\n'
    table "$owner"
    if with_refs; then
        printf '\nUnder each flag: the lines of the code that still name it.\n'
    fi
    printf '\nRemove the checks from the code and deploy, then delete the flag in vexil.\n'
    printf '\n-- \nvexil-stale on %s\n' "$HOST"
}

send_mail() {
    local owner=$1 to=$2 n=$3 subj
    if [ "$n" -eq 1 ]; then
        subj="[vexil] 1 flag of $(label "$owner" 60) is due for removal"
    else
        subj="[vexil] $n flags of $(label "$owner" 60) are due for removal"
    fi
    {
        printf 'To: %s\n' "${to//,/, }"
        printf 'From: %s\n' "$FROM"
        printf 'Subject: %s\n' "$(subject "$subj")"
        printf 'MIME-Version: 1.0\n'
        printf 'Content-Type: text/plain; charset=UTF-8\n'
        printf 'Content-Transfer-Encoding: 8bit\n'
        printf 'Auto-Submitted: auto-generated\n'
        printf '\n'
        body "$owner" "$n"
    } | "$SENDMAIL" -t -oi
}

send_webhook() {
    local owner=$1 to=$2 n=$3 text
    text=$(printf '%s flag%s of %s due for removal:\n%s' "$n" "$([ "$n" -eq 1 ] || echo s)" \
        "$(label "$owner")" "$(table "$owner")")
    jq -c --arg o "$owner" --arg to "$to" --arg text "$text" --arg host "$HOST" '{
        owner: $o,
        addresses: (if $to == "" then [] else ($to | split(",")) end),
        count: ([.flags[] | select(.owner == $o)] | length),
        flags: [.flags[] | select(.owner == $o)],
        text: $text,
        host: $host
      }' <<<"$json" |
        curl -sS --fail --max-time 15 --retry "$RETRIES" --retry-delay 1 \
            -H 'Content-Type: application/json' --data-binary @- -o /dev/null "$WEBHOOK"
}

failed=0
unrouted=()
mapfile -t owners < <(jq -r '[.flags[].owner] | unique | .[] | @base64' <<<"$json")
for enc in "${owners[@]}"; do
    # The sentinel keeps a trailing newline of the owner (command
    # substitution would drop it, and then no flag would match).
    owner=$(
        printf '%s' "$enc" | base64 -d
        printf x
    )
    owner=${owner%x}
    n=$(count "$owner")
    to=
    if [ -n "$owner" ] && [ -n "${ADDR[$owner]+set}" ]; then
        to=${ADDR[$owner]}
    elif [ -n "${ADDR['*']+set}" ]; then
        to=${ADDR['*']}
    fi
    reached=0
    if [ -n "$to" ]; then
        if [ -z "$SENDMAIL" ]; then
            say "no sendmail found: cannot mail $(label "$owner") <$to>"
        elif send_mail "$owner" "$to" "$n"; then
            reached=1
        else
            say "sendmail failed for $(label "$owner") <$to>"
            failed=1
        fi
    fi
    if [ -n "$WEBHOOK" ]; then
        if send_webhook "$owner" "$to" "$n"; then
            reached=1
        else
            say "the webhook failed for $(label "$owner")"
            failed=1
        fi
    fi
    [ "$reached" -eq 1 ] || unrouted+=("$owner")
done

# What reached nobody goes to cron's MAILTO.
if [ ${#unrouted[@]} -gt 0 ]; then
    printf 'Stale flags that no owner address or webhook received:\n'
    for owner in "${unrouted[@]}"; do
        printf '\n%s:\n' "$(label "$owner")"
        table "$owner"
    done
fi

[ "$failed" -eq 0 ] || exit 2
exit 1
