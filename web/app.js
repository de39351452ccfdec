// The vexil admin page. Plain DOM, no framework, no build step.
//
// Safety rule: every string that comes from the server reaches the page through
// textContent or setAttribute, never through innerHTML; the el() helper below is
// the only way this file builds elements.
//
// Data flow: state.flags (name -> flag) is the one copy of what the server said.
// applyFlags() merges a fresh list into it and updates only the rows whose flag
// changed, so a list of thousands of flags is built once. The live loop long-polls
// GET /flags?wait=30 and re-reads /api/flags when the version moves. Every change
// is a PATCH with If-Match on the revision the person saw; a 412 opens the
// conflict dialog, which shows what changed and lets them re-apply on the new
// revision, so nothing is overwritten silently.

import { Api, ApiError, describeError } from './api.js';
import * as U from './util.js';

const TOKEN_KEY = 'vexil.adminToken';
const WAIT_SECONDS = 30;
const USERS_SHOWN = 200;

const $ = (id) => document.getElementById(id);

/** el('button', {class: 'x', type: 'button'}, 'text', childNode) — text is always a text node. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

const state = {
  api: null,
  flags: new Map(), // name -> flag as last seen from the server
  rows: new Map(), // name -> { tr, key, refs }
  sort: { key: 'name', dir: 1 },
  filter: '',
  version: null, // global version from GET /flags, for If-None-Match
  live: null, // the running live loop, see startLive()
  pending: new Map(), // name -> number of requests in flight for it
  newName: null, // a flag just created, to flash its row
};

// ---------------------------------------------------------------------------
// messages

/** The message area of the open panel or form, else the page's. */
function messageArea() {
  if ($('create-dialog').open) return $('cd-msg');
  if ($('flag-dialog').open) return $('fd-msg');
  return $('page-msg');
}

/**
 * Shows a message. Errors stay until dismissed; others fade after a while.
 * action: {label, run} adds a button (e.g. Undo).
 */
function notify(text, { kind = 'ok', action, area } = {}) {
  const target = area || messageArea();
  const box = el('div', { class: `msg msg-${kind}` }, el('span', { class: 'msg-text' }, text));
  if (action) {
    const b = el('button', { type: 'button', class: 'btn' }, action.label);
    b.addEventListener('click', () => {
      box.remove();
      action.run();
    });
    box.append(b);
  }
  const close = el('button', { type: 'button', class: 'btn btn-icon', 'aria-label': 'Dismiss message' }, '✕');
  close.addEventListener('click', () => box.remove());
  box.append(close);
  if (target === $('page-msg')) {
    // Success on the page goes to the toast stack, errors to the page's alert area.
    (kind === 'error' ? $('page-msg') : $('toasts')).append(box);
  } else {
    target.append(box);
  }
  while (box.parentNode && box.parentNode.children.length > 4) box.parentNode.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => box.remove(), action ? 12000 : 6000);
  return box;
}

const notifyError = (text, opts = {}) => notify(text, { ...opts, kind: 'error' });

function clearMessages(area) {
  area.replaceChildren();
}

// ---------------------------------------------------------------------------
// sign in / out

function showView(name) {
  $('signin-view').hidden = name !== 'signin';
  $('list-view').hidden = name !== 'list';
  $('signout').hidden = name !== 'list';
  $('conn').hidden = name !== 'list';
}

