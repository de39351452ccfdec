// Pure helpers of the admin page: no DOM, no network, so they can be tested in
// node as well (tests/browser/util.test.mjs).

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
export const QUICK_STEPS = [0, 5, 25, 50, 100];
export const MAX_DESCRIPTION = 1000;
export const MAX_OWNER = 200;
export const MAX_USERS = 10000;

/** Fields a person edits; the rest (revision, timestamps) is the server's. */
export const EDITABLE = ['enabled', 'percentage', 'users', 'description', 'owner'];

/** Splits pasted text on newlines, commas and whitespace; drops empties and repeats. */
export function parseUsers(text) {
  const seen = new Set();
  const out = [];
  for (const part of String(text).split(/[\s,]+/)) {
    if (part && !seen.has(part)) {
      seen.add(part);
      out.push(part);
    }
  }
  return out;
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
export function checkUsers(users) {
  const problems = [];
  const long = users.filter((u) => utf8Length(u) > 256);
  if (long.length) problems.push(`${long.length} user id(s) longer than 256 bytes, e.g. "${long[0].slice(0, 40)}…"`);
  if (users.length > MAX_USERS) problems.push(`a flag holds at most ${MAX_USERS} users; this would make ${users.length}`);
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
 * [{field, before, after}], in a fixed order.
 */
export function diffFlags(before, after) {
  const out = [];
  for (const field of EDITABLE) {
    const b = before ? before[field] : undefined;
    const a = after ? after[field] : undefined;
    if (!sameValue(b, a)) out.push({ field, before: b, after: a });
  }
  return out;
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
  description: 'Description',
  owner: 'Owner',
};

/** Short phrase for a patch body, e.g. "turn it on", "set rollout to 25 %". */
export function describePatch(patch, flag) {
  const parts = [];
  for (const field of EDITABLE) {
    if (!(field in patch)) continue;
    const v = patch[field];
    if (field === 'enabled') parts.push(v ? 'turn it on' : 'turn it off');
    else if (field === 'percentage') parts.push(`set rollout to ${v} %`);
    else if (field === 'users') {
      const d = usersDelta(flag ? flag.users : [], v);
      const bits = [];
      if (d.added.length) bits.push(`add ${listSome(d.added)}`);
      if (d.removed.length) bits.push(`remove ${listSome(d.removed)}`);
      parts.push(bits.length ? bits.join(' and ') : 'keep the users as they are');
    } else parts.push(`set ${FIELD_LABELS[field].toLowerCase()} to "${v}"`);
  }
  return parts.join(', ') || 'no change';
}

export function listSome(items, max = 5) {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** Sort key functions for the list. */
const SORTERS = {
  name: (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  enabled: (a, b) => Number(b.enabled) - Number(a.enabled),
  percentage: (a, b) => a.percentage - b.percentage,
  users: (a, b) => (a.users ? a.users.length : 0) - (b.users ? b.users.length : 0),
  owner: (a, b) => (a.owner || '').localeCompare(b.owner || ''),
  age: (a, b) => (a.age_days ?? 0) - (b.age_days ?? 0),
  stale: (a, b) => (b.stale ? b.stale.length : 0) - (a.stale ? a.stale.length : 0),
};

/** Sorted copy; ties broken by name so the order is stable. */
export function sortFlags(flags, key = 'name', dir = 1) {
  const cmp = SORTERS[key] || SORTERS.name;
  return [...flags].sort((a, b) => dir * cmp(a, b) || SORTERS.name(a, b));
}

/** Filter text matches name (substring, case-insensitive); "owner:x" and "is:stale|on|off" narrow further. */
export function matchesFilter(flag, filter) {
  const words = String(filter).trim().toLowerCase().split(/\s+/).filter(Boolean);
  for (const w of words) {
    if (w === 'is:stale') {
      if (!(flag.stale && flag.stale.length)) return false;
    } else if (w === 'is:on') {
      if (!flag.enabled) return false;
    } else if (w === 'is:off') {
      if (flag.enabled) return false;
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

/** Local date and time, e.g. "26 Nov 2026, 07:11". */
export function formatTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso || '');
  return new Date(t).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
