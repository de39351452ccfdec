// Pure helpers of the admin page: no DOM, no network, so they can be tested in
// node as well (tests/browser/util.test.mjs).

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
export const QUICK_STEPS = [0, 5, 25, 50, 100];
export const MAX_DESCRIPTION = 1000;
export const MAX_OWNER = 200;
export const MAX_USERS = 10000;

/** Fields a person edits; the rest (revision, timestamps) is the server's. */
export const EDITABLE = ['enabled', 'percentage', 'users', 'segments', 'description', 'owner'];
/** A flag's state, one per environment. */
export const STATE_FIELDS = ['enabled', 'percentage', 'users', 'segments'];
/** A flag's definition, shared by every environment. */
export const DEF_FIELDS = ['description', 'owner'];
export const ENV_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const MAX_SEGMENT_USERS = 100000;

const OFF_STATE = Object.freeze({ enabled: false, percentage: 0, users: [], segments: [] });

/**
 * A flag's state in one environment: {enabled, percentage, users, segments}.
 * Admin answers carry every environment under "environments"; an answer
 * without it (or without that environment) falls back on the top-level fields
 * for the default environment, and on "off" for the others.
 */
export function stateOf(flag, env, defaultEnv) {
  if (!flag) return OFF_STATE;
  const e = flag.environments && env ? flag.environments[env] : undefined;
  if (e) return e;
  if (!flag.environments || env === undefined || env === defaultEnv) {
    return { enabled: !!flag.enabled, percentage: flag.percentage || 0, users: flag.users || [], segments: flag.segments || [] };
  }
  return OFF_STATE;
}

/** The state fields of a state, copied (what "copy from A to B" sends). */
export function copyState(st) {
  return { enabled: !!st.enabled, percentage: st.percentage || 0, users: [...(st.users || [])], segments: [...(st.segments || [])] };
}

/** The flag a patch body would make (top-level state fields go to defaultEnv). */
export function applyPatch(flag, patch, defaultEnv) {
  const out = { ...flag };
  for (const f of DEF_FIELDS) if (f in patch) out[f] = patch[f];
  const envs = { ...(flag.environments || {}) };
  const top = {};
  for (const f of STATE_FIELDS) if (f in patch) top[f] = patch[f];
  if (Object.keys(top).length) {
    if (flag.environments && defaultEnv !== undefined) envs[defaultEnv] = { ...stateOf(flag, defaultEnv, defaultEnv), ...top };
    Object.assign(out, top);
  }
  for (const [env, st] of Object.entries(patch.environments || {})) envs[env] = { ...stateOf(flag, env, defaultEnv), ...st };
  if (flag.environments || patch.environments) out.environments = envs;
  return out;
}

/** Splits pasted text on newlines, commas and whitespace; drops empties and repeats. */
export function parseUsers(text) {
  return countUsers(text).users;
}

/** parseUsers, also saying how many repeats were dropped: {users, repeated}. */
export function countUsers(text) {
  const seen = new Set();
  const out = [];
  let repeated = 0;
  for (const part of String(text).split(/[\s,]+/)) {
    if (!part) continue;
    if (seen.has(part)) repeated++;
    else {
      seen.add(part);
      out.push(part);
    }
  }
  return { users: out, repeated };
}

/** Byte-order (UTF-8) comparison, the order the server keeps users in. */
export function compareBytes(a, b) {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/** Problems with a list of user ids, as sentences; empty when fine. */
export function checkUsers(users, max = MAX_USERS, what = 'a flag') {
  const problems = [];
  const long = users.filter((u) => utf8Length(u) > 256);
  if (long.length) problems.push(`${long.length} user id(s) longer than 256 bytes, e.g. "${long[0].slice(0, 40)}…"`);
  if (users.length > max) problems.push(`${what} holds at most ${max} users; this would make ${users.length}`);
  return problems;
}

/** Whether a name is allowed, with the reason when not. */
export function checkName(name) {
  if (!name) return 'Give the flag a name.';
  if (name.length > 100) return 'A name has at most 100 characters.';
  if (!NAME_RE.test(name)) return 'A name starts with a letter or digit and holds only letters, digits, "_", "." and "-".';
  return '';
}

/** "older_than_30_days" -> "older than 30 days"; "rolled_out_14_days" -> "at 100 % for over 14 days". */
export function staleText(reason) {
  let m = /^older_than_(\d+)_days$/.exec(reason);
  if (m) return `older than ${m[1]} days`;
  m = /^rolled_out_(\d+)_days$/.exec(reason);
  if (m) return `fully rolled out for over ${m[1]} days`;
  return String(reason).replace(/_/g, ' ');
}

export function sameValue(a, b) {
  return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);
}