async function signIn(token, fromStorage) {
  const error = $('signin-error');
  const button = $('signin-button');
  error.textContent = '';
  token = token.trim();
  if (!token) {
    error.textContent = 'Paste your admin token first.';
    $('token').focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Signing in…';
  const api = new Api(token, (err) => onUnauthorized(err));
  let flags;
  try {
    flags = await api.listFlags();
  } catch (e) {
    button.disabled = false;
    button.textContent = 'Sign in';
    showView('signin');
    if (e.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = fromStorage
        ? 'Your saved token is no longer accepted (401). It may have been revoked; sign in with another.'
        : 'This token was not accepted (401 unauthorized). Check that you pasted all of it; it may also have been revoked.';
    } else if (e.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = 'This token is valid but is not an admin token (403 forbidden). The admin page needs a token with the admin role.';
    } else {
      error.textContent = 'Could not sign in: ' + describeError(e);
    }
    $('token').focus();
    return;
  }
  button.disabled = false;
  button.textContent = 'Sign in';
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  state.api = api;
  state.version = null;
  showView('list');
  applyFlags(flags);
  startLive();
  if (window.matchMedia('(pointer: fine)').matches) $('filter').focus();
  else $('main').focus();
}

function onUnauthorized() {
  if (!state.api) return;
  signOut('Your token is no longer accepted (401): it may have been revoked. Sign in again.');
}

function signOut(message) {
  stopLive();
  sessionStorage.removeItem(TOKEN_KEY);
  state.api = null;
  state.version = null;
  for (const id of ['conflict-dialog', 'confirm-dialog', 'create-dialog', 'flag-dialog']) if ($(id).open) $(id).close('signout');
  detail.name = null;
  state.flags.clear();
  state.rows.clear();
  $('flags-body').replaceChildren();
  clearMessages($('page-msg'));
  $('live-msg').hidden = true;
  $('toasts').replaceChildren();
  $('signin-error').textContent = message || '';
  showView('signin');
  $('token').focus();
}

// ---------------------------------------------------------------------------
// the list

function rowKey(f) {
  return [f.revision, f.updated_at, f.age_days, (f.stale || []).join(',')].join('|');
}

function buildRow(flag) {
  const nameBtn = el('button', { type: 'button', class: 'flag-name' });
  const staleReason = el('span', { class: 'visually-hidden' });
  const staleBadge = el('span', { class: 'badge badge-stale' }, 'stale', staleReason);
  const desc = el('span', { class: 'flag-desc' });
  const switchText = el('span', { class: 'switch-text' });
  const sw = el(
    'button',
    { type: 'button', role: 'switch', class: 'switch', 'aria-checked': 'false' },
    el('span', { class: 'switch-track', 'aria-hidden': 'true' }, el('span', { class: 'switch-thumb' })),
    switchText,
  );
  const pctText = el('span', { class: 'pct-text' });
  const bar = el('progress', { class: 'bar', max: '100', value: '0', 'aria-hidden': 'true' });
  const pct = el('div', { class: 'pct' }, pctText, bar);
  const tdUsers = el('td', { class: 'c-users', 'data-label': 'Users' });
  const tdOwner = el('td', { class: 'c-owner', 'data-label': 'Owner' });
  const tdAge = el('td', { class: 'c-age', 'data-label': 'Age' });
  const tr = el(
    'tr',
    {},
    el('td', { class: 'c-name' }, el('div', { class: 'name-line' }, nameBtn, staleBadge), desc),
    el('td', { class: 'c-state' }, sw),
    el('td', { class: 'c-pct', 'data-label': 'Rollout' }, pct),
    tdUsers,
    tdOwner,
    tdAge,
  );
  tr.dataset.name = flag.name;
  nameBtn.textContent = flag.name;
  nameBtn.setAttribute('aria-label', `${flag.name}: open rollout, users and history`);
  sw.setAttribute('aria-label', flag.name);
  return { tr, key: null, refs: { nameBtn, staleBadge, staleReason, desc, sw, switchText, pct, pctText, bar, tdUsers, tdOwner, tdAge } };
}

function updateRow(row, flag) {
  const r = row.refs;
  const stale = flag.stale || [];
  row.tr.classList.toggle('is-stale', stale.length > 0);
  row.tr.classList.toggle('is-on', !!flag.enabled);
  r.staleBadge.hidden = stale.length === 0;
  const reasons = stale.map(U.staleText).join('; ');
  r.staleBadge.title = reasons ? `Due for removal: ${reasons}` : '';
  r.staleReason.textContent = reasons ? `: ${reasons}` : '';
  r.desc.textContent = flag.description || '';
  r.desc.title = flag.description || '';
  r.desc.hidden = !flag.description;
  r.sw.setAttribute('aria-checked', flag.enabled ? 'true' : 'false');
  r.switchText.textContent = flag.enabled ? 'On' : 'Off';
  r.sw.disabled = state.pending.has(flag.name);
  r.pctText.textContent = `${flag.percentage} %`;
  r.bar.value = flag.percentage;
  r.pct.classList.toggle('pct-off', !flag.enabled);
  r.pct.title = flag.enabled ? `${flag.percentage} % of users get it` : `Off: the ${flag.percentage} % applies once it is on`;
  const n = (flag.users || []).length;
  r.tdUsers.textContent = String(n);
  r.tdUsers.title = n ? U.listSome(flag.users, 10) : 'No listed users';
  r.tdOwner.textContent = flag.owner || '—';
  r.tdOwner.classList.toggle('none', !flag.owner);
  r.tdOwner.title = flag.owner || 'No owner';
  r.tdAge.textContent = flag.age_days === undefined || flag.age_days === null ? '—' : `${flag.age_days} d`;
  r.tdAge.title = `Created ${U.formatTime(flag.created_at)}`;
  row.key = rowKey(flag);
}

/** Replaces the whole set of flags with a fresh list from GET /api/flags. */
function applyFlags(list) {
  const seen = new Set();
  for (const f of list) {
    seen.add(f.name);
    const old = state.flags.get(f.name);
    // A list read that started before one of our own writes answered is older
    // than what we hold: keep the newer revision of the same flag.
    if (old && old.created_at === f.created_at && old.revision > f.revision) continue;
    state.flags.set(f.name, f);
  }
  for (const name of [...state.flags.keys()]) if (!seen.has(name)) state.flags.delete(name);
  refreshRows();
}

/** One flag changed (our own write): merge it in. */
function mergeFlag(flag) {
  const old = state.flags.get(flag.name);
  // A write answer may lack the derived fields; keep the last known ones until
  // the next list read brings exact values.
  const merged = { ...flag };
  if (merged.age_days === undefined) merged.age_days = old ? old.age_days : 0;
  if (merged.stale === undefined) merged.stale = old ? old.stale : [];
  state.flags.set(flag.name, merged);
  refreshRows();
  return merged;
}

function forgetFlag(name) {
  state.flags.delete(name);
  refreshRows();
}

/** Brings the table in line with state.flags, touching only what changed. */
function refreshRows() {
  const body = $('flags-body');
  for (const [name, row] of state.rows) {
    if (!state.flags.has(name)) {
      row.tr.remove();
      state.rows.delete(name);
    }
  }
  for (const [name, flag] of state.flags) {
    let row = state.rows.get(name);
    if (!row) {
      row = buildRow(flag);
      state.rows.set(name, row);
    }
    if (row.key !== rowKey(flag)) updateRow(row, flag);
  }
  // Order: move only rows that are out of place; keep focus where it was.
  const focused = document.activeElement;
  const sorted = U.sortFlags([...state.flags.values()], state.sort.key, state.sort.dir);
  let cursor = body.firstElementChild;
  for (const f of sorted) {
    const tr = state.rows.get(f.name).tr;
    if (tr === cursor) cursor = cursor.nextElementSibling;
    else body.insertBefore(tr, cursor);
  }
  if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus();
  applyFilter();
  if (detail.name) renderDetail();
  if (state.newName && state.rows.has(state.newName)) {
    const tr = state.rows.get(state.newName).tr;
    state.newName = null;
    tr.classList.add('is-new');
    tr.scrollIntoView({ block: 'nearest' });
    setTimeout(() => tr.classList.remove('is-new'), 2100);
  }
}

function applyFilter() {
  let shown = 0;
  let on = 0;
  let stale = 0;
  for (const [name, row] of state.rows) {
    const f = state.flags.get(name);
    const match = U.matchesFilter(f, state.filter);
    if (row.tr.hidden === match) row.tr.hidden = !match;
    if (match) shown++;
    if (f.enabled) on++;
    if (f.stale && f.stale.length) stale++;
  }
  const total = state.flags.size;
  const summary = $('summary');
  const parts = [el('span', {}, U.plural(total, 'flag', 'flags')), el('span', { class: 'summary-on' }, `${on} on`)];
  if (stale) {
    const b = el('button', { type: 'button', class: 'btn btn-quiet', title: 'Show only stale flags' }, `${stale} stale`);
    b.addEventListener('click', () => setFilter('is:stale'));
    parts.push(b);
  } else parts.push(el('span', {}, 'none stale'));
  if (state.filter.trim()) parts.push(el('span', {}, `${shown} shown`));
  summary.replaceChildren(...parts);

  const empty = $('empty');
  const table = $('flags-table');
  table.hidden = shown === 0;
  empty.hidden = shown !== 0;
  const histBtn = $('empty-history');
  histBtn.hidden = true;
  if (shown === 0) {
    const q = state.filter.trim();
    if (total === 0) $('empty-text').textContent = 'No flags yet. Create the first one with “New flag”.';
    else $('empty-text').textContent = `No flag matches “${q}”.`;
    if (q && !q.includes(' ') && !q.includes(':') && U.NAME_RE.test(q)) {
      histBtn.hidden = false;
      histBtn.textContent = `Look for a deleted flag named “${q}”`;
      histBtn.dataset.name = q;
    }
  }
}

function setFilter(text) {
  $('filter').value = text;
  state.filter = text;
  applyFilter();
}

function setSort(key, dir) {
  state.sort = { key, dir };
  for (const th of document.querySelectorAll('#flags-table th[data-sort]')) {
    if (th.dataset.sort === key) th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  const sel = $('sort');
  const v = `${key}:${dir}`;
  sel.value = [...sel.options].some((o) => o.value === v) ? v : '';
  refreshRows();
}

function setPending(name, on) {
  const n = (state.pending.get(name) || 0) + (on ? 1 : -1);
  if (n > 0) state.pending.set(name, n);
  else state.pending.delete(name);
  const row = state.rows.get(name);
  if (row) row.refs.sw.disabled = n > 0;
  if (detail.name === name) renderDetail();
}

// ---------------------------------------------------------------------------
// changing a flag: PATCH with If-Match, and the 412 path

/**
 * Applies op (flag -> patch body) to the flag as the person saw it (base).
 * Returns the updated flag, or null when nothing was saved (an error was shown,
 * or the person chose to keep the other change).
 */
async function changeFlag(name, op, base) {
  const patch = op(base);
  setPending(name, true);
  try {
    const updated = await state.api.patchFlag(name, base.revision, patch);
    return mergeFlag(updated);
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) {
      return await resolveConflict(name, base, {
        describe: (cur) => U.describePatch(op(cur), cur),
        isNoop: (cur) => U.diffFlags(cur, { ...cur, ...op(cur) }).length === 0,
        retry: (cur) => changeFlag(name, op, cur),
      });
    }
    if (e instanceof ApiError && e.status === 404) {
      notifyError(`“${name}” no longer exists: someone deleted it. Your change (${U.describePatch(patch, base)}) was not saved.`);
      forgetFlag(name);
      return null;
    }
    if (!(e instanceof ApiError && e.status === 401)) notifyError(`“${name}”: could not ${U.describePatch(patch, base)}. ${describeError(e)}`);
    return null;
  } finally {
    setPending(name, false);
  }
}

/**
 * The flag changed on the server after the person loaded it. Fetch it, show
 * what changed and who did it, and let them re-apply their change on top.
 */
async function resolveConflict(name, base, yours) {
  let current;
  try {
    current = await state.api.getFlag(name);
  } catch (e) {
    if (e.status === 404) {
      notifyError(`“${name}” was deleted by someone else meanwhile; your change was not saved.`);
      forgetFlag(name);
    } else notifyError(`“${name}” was changed by someone else, and reading its new state failed: ${describeError(e)}`);
    return null;
  }
  current = mergeFlag(current);
  let events = [];
  try {
    events = await state.api.history(name);
  } catch {
    /* who changed it is a nicety; the diff below is what matters */
  }
  const since = Date.parse(base.updated_at);
  const newer = events.filter((ev) => Date.parse(ev.at) > since);

  $('cx-title').textContent = `“${name}” was changed by someone else`;
  $('cx-intro').textContent =
    `It went from revision ${base.revision} to ${current.revision} after you loaded it, so your change was not saved and nothing was overwritten. This is what changed:`;
  const rows = U.diffFlags(base, current).map((d) => diffRow(d.field, d.before, d.after, ['You saw', 'Now']));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '3' }, 'No visible field changed (only its revision).')));
  $('cx-diff').replaceChildren(...rows);
  $('cx-by').textContent = newer.length
    ? 'Changed by ' + [...new Set(newer.map((ev) => ev.actor))].join(', ') + ', ' + U.timeAgo(newer[0].at) + '.'
    : '';
  const noop = yours.isNoop(current);
  $('cx-yours').textContent = noop
    ? 'It already is as your change would make it, so there is nothing left to do.'
    : `Your change: ${yours.describe(current)}.`;
  $('cx-retry').hidden = noop;
  $('cx-cancel').textContent = noop ? 'OK' : 'Keep theirs';

  const choice = await runDialog($('conflict-dialog'), noop ? $('cx-cancel') : $('cx-retry'));
  if (choice === 'retry') return yours.retry(current);
  if (!noop) notify(`Kept the other change to “${name}”; yours was not applied.`, { kind: 'info' });
  return null;
}

/** One row of a diff table: field, before, after. Users show who was added and removed. */
function diffRow(field, before, after) {
  const label = U.FIELD_LABELS[field] || field;
  if (field === 'users') {
    const d = U.usersDelta(before, after);
    const cell = el('td', { colspan: '2' });
    if (d.added.length) cell.append(el('div', { class: 'users-add' }, `+ added ${U.listSome(d.added, 20)}`));
    if (d.removed.length) cell.append(el('div', { class: 'users-remove' }, `− removed ${U.listSome(d.removed, 20)}`));
    cell.append(el('div', { class: 'muted' }, `${U.formatValue('users', before)} → ${U.formatValue('users', after)}`));
    return el('tr', {}, el('th', { scope: 'row' }, label), cell);
  }
  return el(
    'tr',
    {},
    el('th', { scope: 'row' }, label),
    el('td', { class: 'was' }, U.formatValue(field, before)),
    el('td', { class: 'now' }, U.formatValue(field, after)),
  );
}

/** Opens a modal dialog and resolves with its returnValue when it closes. */
function runDialog(dialog, focus) {
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
    if (focus) focus.focus();
  });
}

/** A yes/no question in a dialog of our own (keyboard friendly, no window.confirm). */
async function confirmBox(title, body, okLabel, danger = false) {
  $('cf-title').textContent = title;
  $('cf-body').replaceChildren(...(Array.isArray(body) ? body : [el('p', {}, body)]));
  const ok = $('cf-ok');
  ok.textContent = okLabel;
  ok.className = danger ? 'btn btn-danger-solid' : 'btn btn-primary';
  return (await runDialog($('confirm-dialog'), $('cf-cancel'))) === 'ok';
}