/** Users added and removed between two lists. */
export function usersDelta(before, after) {
  const a = new Set(before || []);
  const b = new Set(after || []);
  return {
    added: [...b].filter((u) => !a.has(u)),
    removed: [...a].filter((u) => !b.has(u)),
  };
}

/**
 * Editable fields that differ between two flag objects (either may be null):
 * [{field, before, after}] in a fixed order, and for flags that carry
 * "environments", [{env, field, before, after}] for each environment's state
 * (in the order of envOrder, then any other) before the definition fields.
 */
export function diffFlags(before, after, envOrder = []) {
  const out = [];
  const hasEnvs = (before && before.environments) || (after && after.environments);
  if (!hasEnvs) {
    for (const field of EDITABLE) {
      const b = before ? before[field] : undefined;
      const a = after ? after[field] : undefined;
      if (!sameValue(b, a)) out.push({ field, before: b, after: a });
    }
    return out;
  }
  const names = [...envOrder];
  for (const o of [before, after]) for (const e of Object.keys((o && o.environments) || {})) if (!names.includes(e)) names.push(e);
  for (const env of names) {
    const b = before && before.environments ? before.environments[env] : undefined;
    const a = after && after.environments ? after.environments[env] : undefined;
    if (!b && !a) continue;
    for (const field of STATE_FIELDS) {
      const bv = b ? b[field] : undefined;
      const av = a ? a[field] : undefined;
      if (!sameValue(bv, av)) out.push({ env, field, before: bv, after: av });
    }
  }
  for (const field of DEF_FIELDS) {
    const b = before ? before[field] : undefined;
    const a = after ? after[field] : undefined;
    if (!sameValue(b, a)) out.push({ field, before: b, after: a });
  }
  return out;
}

/** What copying state `from` over state `to` changes: [{field, before, after}] (before = to's). */
export function diffStates(to, from) {
  const out = [];
  for (const field of STATE_FIELDS) {
    const b = to ? to[field] : undefined;
    const a = from ? from[field] : undefined;
    if (!sameValue(b ?? (field === 'users' || field === 'segments' ? [] : b), a ?? (field === 'users' || field === 'segments' ? [] : a))) out.push({ field, before: b, after: a });
  }
  return out;
}

/** A one-line summary of a state: "on, 25 %, 3 users, 1 segment". */
export function stateSummary(st) {
  const parts = [st.enabled ? 'on' : 'off', `${st.percentage || 0} %`];
  const nu = (st.users || []).length;
  const ns = (st.segments || []).length;
  if (nu) parts.push(plural(nu, 'user', 'users'));
  if (ns) parts.push(plural(ns, 'segment', 'segments'));
  return parts.join(', ');
}

/** A field's value in words, for diffs and summaries. */
export function formatValue(field, v) {
  if (v === undefined || v === null) return '—';
  switch (field) {
    case 'enabled':
      return v ? 'on' : 'off';
    case 'percentage':
      return v + ' %';
    case 'users':
      return v.length === 1 ? '1 user' : `${v.length} users`;
    case 'segments':
      return v.length ? v.join(', ') : 'none';
    case 'description':
    case 'owner':
      return v === '' ? '(empty)' : String(v);
    default:
      return typeof v === 'string' ? v : JSON.stringify(v);
  }
}

export const FIELD_LABELS = {
  enabled: 'On/off',
  percentage: 'Rollout',
  users: 'Listed users',
  segments: 'Segments',
  description: 'Description',
  owner: 'Owner',
};

/**
 * Short phrase for a patch body, e.g. "turn it on", "set rollout to 25 %",
 * "in staging: turn it off".
 */
export function describePatch(patch, flag, defaultEnv) {
  const parts = describeFields(patch, flag || {});
  for (const [env, st] of Object.entries(patch.environments || {})) {
    const words = describeFields(st, stateOf(flag, env, defaultEnv));
    parts.push(`in ${env}: ${words.join(', ') || 'no change'}`);
  }
  return parts.join(', ') || 'no change';
}