async function toggle(name) {
  const flag = state.flags.get(name);
  if (!flag || state.pending.has(name)) return;
  const target = !flag.enabled;
  const updated = await changeFlag(name, () => ({ enabled: target }), flag);
  if (updated && updated.enabled === target) notify(`“${name}” is now ${target ? 'on' : 'off'}.`);
}

// ---------------------------------------------------------------------------
// the flag panel

const detail = {
  name: null,
  deleted: false, // showing the history of a flag that no longer exists
  formBase: null, // the flag as it was when editing of description/owner began
  pctDirty: false,
  usersAll: false,
  usersKey: null,
  historyFor: null, // "name|revision|updated_at" the history was loaded for
};

function openFlag(name, { deleted = false } = {}) {
  Object.assign(detail, { name, deleted, formBase: null, pctDirty: false, usersAll: false, usersKey: null, historyFor: null });
  clearMessages($('fd-msg'));
  $('fd-users-add').value = '';
  $('fd-users-filter').value = '';
  $('fd-history').replaceChildren();
  renderDetail();
  const d = $('flag-dialog');
  if (!d.open) d.showModal();
  const sw = $('fd-switch');
  if (!sw.closest('[hidden]')) sw.focus();
  else d.querySelector('[data-close]').focus();
}

async function closeDetail() {
  if (detailsDirty()) {
    const ok = await confirmBox('Discard your edits?', 'The description or owner you changed has not been saved.', 'Discard', true);
    if (!ok) return;
  }
  detail.name = null;
  $('flag-dialog').close();
}

function renderDetail() {
  const name = detail.name;
  if (!name) return;
  const flag = state.flags.get(name);
  if (!flag && !detail.deleted) {
    detail.deleted = true;
    notifyError(`“${name}” has been deleted. Its history is below; revert the deletion to bring it back.`, { area: $('fd-msg') });
  }
  if (flag && detail.deleted) detail.deleted = false; // brought back (by a revert)
  $('fd-title').textContent = name;
  const badges = [];
  if (detail.deleted) badges.push(el('span', { class: 'badge badge-deleted' }, 'deleted'));
  else {
    badges.push(el('span', { class: flag.enabled ? 'badge badge-on' : 'badge badge-off' }, flag.enabled ? 'on' : 'off'));
    for (const r of flag.stale || []) badges.push(el('span', { class: 'badge badge-stale' }, `stale: ${U.staleText(r)}`));
  }
  $('fd-badges').replaceChildren(...badges);
  for (const id of ['fd-live', 'fd-danger']) $(id).hidden = detail.deleted;
  $('fd-description').textContent = detail.deleted ? '' : flag.description || '';
  if (detail.deleted) {
    $('fd-meta').replaceChildren();
    loadHistory();
    return;
  }
  const busy = state.pending.has(name);

  const meta = [
    el('span', {}, `Owner: ${flag.owner || '—'}`),
    el('span', { title: flag.created_at }, `Created ${U.formatTime(flag.created_at)} (${flag.age_days ? `${U.plural(flag.age_days, 'day', 'days')} ago` : 'less than a day ago'})`),
    el('span', { title: flag.updated_at }, `Changed ${U.timeAgo(flag.updated_at)}`),
    el('span', {}, `Revision ${flag.revision}`),
  ];
  if (flag.rolled_out_at) meta.push(el('span', { title: flag.rolled_out_at }, `Fully rolled out since ${U.formatTime(flag.rolled_out_at)}`));
  $('fd-meta').replaceChildren(...meta);

  const sw = $('fd-switch');
  sw.setAttribute('aria-checked', flag.enabled ? 'true' : 'false');
  $('fd-switch-text').textContent = flag.enabled ? 'On' : 'Off';
  sw.disabled = busy;
  const nUsers = (flag.users || []).length;
  $('fd-state-help').textContent = flag.enabled
    ? `On for ${flag.percentage === 100 ? 'everyone' : `${flag.percentage} % of users`}${nUsers && flag.percentage < 100 ? ` and ${U.plural(nUsers, 'listed user', 'listed users')}` : ''}.`
    : 'Off for everyone, whatever the rollout and listed users (kill switch).';

  for (const b of $('fd-steps').children) {
    b.setAttribute('aria-pressed', Number(b.dataset.pct) === flag.percentage ? 'true' : 'false');
    b.disabled = busy;
  }
  if (!detail.pctDirty) {
    $('fd-pct').value = String(flag.percentage);
    $('fd-pct-range').value = String(flag.percentage);
  }
  $('fd-pct-set').disabled = busy;
  $('fd-pct-help').textContent = flag.enabled
    ? 'Each user keeps the same bucket, so raising the rollout never turns anyone off.'
    : 'The rollout applies once the flag is on.';

  renderUsers(flag, busy);
  renderDetailsForm(flag);
  const hkey = `${name}|${flag.revision}|${flag.updated_at}`;
  if (detail.historyFor !== hkey) loadHistory();
}

function renderUsers(flag, busy) {
  const users = flag.users || [];
  $('fd-users-count').textContent = `(${users.length})`;
  $('fd-users-tools').hidden = users.length === 0;
  $('fd-users-clear').disabled = busy;
  const q = $('fd-users-filter').value.trim().toLowerCase();
  const key = `${users.join('\n')}|${q}|${detail.usersAll}|${busy}`;
  if (key === detail.usersKey) return;
  detail.usersKey = key;
  const match = q ? users.filter((u) => u.toLowerCase().includes(q)) : users;
  const shown = detail.usersAll ? match : match.slice(0, USERS_SHOWN);
  const items = shown.map((u) =>
    el(
      'li',
      {},
      el('span', { title: u }, u),
      el('button', { type: 'button', 'aria-label': `Remove user ${u}`, title: `Remove ${u}`, 'data-user': u, disabled: busy }, '✕'),
    ),
  );
  if (!users.length) items.push(el('li', { class: 'chips-empty' }, 'No listed users.'));
  else if (!match.length) items.push(el('li', { class: 'chips-empty' }, `No listed user contains “${q}”.`));
  $('fd-users').replaceChildren(...items);
  const more = $('fd-users-more');
  more.hidden = shown.length >= match.length;
  more.textContent = `Show all ${match.length}`;
}

function detailsDirty() {
  if (!detail.formBase || !detail.name) return false;
  return $('fd-desc').value !== (detail.formBase.description || '') || $('fd-owner').value !== (detail.formBase.owner || '');
}

function renderDetailsForm(flag) {
  const dirty = detailsDirty();
  if (!dirty) {
    detail.formBase = null;
    if ($('fd-desc').value !== (flag.description || '')) $('fd-desc').value = flag.description || '';
    if ($('fd-owner').value !== (flag.owner || '')) $('fd-owner').value = flag.owner || '';
  }
  $('fd-details-save').disabled = !dirty || state.pending.has(flag.name);
  $('fd-details-reset').disabled = !dirty;
  $('fd-details-note').textContent =
    dirty && detail.formBase.revision !== flag.revision
      ? `Someone changed this flag while you were editing (now revision ${flag.revision}). When you save you will see what changed before anything is overwritten.`
      : '';
}

function onDetailsInput() {
  const flag = state.flags.get(detail.name);
  if (!flag) return;
  if (!detail.formBase) detail.formBase = flag;
  renderDetailsForm(flag);
}

async function saveDetails(ev) {
  ev.preventDefault();
  const name = detail.name;
  const base = detail.formBase;
  if (!base || !detailsDirty()) return;
  const patch = {};
  const desc = $('fd-desc').value;
  const owner = $('fd-owner').value;
  if (desc !== (base.description || '')) patch.description = desc;
  if (owner !== (base.owner || '')) patch.owner = owner;
  if (desc.length > U.MAX_DESCRIPTION) return notifyError(`A description has at most ${U.MAX_DESCRIPTION} characters.`);
  if (owner.length > U.MAX_OWNER) return notifyError(`An owner has at most ${U.MAX_OWNER} characters.`);
  const updated = await changeFlag(name, () => patch, base);
  if (detail.name !== name) return;
  if (updated) {
    detail.formBase = null;
    $('fd-desc').value = updated.description || '';
    $('fd-owner').value = updated.owner || '';
    notify('Details saved.');
  } else if (!state.flags.has(name) || state.flags.get(name).revision !== base.revision) {
    // The person kept the other change (or the flag is gone): drop their edit.
    const cur = state.flags.get(name);
    detail.formBase = null;
    if (cur) {
      $('fd-desc').value = cur.description || '';
      $('fd-owner').value = cur.owner || '';
    }
  }
  renderDetail();
}

function resetDetails() {
  detail.formBase = null;
  const flag = state.flags.get(detail.name);
  if (flag) renderDetailsForm(flag);
  $('fd-desc').focus();
}

async function setPercentage(p) {
  const name = detail.name;
  const flag = state.flags.get(name);
  if (!flag) return;
  if (!Number.isInteger(p) || p < 0 || p > 100) {
    notifyError('The rollout is a whole number from 0 to 100.');
    $('fd-pct').focus();
    return;
  }
  detail.pctDirty = false;
  if (p === flag.percentage) {
    renderDetail();
    return;
  }
  const updated = await changeFlag(name, () => ({ percentage: p }), flag);
  if (updated && updated.percentage === p) notify(`Rollout of “${name}” set to ${p} %.`);
}

async function addUsers(ev) {
  ev.preventDefault();
  const name = detail.name;
  const flag = state.flags.get(name);
  if (!flag) return;
  const wanted = U.parseUsers($('fd-users-add').value);
  if (!wanted.length) {
    notifyError('Type or paste at least one user id.');
    $('fd-users-add').focus();
    return;
  }
  const have = new Set(flag.users || []);
  const fresh = wanted.filter((u) => !have.has(u));
  if (!fresh.length) {
    notify(wanted.length === 1 ? `“${wanted[0]}” is already listed.` : `All ${wanted.length} are already listed.`, { kind: 'info' });
    return;
  }
  const problems = U.checkUsers([...(flag.users || []), ...fresh]);
  if (problems.length) {
    notifyError('Not added: ' + problems.join('; ') + '.');
    return;
  }
  const add = (f) => ({ users: [...new Set([...(f.users || []), ...fresh])] });
  const updated = await changeFlag(name, add, flag);
  if (updated) {
    $('fd-users-add').value = '';
    const skipped = wanted.length - fresh.length;
    notify(`Added ${U.plural(fresh.length, 'user', 'users')}${skipped ? ` (${skipped} already listed)` : ''}.`);
  }
}

async function removeUsers(list, label) {
  const name = detail.name;
  const flag = state.flags.get(name);
  if (!flag) return;
  const gone = new Set(list);
  const updated = await changeFlag(name, (f) => ({ users: (f.users || []).filter((u) => !gone.has(u)) }), flag);
  if (updated) notify(`Removed ${label}.`);
}