function describeFields(patch, current) {
  const parts = [];
  for (const field of EDITABLE) {
    if (!(field in patch)) continue;
    const v = patch[field];
    if (field === 'enabled') parts.push(v ? 'turn it on' : 'turn it off');
    else if (field === 'percentage') parts.push(`set rollout to ${v} %`);
    else if (field === 'users' || field === 'segments') {
      const d = usersDelta(current ? current[field] : [], v);
      const bits = [];
      const noun = field === 'segments' ? 'segment ' : '';
      if (d.added.length) bits.push(`add ${noun}${listSome(d.added)}`);
      if (d.removed.length) bits.push(`remove ${noun}${listSome(d.removed)}`);
      parts.push(bits.length ? bits.join(' and ') : `keep the ${field} as they are`);
    } else parts.push(`set ${FIELD_LABELS[field].toLowerCase()} to "${v}"`);
  }
  return parts;
}

export function listSome(items, max = 5) {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** Sort key functions for the list; state keys read the environment in focus. */
const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const SORTERS = {
  name: () => byName,
  enabled: (st) => (a, b) => Number(st(b).enabled) - Number(st(a).enabled),
  percentage: (st) => (a, b) => st(a).percentage - st(b).percentage,
  users: (st) => (a, b) => (st(a).users || []).length - (st(b).users || []).length,
  owner: () => (a, b) => (a.owner || '').localeCompare(b.owner || ''),
  age: () => (a, b) => (a.age_days ?? 0) - (b.age_days ?? 0),
  stale: () => (a, b) => (b.stale ? b.stale.length : 0) - (a.stale ? a.stale.length : 0),
};

/** Sorted copy; ties broken by name so the order is stable. env: whose state the state keys read. */
export function sortFlags(flags, key = 'name', dir = 1, env, defaultEnv) {
  const st = (f) => stateOf(f, env, defaultEnv);
  const cmp = (SORTERS[key] || SORTERS.name)(st);
  return [...flags].sort((a, b) => dir * cmp(a, b) || byName(a, b));
}

/**
 * Filter text matches name (substring, case-insensitive); "owner:x" and
 * "is:stale|on|off" narrow further (on/off in environment env).
 */
export function matchesFilter(flag, filter, env, defaultEnv) {
  const words = String(filter).trim().toLowerCase().split(/\s+/).filter(Boolean);
  for (const w of words) {
    if (w === 'is:stale') {
      if (!(flag.stale && flag.stale.length)) return false;
    } else if (w === 'is:on') {
      if (!stateOf(flag, env, defaultEnv).enabled) return false;
    } else if (w === 'is:off') {
      if (stateOf(flag, env, defaultEnv).enabled) return false;
    } else if (w.startsWith('owner:')) {
      if (!(flag.owner || '').toLowerCase().includes(w.slice(6))) return false;
    } else if (!flag.name.toLowerCase().includes(w)) return false;
  }
  return true;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function timeAgo(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  const d = Math.round(h / 24);
  return plural(d, 'day', 'days') + ' ago';
}

/**
 * When the flag was last evaluated in env (RFC 3339), or null for never. Admin
 * answers carry it in each environment's state; one without "environments"
 * has it at top level, for the default environment.
 */
export function evaluatedAt(flag, env, defaultEnv) {
  if (!flag) return null;
  if (flag.environments) {
    const e = env ? flag.environments[env] : undefined;
    return (e && e.last_evaluated_at) || null;
  }
  return env === undefined || env === defaultEnv ? flag.last_evaluated_at || null : null;
}

/**
 * How long ago, in one unit rounded down, for "last evaluated": "just now"
 * (under a minute, or a time ahead of this clock), "5 min ago", "3 h ago",
 * "3 d ago"; '' without a time.
 */
export function shortAgo(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.floor((now - t) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A flag never evaluated for this long (in an environment this old) stands out: a candidate for removal. */
export const UNUSED_DAYS = 7;

/**
 * Whether a flag counts as unused in an environment: never evaluated there
 * (lastEvaluated null) although both it and the environment (the times in
 * since, e.g. their created_at) are older than `days`. A time missing from
 * since does not hold it back.
 */
export function unusedFor(lastEvaluated, since, now = Date.now(), days = UNUSED_DAYS) {
  if (lastEvaluated !== null && lastEvaluated !== undefined) return false;
  const times = (since || []).map((s) => Date.parse(s)).filter((t) => !Number.isNaN(t));
  if (!times.length) return false;
  return now - Math.max(...times) >= days * 86400000;
}

/** Where the page's URL points: {env, view} from "#env=staging&view=segments" or "?env=staging". */
export function parseLocation(search, hash) {
  const q = new URLSearchParams(String(search || '').replace(/^\?/, ''));
  const h = new URLSearchParams(String(hash || '').replace(/^#/, ''));
  return { env: h.get('env') || q.get('env') || '', view: h.get('view') || q.get('view') || '' };
}

let timeFormat = null; // made once: the list may format thousands of times

/** Local date and time, e.g. "26 Nov 2026, 07:11". */
export function formatTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso || '');
  timeFormat ??= new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  return timeFormat.format(t);
}

// ---------------------------------------------------------------------------
// release plans (docs/api.md §8)

/** The template a plan starts from: 5 → 25 → 50 → 100 %, held an hour, a day, a day. */
export const PLAN_TEMPLATE = Object.freeze([
  Object.freeze({ percentage: 5, hold_seconds: 3600 }),
  Object.freeze({ percentage: 25, hold_seconds: 86400 }),
  Object.freeze({ percentage: 50, hold_seconds: 86400 }),
  Object.freeze({ percentage: 100 }),
]);
export const MAX_HOLD_SECONDS = 7776000; // 90 days
/** Units a hold is typed in: [unit, seconds, word]. */
export const HOLD_UNITS = [
  ['s', 1, 'seconds'],
  ['min', 60, 'minutes'],
  ['h', 3600, 'hours'],
  ['d', 86400, 'days'],
];
const UNIT_SECONDS = Object.fromEntries(HOLD_UNITS.map(([u, n]) => [u, n]));

/** A hold in the largest unit that divides it: 3600 -> {value: 1, unit: 'h'}, 90 -> {value: 90, unit: 's'}. */
export function splitHold(seconds) {
  for (const [unit, n] of [...HOLD_UNITS].reverse()) {
    if (seconds >= n && seconds % n === 0) return { value: seconds / n, unit };
  }
  return { value: seconds, unit: 's' };
}

/** What a typed hold is in seconds ("1.5", "h" -> 5400); NaN when the value is not a number. */
export function holdSeconds(value, unit) {
  const text = String(value ?? '').trim();
  const n = Number(text);
  if (!text || !Number.isFinite(n) || !UNIT_SECONDS[unit]) return NaN;
  return Math.round(n * UNIT_SECONDS[unit]);
}

/**
 * A length of time, exactly enough to read a hold by: "45 s", "1 min 30 s",
 * "1 h", "1 h 30 min", "1 d", "2 d 12 h" (two units at most).
 */
export function formatDuration(seconds) {
  let s = Math.round(Number(seconds));
  if (!Number.isFinite(s)) return '';
  if (s < 0) s = 0;
  const units = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  const i = units.findIndex(([, n]) => s >= n);
  if (i < 0) return '0 s';
  const [u1, n1] = units[i];
  const first = Math.floor(s / n1);
  const rest = s - first * n1;
  if (i + 1 < units.length) {
    const [u2, n2] = units[i + 1];
    const second = Math.floor(rest / n2);
    if (second) return `${first} ${u1} ${second} ${u2}`;
  }
  return `${first} ${u1}`;
}

/** A length of time in one rounded unit, for a countdown: "12 s", "23 min", "23 h", "2 d". */
export function formatApprox(seconds) {
  const s = Math.max(0, Math.round(Number(seconds)));
  if (!Number.isFinite(s)) return '';
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.round(s / 3600);
  if (h < 48) return `${h} h`;
  return `${Math.round(s / 86400)} d`;
}

/** "in 23 h" until iso; "due now" once it has passed; '' without a time. */
export function untilText(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.ceil((t - now) / 1000);
  return s <= 0 ? 'due now' : `in ${formatApprox(s)}`;
}

export const PLAN_STATUS_WORDS = {
  running: 'running',
  paused: 'paused',
  halted: 'halted',
  done: 'done',
  aborted: 'aborted',
};

/** Which actions the plan's status allows (docs/api.md §8). */
export function planActions(status) {
  return {
    pause: status === 'running',
    resume: status === 'paused',
    advance: status === 'running' || status === 'paused',
    abort: status === 'running' || status === 'paused' || status === 'halted',
  };
}

/** Whether a new plan may be started where this one is (none, or it has ended). */
export function canStartPlan(plan) {
  return !plan || plan.status === 'done' || plan.status === 'aborted' || plan.status === 'halted';
}

/** Whether the list shows the plan (it still matters: running, paused or halted). */
export function planShown(plan) {
  return !!plan && (plan.status === 'running' || plan.status === 'paused' || plan.status === 'halted');
}

/** The plan's steps in one line, the applied one in brackets: "5 % → [25 %] → 50 % → 100 %". */
export function planLadder(plan) {
  const steps = (plan && plan.steps) || [];
  return steps.map((s, i) => (i === plan.step ? `[${s.percentage} %]` : `${s.percentage} %`)).join(' → ');
}

/** The step that comes next, or null after the last. */
export function nextStep(plan) {
  const steps = (plan && plan.steps) || [];
  return plan && plan.step + 1 < steps.length ? steps[plan.step + 1] : null;
}

/** The index of the step a 400 answer names ("steps[2].hold_seconds must …"), or -1. */
export function planErrorStep(message) {
  const m = /\bsteps\[(\d+)\]/.exec(String(message || ''));
  return m ? Number(m[1]) : -1;
}

// ---------------------------------------------------------------------------
// webhooks (docs/api.md §9)

/** The event names a webhook can choose, in groups: [group, [[name, what it is], ...]]. */
export const WEBHOOK_EVENTS = Object.freeze([
  ['Flags', [
    ['flag.created', 'a flag was created'],
    ['flag.updated', 'a flag was changed, also turned off by an alert'],
    ['flag.deleted', 'a flag was deleted'],
    ['flag.reverted', 'a change was reverted from the history'],
    ['flag.plan_step', 'a release plan took a step'],
    ['flag.plan_halted', 'a release plan halted'],
  ]],
  ['Segments', [
    ['segment.created', 'a segment was created'],
    ['segment.updated', 'a segment was changed'],
    ['segment.deleted', 'a segment was deleted'],
  ]],
  ['Environments', [
    ['environment.created', 'an environment was created'],
    ['environment.updated', 'an environment was changed'],
    ['environment.deleted', 'an environment was deleted'],
  ]],
]);
export const WEBHOOK_EVENT_NAMES = Object.freeze(WEBHOOK_EVENTS.flatMap(([, list]) => list.map(([name]) => name)));
export const WEBHOOK_SECRET_LENGTH = 32;
const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * A secret of `length` URL-safe characters (A-Z a-z 0-9 - _), 6 random bits
 * each from getRandomValues (crypto.getRandomValues by default): 64 divides
 * 256, so every character is equally likely.
 */
export function randomSecret(length = WEBHOOK_SECRET_LENGTH, getRandomValues = (a) => globalThis.crypto.getRandomValues(a)) {
  const bytes = getRandomValues(new Uint8Array(length));
  let s = '';
  for (const b of bytes) s += URL_SAFE[b & 63];
  return s;
}

/** What a webhook receives, in words: "all events" for [] (or none given). */
export function webhookEventsText(events) {
  return events && events.length ? events.join(', ') : 'all events';
}

/** The format's name as the page shows it. */
export function webhookFormatText(format) {
  return format === 'slack' ? 'Slack' : format === 'json' ? 'JSON' : String(format || '');
}

/** The field a 400 answer to POST /api/webhooks is about ("url must be …" -> "url"), or ''. */
export function webhookErrorField(message) {
  const m = /^(url|secret|events|format)\b/.exec(String(message || ''));
  return m ? m[1] : '';
}

/**
 * A delivery's last attempt in words: "200", "500", the error ("connection
 * refused"), both ("502: bad gateway", or the error alone when it says the
 * code), or '' before any attempt.
 */
export function lastAttemptText(delivery) {
  const attempts = (delivery && delivery.attempts) || [];
  const a = attempts[attempts.length - 1];
  if (!a) return '';
  const code = a.status_code === null || a.status_code === undefined ? '' : String(a.status_code);
  const error = a.error ? String(a.error) : '';
  if (code && error) return error.includes(code) ? error : `${code}: ${error}`;
  return code || error || 'no answer';
}

/** "3 delivered, 1 failed, 2 pending" for a list of deliveries (only the statuses present). */
export function deliveriesSummary(list) {
  const n = { delivered: 0, failed: 0, pending: 0 };
  for (const d of list || []) if (d.status in n) n[d.status]++;
  return ['delivered', 'failed', 'pending'].filter((s) => n[s]).map((s) => `${n[s]} ${s}`).join(', ');
}

let clockFormat = null;

/** Local time of day to the second, e.g. "10:02:07" (for times minutes apart, as retries are). */
export function formatClock(iso) {
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(t)) return String(iso || '');
  clockFormat ??= new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return clockFormat.format(t);
}