async function deleteFlag() {
  const name = detail.name;
  const flag = state.flags.get(name);
  if (!flag) return;
  const ok = await confirmBox(
    `Delete “${name}”?`,
    [
      el('p', {}, `Services asking for “${name}” will get “off” from now on. Remove it from the code first.`),
      el('p', { class: 'muted small' }, 'Its history is kept, and the deletion can be reverted from there.'),
    ],
    'Delete flag',
    true,
  );
  if (!ok) return;
  const run = async (base) => {
    setPending(name, true);
    try {
      await state.api.deleteFlag(name, base.revision);
      return true;
    } catch (e) {
      if (e.status === 412) {
        const r = await resolveConflict(name, base, { describe: () => 'delete the flag', isNoop: () => false, retry: (cur) => run(cur) });
        return r;
      }
      if (e.status === 404) return true; // someone else deleted it already
      if (e.status !== 401) notifyError(`Could not delete “${name}”: ${describeError(e)}`);
      return false;
    } finally {
      setPending(name, false);
    }
  };
  if (!(await run(flag))) return;
  detail.formBase = null;
  detail.name = null;
  $('flag-dialog').close();
  forgetFlag(name);
  notify(`Deleted “${name}”.`, { action: { label: 'Undo', run: () => undoDelete(name) } });
}

async function undoDelete(name) {
  try {
    const events = await state.api.history(name);
    const ev = events.find((e) => e.action === 'delete');
    if (!ev) throw new Error('its deletion is not in the history');
    const flag = await state.api.revert(name, ev.id);
    mergeFlag(flag);
    notify(`“${name}” is back.`);
  } catch (e) {
    if (e.status !== 401) notifyError(`Could not bring “${name}” back: ${describeError(e)}`);
  }
}

// ---- history

async function loadHistory() {
  const name = detail.name;
  const flag = state.flags.get(name);
  const key = flag ? `${name}|${flag.revision}|${flag.updated_at}` : `${name}|deleted`;
  if (detail.historyFor === key) return;
  detail.historyFor = key;
  const status = $('fd-history-status');
  status.textContent = 'Loading history…';
  let events;
  try {
    events = await state.api.history(name);
  } catch (e) {
    if (detail.name !== name) return;
    detail.historyFor = null;
    status.textContent = 'Could not load the history: ' + describeError(e);
    return;
  }
  if (detail.name !== name || detail.historyFor !== key) return;
  status.textContent = events.length ? '' : 'No history for this name.';
  $('fd-history').replaceChildren(...events.map((ev) => renderEvent(name, ev)));
}

const ACTION_WORDS = { create: 'created', update: 'changed', delete: 'deleted', revert: 'reverted' };

function renderEvent(name, ev) {
  const head = el(
    'div',
    { class: 'event-head' },
    el('span', { class: 'badge badge-action', 'data-action': ev.action }, ev.action),
    el('span', { class: 'event-actor' }, ev.actor || 'unknown'),
    el('time', { datetime: ev.at, title: ev.at }, `${U.timeAgo(ev.at)} · ${U.formatTime(ev.at)}`),
  );
  const revs = [ev.before && ev.before.revision, ev.after && ev.after.revision].filter((r) => r !== null && r !== undefined);
  if (revs.length) head.append(el('span', { class: 'muted small' }, revs.length === 2 ? `rev ${revs[0]} → ${revs[1]}` : `rev ${revs[0]}`));
  const li = el('li', { class: 'event' }, head);

  let changes = [];
  if (ev.before && ev.after) changes = U.diffFlags(ev.before, ev.after);
  else if (ev.after) changes = U.diffFlags(null, ev.after).filter((d) => !isDefault(d.field, d.after));
  if (ev.action === 'delete' && ev.before) {
    li.append(el('p', { class: 'event-note' }, `Deleted while ${summarize(ev.before)}.`));
  } else if (ev.action === 'create' && !changes.length) {
    li.append(el('p', { class: 'event-note' }, 'Created off, at 0 %, with no listed users.'));
  } else if (changes.length && !ev.before) {
    // A creation (or a revert that brought the flag back): just the values it got.
    const rows = changes.map((d) =>
      d.field === 'users'
        ? el('tr', {}, el('th', { scope: 'row' }, U.FIELD_LABELS.users), el('td', { class: 'set' }, `${U.formatValue('users', d.after)}: ${U.listSome(d.after, 20)}`))
        : el('tr', {}, el('th', { scope: 'row' }, U.FIELD_LABELS[d.field]), el('td', { class: 'set' }, U.formatValue(d.field, d.after))),
    );
    if (ev.action !== 'create') li.append(el('p', { class: 'event-note' }, 'Brought back after it had been deleted, with:'));
    li.append(el('table', { class: 'diff' }, el('caption', { class: 'visually-hidden' }, 'The values it got'), el('tbody', {}, ...rows)));
  } else if (changes.length) {
    const table = el(
      'table',
      { class: 'diff' },
      el('caption', { class: 'visually-hidden' }, `Fields ${ACTION_WORDS[ev.action] || 'changed'}`),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Field'), el('th', { scope: 'col' }, 'Before'), el('th', { scope: 'col' }, 'After'))),
      el('tbody', {}, ...changes.map((d) => diffRow(d.field, d.before, d.after))),
    );
    li.append(table);
  } else {
    li.append(el('p', { class: 'event-note' }, 'No visible field changed.'));
  }

  const foot = el('div', { class: 'event-foot' });
  if (ev.before) {
    const b = el('button', { type: 'button', class: 'btn btn-small', 'data-event': String(ev.id) }, 'Revert to before this change');
    b.setAttribute('aria-label', `Revert “${name}” to before this ${ev.action} by ${ev.actor}, ${U.timeAgo(ev.at)}`);
    b.addEventListener('click', () => revertTo(name, ev));
    foot.append(b);
  } else {
    foot.append(el('span', { class: 'muted small' }, 'The flag did not exist before this.'));
  }
  li.append(foot);
  return li;
}

function isDefault(field, v) {
  return (field === 'enabled' && v === false) || (field === 'percentage' && v === 0) || (field === 'users' && Array.isArray(v) && !v.length) || v === '';
}

function summarize(f) {
  return `${f.enabled ? 'on' : 'off'}, at ${f.percentage} %, with ${U.plural((f.users || []).length, 'listed user', 'listed users')}`;
}

async function revertTo(name, ev) {
  const current = state.flags.get(name) || null;
  const target = ev.before;
  const changes = U.diffFlags(current, target);
  const body = [
    el('p', {}, current ? `“${name}” will go back to how it was before ${ev.actor}’s ${ev.action} (${U.formatTime(ev.at)}).` : `“${name}” will be brought back as it was before it was deleted.`),
  ];
  if (changes.length) {
    body.push(
      el(
        'table',
        { class: 'diff' },
        el('caption', { class: 'visually-hidden' }, 'What the revert changes'),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Field'), el('th', { scope: 'col' }, 'Now'), el('th', { scope: 'col' }, 'After revert'))),
        el('tbody', {}, ...changes.map((d) => diffRow(d.field, d.before, d.after))),
      ),
    );
  } else body.push(el('p', { class: 'muted small' }, 'It already is in that state; the revert only records a new event.'));
  body.push(el('p', { class: 'muted small' }, 'The revert is recorded in the history and can itself be reverted.'));
  if (!(await confirmBox('Revert this change?', body, 'Revert'))) return;
  setPending(name, true);
  try {
    const flag = await state.api.revert(name, ev.id);
    mergeFlag(flag);
    notify(`Reverted “${name}” to before that ${ev.action}.`);
  } catch (e) {
    if (e.status !== 401) notifyError(`Could not revert “${name}”: ${describeError(e)}`);
  } finally {
    setPending(name, false);
    detail.historyFor = null;
    if (detail.name === name) renderDetail();
  }
}

// ---------------------------------------------------------------------------
// create

function openCreate() {
  $('create-form').reset();
  $('cd-name-error').textContent = '';
  clearMessages($('cd-msg'));
  $('create-dialog').showModal();
  $('cd-name').focus();
}

async function submitCreate(ev) {
  ev.preventDefault();
  const name = $('cd-name').value.trim();
  const nameError = U.checkName(name);
  $('cd-name-error').textContent = nameError;
  $('cd-name').setAttribute('aria-invalid', nameError ? 'true' : 'false');
  if (nameError) {
    $('cd-name').focus();
    return;
  }
  clearMessages($('cd-msg'));
  const body = { name, description: $('cd-desc').value, owner: $('cd-owner').value.trim() };
  const submit = $('cd-submit');
  submit.disabled = true;
  try {
    const flag = await state.api.createFlag(body);
    $('create-dialog').close();
    state.newName = flag.name;
    if (!U.matchesFilter({ ...flag, stale: [] }, state.filter)) setFilter('');
    mergeFlag(flag);
    notify(`Created “${flag.name}”. It is off; turn it on when ready.`);
  } catch (e) {
    if (e.status === 409) {
      $('cd-name-error').textContent = describeError(e);
      $('cd-name').setAttribute('aria-invalid', 'true');
      $('cd-name').focus();
    } else if (e.status !== 401) notifyError('Could not create the flag: ' + describeError(e), { area: $('cd-msg') });
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// live updates: long-poll GET /flags?wait=30 with If-None-Match

const CONN_WORDS = {
  connecting: 'Connecting to live updates.',
  live: 'Live: changes made elsewhere show up here at once.',
  retrying: 'Live updates are interrupted; retrying.',
};

/**
 * Shows the state of the live connection: a short text in the top bar (with a
 * countdown while retrying), a sentence for screen readers only when the state
 * changes, and the reason in words on the page once it has failed twice.
 */
function setConn(kind, text, reason = '') {
  const c = $('conn');
  const changed = c.dataset.state !== kind;
  c.dataset.state = kind;
  $('conn-text').textContent = text;
  c.title = reason ? `${text} — ${reason}` : CONN_WORDS[kind] || text;
  if (changed) $('conn-sr').textContent = CONN_WORDS[kind] || text;
  const live = state.live;
  const banner = $('live-msg');
  if (kind === 'retrying' && live && live.failures >= 2) {
    $('live-msg-text').textContent =
      `Live updates are interrupted: ${reason} The page keeps retrying; what you see may be out of date, ` +
      'but your changes are still checked against the current state before they are saved.';
    banner.hidden = false;
  } else if (kind === 'live') banner.hidden = true;
}

function startLive() {
  stopLive();
  const live = { stopped: false, stop: new AbortController(), wake: null, failures: 0 };
  state.live = live;
  liveLoop(live);
}

function stopLive() {
  if (!state.live) return;
  state.live.stopped = true;
  state.live.stop.abort();
  if (state.live.wake) state.live.wake();
  state.live = null;
}

function sleep(live, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      live.wake = null;
      resolve();
    }
    live.wake = done;
  });
}

async function liveLoop(live) {
  setConn('connecting', 'Connecting…');
  while (!live.stopped) {
    const headers = {};
    const known = state.version;
    if (known !== null) headers['If-None-Match'] = `"${known}"`;
    const req = new AbortController();
    const onStop = () => req.abort();
    live.stop.signal.addEventListener('abort', onStop, { once: true });
    // A held request that outlives its wait by far is stuck somewhere: drop it.
    const timer = setTimeout(() => req.abort(), (WAIT_SECONDS + 20) * 1000);
    const started = Date.now();
    try {
      const r = await state.api.request('GET', `/flags?wait=${WAIT_SECONDS}`, { headers, signal: req.signal });
      let quick = false;
      if (r.status === 200) {
        let v = r.body && Number.isSafeInteger(r.body.version) ? r.body.version : null;
        if (v === null) {
          const m = /^"(\d+)"$/.exec(r.headers.get('ETag') || '');
          v = m ? Number(m[1]) : null;
        }
        const flags = await state.api.listFlags();
        if (live.stopped) break;
        applyFlags(flags);
        state.version = v;
        quick = v === null || v === known; // the server did not move on: do not spin
      } else {
        quick = Date.now() - started < 1000; // a 304 that was not held
      }
      if (live.failures || $('conn').dataset.state !== 'live') setConn('live', 'Live');
      live.failures = 0;
      if (quick) await sleep(live, 1000);
    } catch (e) {
      if (live.stopped) break;
      if (e instanceof ApiError && e.status === 401) break; // signed out by onUnauthorized
      live.failures++;
      const delay = Math.min(30, 2 ** Math.min(live.failures - 1, 5)) * (0.8 + Math.random() * 0.4);
      const reason = e.name === 'AbortError' ? 'The server stopped answering.' : describeError(e);
      const until = Date.now() + Math.max(delay, e.retryAfter || 0) * 1000;
      while (!live.stopped && Date.now() < until) {
        const left = Math.ceil((until - Date.now()) / 1000);
        setConn('retrying', `Reconnecting in ${left} s`, reason);
        await sleep(live, Math.min(1000, until - Date.now()));
        if (live.kick) {
          live.kick = false;
          break;
        }
      }
      if (!live.stopped) setConn('retrying', 'Reconnecting…', reason);
    } finally {
      clearTimeout(timer);
      live.stop.signal.removeEventListener('abort', onStop);
    }
  }
}

/** Retry at once (the browser came back online, the tab became visible, or "Retry now"). */
function kickLive() {
  const live = state.live;
  if (live && live.failures && live.wake) {
    live.kick = true;
    live.wake();
  }
}

// ---------------------------------------------------------------------------
// wiring

function wire() {
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn($('token').value, false);
  });
  $('signout').addEventListener('click', () => signOut('Signed out. The token was removed from this tab.'));

  $('filter').addEventListener('input', () => {
    state.filter = $('filter').value;
    applyFilter();
  });
  $('sort').addEventListener('change', () => {
    const [key, dir] = $('sort').value.split(':');
    setSort(key, Number(dir));
  });
  for (const th of document.querySelectorAll('#flags-table th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      const first = key === 'age' || key === 'percentage' || key === 'users' ? -1 : 1;
      setSort(key, state.sort.key === key ? -state.sort.dir : first);
    });
  }
  $('new-flag').addEventListener('click', openCreate);
  $('empty-history').addEventListener('click', () => openFlag($('empty-history').dataset.name, { deleted: true }));

  $('flags-body').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr');
    if (!tr) return;
    if (ev.target.closest('.switch')) {
      toggle(tr.dataset.name);
      return;
    }
    if (!ev.target.closest('.flag-name') && String(window.getSelection())) return; // selecting text
    openFlag(tr.dataset.name);
  });

  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && !ev.ctrlKey && !ev.metaKey && !ev.altKey && !$('list-view').hidden) {
      const t = ev.target;
      const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
      if (!typing && !document.querySelector('dialog[open]')) {
        ev.preventDefault();
        $('filter').focus();
        $('filter').select();
      }
    }
  });

  // flag panel
  const fd = $('flag-dialog');
  fd.querySelector('[data-close]').addEventListener('click', closeDetail);
  fd.addEventListener('cancel', (ev) => {
    ev.preventDefault();
    closeDetail();
  });
  fd.addEventListener('click', (ev) => {
    if (ev.target === fd) closeDetail(); // a click on the backdrop
  });
  fd.addEventListener('close', () => {
    detail.name = null;
    detail.formBase = null;
  });
  $('fd-switch').addEventListener('click', () => toggle(detail.name));
  for (const p of U.QUICK_STEPS) {
    const b = el('button', { type: 'button', class: 'btn step', 'data-pct': String(p), 'aria-pressed': 'false' }, `${p} %`);
    b.setAttribute('aria-label', `Roll out to ${p} %`);
    b.addEventListener('click', () => setPercentage(p));
    $('fd-steps').append(b);
  }
  $('fd-pct-range').addEventListener('input', () => {
    detail.pctDirty = true;
    $('fd-pct').value = $('fd-pct-range').value;
  });
  $('fd-pct').addEventListener('input', () => {
    detail.pctDirty = true;
    const v = Number($('fd-pct').value);
    if (Number.isInteger(v) && v >= 0 && v <= 100) $('fd-pct-range').value = String(v);
  });
  $('fd-pct-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const raw = $('fd-pct').value.trim();
    setPercentage(raw === '' ? NaN : Number(raw));
  });
  $('fd-users-form').addEventListener('submit', addUsers);
  $('fd-users-add').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('fd-users-form').requestSubmit();
  });
  $('fd-users').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-user]');
    if (b) removeUsers([b.dataset.user], `“${b.dataset.user}”`);
  });
  $('fd-users-filter').addEventListener('input', () => renderDetail());
  $('fd-users-more').addEventListener('click', () => {
    detail.usersAll = true;
    renderDetail();
  });
  $('fd-users-clear').addEventListener('click', async () => {
    const flag = state.flags.get(detail.name);
    if (!flag || !flag.users.length) return;
    const n = flag.users.length;
    if (await confirmBox(`Remove all ${n} listed users?`, `They will get “${detail.name}” only through the rollout percentage.`, 'Remove all', true)) {
      removeUsers(flag.users, U.plural(n, 'listed user', 'listed users'));
    }
  });
  $('fd-desc').addEventListener('input', onDetailsInput);
  $('fd-owner').addEventListener('input', onDetailsInput);
  $('fd-details-form').addEventListener('submit', saveDetails);
  $('fd-details-reset').addEventListener('click', resetDetails);
  $('fd-delete').addEventListener('click', deleteFlag);

  // create
  $('create-form').addEventListener('submit', submitCreate);
  for (const b of $('create-dialog').querySelectorAll('[data-close]')) b.addEventListener('click', () => $('create-dialog').close());
  $('cd-name').addEventListener('input', () => {
    if ($('cd-name-error').textContent) $('cd-name-error').textContent = U.checkName($('cd-name').value.trim());
  });

  $('live-retry').addEventListener('click', kickLive);
  window.addEventListener('online', kickLive);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') kickLive();
  });
  // Ages and "3 min ago" move with time; refresh the open panel now and then.
  setInterval(() => {
    if (detail.name) renderDetail();
  }, 60000);
}

wire();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved, true);
else {
  showView('signin');
  $('token').focus();
}
