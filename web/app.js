// The vexil admin page. Plain DOM, no framework, no build step.
//
// Safety rule: every string that comes from the server reaches the page through
// textContent or setAttribute, never through innerHTML; the el() helper below is
// the only way this file builds elements.
//
// Data flow: state.flags (name -> flag) is the one copy of what the server said;
// an admin flag carries its state in every environment ("environments"), and
// the table shows them side by side, one column per environment.
// applyFlags() merges a fresh list into it and updates only the rows whose flag
// changed, so a list of thousands of flags is built once. One live loop per
// environment long-polls GET /flags?env=<env>&wait=30 with that environment's
// version, and any of them moving re-reads /api/flags (one read at a time, never
// more than one queued). Every change is a PATCH with If-Match on the revision
// the person saw; a 412 opens the conflict dialog, which shows what changed and
// lets them re-apply on the new revision, so nothing is overwritten silently.
//
// The environment in focus (the detail panel edits its state; is:on, sorting by
// state and the highlighted column follow it) lives in the URL, #env=<name>
// (?env=<name> is read too), so a link shows the same view.
//
// Release plans (docs/api.md §8): state.plans holds GET /api/plans?env=E per
// environment, re-read whenever that environment's long-poll moves (a step is
// a flag write), after each plan action, and every few seconds while a plan
// runs or is paused (pausing, resuming and aborting write no flag state), every
// 30 s otherwise (a plan started at the percentage the state already has). The
// list marks running, paused and halted plans in each environment's cell, and
// names the reason of a halted or paused one under the flag's name; the flag
// panel shows the plan of the environment in focus and starts one.
//
// Last evaluated (docs/operations.md §3): each flag's state carries
// last_evaluated_at, which moves without a version, so no long-poll wakes for
// it. It comes with every read of /api/flags the page makes anyway, and the
// flags are re-read every 30 s when nothing else has read them (not while the
// tab is hidden). Each environment's cell says "evaluated 3 d ago" or "never
// evaluated" (muted warning: never, in a flag and environment older than a
// week); the words follow the clock without a read (evaluatedTick).
//
// Webhooks (docs/api.md §9): a third tab, #view=webhooks, lists them (read
// when the tab is shown), adds one through a form (the secret typed or
// generated in the browser, shown once: the server never gives it back) and
// deletes one after a question. Each row opens its recent deliveries, read
// when opened, on Refresh, after every live re-read (a change makes a
// delivery), and every WEBHOOK_POLL_MS while one is pending (retries move no
// version).

import { Api, ApiError, describeError } from './api.js';
import * as U from './util.js';

const TOKEN_KEY = 'vexil.adminToken';
const WAIT_SECONDS = 30;
const USERS_SHOWN = 200;
const PLAN_POLL_MS = 3000; // re-read plans this often while one runs or is paused
const PLAN_IDLE_POLL_MS = 30000; // and this often otherwise (a plan started at the state's own percentage moves no version)
const USAGE_POLL_MS = 30000; // re-read the flags this often when nothing else did: last_evaluated_at moves no version
const AGES_MS = 30000; // and bring "evaluated 3 min ago" up to date this often
const WEBHOOK_POLL_MS = 2000; // re-read an open deliveries panel this often while a delivery in it is pending
const DELIVERIES_SHOWN = 50; // GET /api/webhooks/<id>/deliveries?limit=
const VIEWS = { flags: 'Flags', segments: 'Segments', webhooks: 'Webhooks' }; // the tabs, #view=<key>

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
  envs: [], // [{name, description, default, version}] from GET /api/environments, in their order
  defaultEnv: null,
  focus: null, // the environment in focus (from the URL)
  segments: [], // from GET /api/segments
  view: 'flags', // 'flags' | 'segments' | 'webhooks'
  envKey: '', // the environment names the table columns were built for
  live: null, // the running live loops, see startLive()
  pending: new Map(), // name -> number of requests in flight for it
  newName: null, // a flag just created, to flash its row
  plans: new Map(), // env -> Map(flag name -> plan) from GET /api/plans?env=
  planReads: new Map(), // env -> {reading, queued, gen, at, failed}: one read at a time per environment
  plansError: '', // why the last read of the plans failed, '' when it did not
  planTicker: null, // the 1 s timer: countdowns, and the plans' poll (planTick)
  flagsReadAt: 0, // when /api/flags was last read (sign-in, a live re-read, the usage poll)
  agesAt: 0, // when the "evaluated … ago" words were last brought up to date
};

// ---------------------------------------------------------------------------
// messages

/** The message area of the open panel or form, else the page's. */
function messageArea() {
  if ($('webhook-dialog').open) return $('wd-msg');
  if ($('segment-dialog').open) return $('sd-msg');
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
  let envs;
  let segments;
  let plans;
  try {
    // Environments first: their versions are what the live loops start from,
    // so a change landing between the two reads wakes a loop at once.
    envs = await api.listEnvironments();
    [flags, segments, plans] = await Promise.all([
      api.listFlags(),
      api.listSegments(),
      // The plans are an addition to the list: failing to read them does not keep anyone out.
      api.listPlans().catch((e) => (e instanceof ApiError && e.status === 401 ? Promise.reject(e) : e)),
    ]);
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
  state.segments = segments;
  setEnvironments(envs);
  showView('list');
  readLocation();
  if (Array.isArray(plans)) {
    for (const e of envs) {
      setPlans(e.name, plans.filter((p) => p.environment === e.name));
      planRead(e.name).at = Date.now(); // read just now: the first poll is PLAN_POLL_MS away
    }
  } else {
    state.plansError = describeError(plans);
    for (const e of envs) Object.assign(planRead(e.name), { failed: true, at: Date.now() });
  }
  state.flagsReadAt = Date.now();
  state.agesAt = Date.now();
  applyFlags(flags);
  renderSegments();
  startLive();
  state.planTicker = setInterval(planTick, 1000);
  if (window.matchMedia('(pointer: fine)').matches) $('filter').focus();
  else $('main').focus();
}

function onUnauthorized() {
  if (!state.api) return;
  signOut('Your token is no longer accepted (401): it may have been revoked. Sign in again.');
}

function signOut(message) {
  stopLive();
  clearInterval(state.planTicker);
  state.planTicker = null;
  state.plans = new Map();
  state.planReads = new Map();
  state.plansError = '';
  sessionStorage.removeItem(TOKEN_KEY);
  state.api = null;
  state.envs = [];
  state.envKey = '';
  state.segments = [];
  state.segmentsKey = null;
  for (const id of ['conflict-dialog', 'confirm-dialog', 'webhook-dialog', 'segment-dialog', 'create-dialog', 'flag-dialog']) if ($(id).open) $(id).close('signout');
  forgetWebhooks();
  detail.name = null;
  state.flags.clear();
  state.rows.clear();
  $('flags-body').replaceChildren();
  $('segments-body').replaceChildren();
  clearMessages($('page-msg'));
  $('live-msg').hidden = true;
  $('toasts').replaceChildren();
  $('signin-error').textContent = message || '';
  showView('signin');
  $('token').focus();
}

// ---------------------------------------------------------------------------
// environments and the URL

/** Takes a fresh environment list; rebuilds the table's columns when the set changed. */
function setEnvironments(envs) {
  state.envs = envs;
  const def = envs.find((e) => e.default) || envs[0];
  state.defaultEnv = def ? def.name : null;
  if (!state.focus || !envs.some((e) => e.name === state.focus)) state.focus = state.defaultEnv;
  const key = envs.map((e) => e.name).join('\n');
  const sel = $('env-select');
  sel.replaceChildren(...envs.map((e) => el('option', { value: e.name }, e.default ? `${e.name} (default)` : e.name)));
  sel.value = state.focus;
  for (const id of ['fd-env', 'fd-copy-from', 'fd-copy-to']) {
    const v = $(id).value;
    $(id).replaceChildren(...envs.map((e) => el('option', { value: e.name }, e.name)));
    if (envs.some((e) => e.name === v)) $(id).value = v;
  }
  if (key !== state.envKey) {
    state.envKey = key;
    buildHead();
    // Columns changed: rows are rebuilt (rare: an environment created or deleted).
    for (const row of state.rows.values()) row.tr.remove();
    state.rows.clear();
    if (state.live) syncLoops();
  } else updateHead();
  showFocus();
}

function envByName(name) {
  return state.envs.find((e) => e.name === name) || null;
}

/** The table head: name, one column per environment, owner, age. */
function buildHead() {
  const head = $('flags-head');
  for (const th of [...head.querySelectorAll('th.c-env')]) th.remove();
  const before = head.querySelector('th.c-owner');
  state.envs.forEach((e, i) => {
    const b = el('button', { type: 'button', class: 'env-head', 'data-env': e.name });
    const th = el('th', { scope: 'col', class: 'c-env', 'data-env': e.name, 'data-i': String(i) }, b);
    head.insertBefore(th, before);
  });
  updateHead();
}

function updateHead() {
  for (const b of document.querySelectorAll('#flags-head button.env-head')) {
    const e = envByName(b.dataset.env);
    if (!e) continue;
    b.replaceChildren(el('span', { class: 'env-head-name' }, e.name));
    if (e.default) b.append(el('span', { class: 'env-default' }, 'default'));
    b.title = (e.description ? e.description + ' — ' : '') + `Show ${e.name} in the flag panel and sort by its state`;
    b.setAttribute('aria-label', `${e.name}${e.default ? ' (default)' : ''}: focus this environment`);
  }
}

/** Marks the environment in focus everywhere it shows. */
function showFocus() {
  const i = state.envs.findIndex((e) => e.name === state.focus);
  $('flags-table').dataset.focus = String(i);
  for (const b of document.querySelectorAll('#flags-head button.env-head')) b.setAttribute('aria-pressed', b.dataset.env === state.focus ? 'true' : 'false');
  $('env-select').value = state.focus || '';
  const e = envByName(state.focus);
  $('env-desc').textContent = e ? e.description || '' : '';
  const hrefFor = (view) => '#' + new URLSearchParams(view !== 'flags' ? { env: state.focus || '', view } : { env: state.focus || '' }).toString();
  for (const view of Object.keys(VIEWS)) $('tab-' + view).setAttribute('href', hrefFor(view));
}

/** Reads #env=…&view=… (or ?env=…) and shows that. */
function readLocation() {
  const loc = U.parseLocation(location.search, location.hash);
  let env = loc.env || state.defaultEnv;
  if (loc.env && !envByName(loc.env)) {
    notifyError(`There is no environment named “${loc.env}”; showing ${state.defaultEnv}, the default.`);
    env = state.defaultEnv;
  }
  const view = Object.hasOwn(VIEWS, loc.view) ? loc.view : 'flags';
  const changed = env !== state.focus;
  const shown = view !== state.view;
  state.focus = env;
  setView(view);
  showFocus();
  if (changed) {
    refreshRows();
  }
  if (view === 'webhooks' && (shown || wh.list === null)) showWebhooks();
}

/** Puts the focus (and view) in the URL without adding a history entry per change. */
function writeLocation() {
  const params = new URLSearchParams({ env: state.focus });
  if (state.view !== 'flags') params.set('view', state.view);
  const url = location.pathname + location.search.replace(/([?&])env=[^&]*&?/, '$1').replace(/[?&]$/, '') + '#' + params.toString();
  history.replaceState(null, '', url);
}

function setFocus(env) {
  if (!envByName(env) || env === state.focus) return;
  state.focus = env;
  writeLocation();
  showFocus();
  refreshRows();
}

function setView(view) {
  state.view = view;
  for (const v of Object.keys(VIEWS)) {
    $(v + '-view').hidden = v !== view;
    if (v === view) $('tab-' + v).setAttribute('aria-current', 'page');
    else $('tab-' + v).removeAttribute('aria-current');
  }
  $('list-title').textContent = VIEWS[view];
  $('summary').hidden = view !== 'flags';
}

/** The flag's state in env. */
function st(flag, env) {
  return U.stateOf(flag, env, state.defaultEnv);
}

// ---------------------------------------------------------------------------
// the list

function rowKey(f) {
  return [f.revision, f.updated_at, f.age_days, (f.stale || []).join(',')].join('|');
}

function buildEnvCell(flag, env) {
  const switchText = el('span', { class: 'switch-text' });
  const sw = el(
    'button',
    { type: 'button', role: 'switch', class: 'switch', 'aria-checked': 'false', 'data-env': env.name, 'aria-label': `${flag.name} in ${env.name}` },
    el('span', { class: 'switch-track', 'aria-hidden': 'true' }, el('span', { class: 'switch-thumb' })),
    switchText,
  );
  const pctText = el('span', { class: 'pct-text' });
  const extra = el('span', { class: 'env-extra' });
  const bar = el('progress', { class: 'bar', max: '100', value: '0', 'aria-hidden': 'true' });
  // The release plan in this environment, when one runs, is paused or halted (updatePlanMarks).
  const planMark = el('button', { type: 'button', class: 'plan-mark', 'data-env': env.name, hidden: true });
  // When the flag was last evaluated here (paintEvaluated).
  const used = el('span', { class: 'env-used' });
  const td = el('td', { class: 'c-env', 'data-env': env.name, 'data-label': env.name }, el('div', { class: 'env-cell' }, sw, el('span', { class: 'env-sum' }, pctText, extra), bar, planMark, used));
  return { td, sw, switchText, pctText, extra, bar, planMark, used, usedKey: null, env: env.name };
}

function buildRow(flag) {
  const nameBtn = el('button', { type: 'button', class: 'flag-name' });
  const staleReason = el('span', { class: 'visually-hidden' });
  const staleBadge = el('span', { class: 'badge badge-stale' }, 'stale', staleReason);
  const desc = el('span', { class: 'flag-desc' });
  const planNotes = el('ul', { class: 'plan-notes', hidden: true });
  const cells = state.envs.map((e) => buildEnvCell(flag, e));
  const tdOwner = el('td', { class: 'c-owner', 'data-label': 'Owner' });
  const tdAge = el('td', { class: 'c-age', 'data-label': 'Age' });
  const tr = el(
    'tr',
    {},
    el('td', { class: 'c-name' }, el('div', { class: 'name-line' }, nameBtn, staleBadge), desc, planNotes),
    ...cells.map((c) => c.td),
    tdOwner,
    tdAge,
  );
  tr.dataset.name = flag.name;
  nameBtn.textContent = flag.name;
  nameBtn.setAttribute('aria-label', `${flag.name}: open rollout, users, segments and history`);
  // planKey '': built without plan marks (planKeyOf of a flag without plans).
  return { tr, key: null, planKey: '', evalKey: null, refs: { nameBtn, staleBadge, staleReason, desc, planNotes, cells, tdOwner, tdAge } };
}

function updateEnvCell(c, flag, busy) {
  const s = st(flag, c.env);
  c.td.classList.toggle('is-on', !!s.enabled);
  c.sw.setAttribute('aria-checked', s.enabled ? 'true' : 'false');
  c.switchText.textContent = s.enabled ? 'On' : 'Off';
  c.sw.disabled = busy;
  c.pctText.textContent = `${s.percentage} %`;
  c.bar.value = s.percentage;
  c.td.classList.toggle('pct-off', !s.enabled);
  const nu = (s.users || []).length;
  const ns = (s.segments || []).length;
  const bits = [];
  if (nu) bits.push(U.plural(nu, 'user', 'users'));
  if (ns) bits.push(U.plural(ns, 'segment', 'segments'));
  c.extra.textContent = bits.join(' · ');
  c.extra.dataset.users = String(nu);
  c.extra.dataset.segments = String(ns);
  let title = `${c.env}: ${s.enabled ? `on for ${s.percentage} % of users` : `off (the ${s.percentage} % applies once it is on)`}`;
  if (nu) title += `; listed: ${U.listSome(s.users, 10)}`;
  if (ns) title += `; segments: ${U.listSome(s.segments, 10)}`;
  c.td.title = title;
}

function updateRow(row, flag) {
  const r = row.refs;
  const stale = flag.stale || [];
  row.tr.classList.toggle('is-stale', stale.length > 0);
  r.staleBadge.hidden = stale.length === 0;
  const reasons = stale.map(U.staleText).join('; ');
  r.staleBadge.title = reasons ? `Due for removal: ${reasons}` : '';
  r.staleReason.textContent = reasons ? `: ${reasons}` : '';
  r.desc.textContent = flag.description || '';
  r.desc.title = flag.description || '';
  r.desc.hidden = !flag.description;
  const busy = state.pending.has(flag.name);
  for (const c of r.cells) updateEnvCell(c, flag, busy);
  r.tdOwner.textContent = flag.owner || '—';
  r.tdOwner.classList.toggle('none', !flag.owner);
  r.tdOwner.title = flag.owner || 'No owner';
  r.tdAge.textContent = flag.age_days === undefined || flag.age_days === null ? '—' : `${flag.age_days} d`;
  r.tdAge.title = `Created ${U.formatTime(flag.created_at)}`;
  row.key = rowKey(flag);
}

/** What the "evaluated … ago" words of a row are made from, but the clock. */
function evalKeyOf(flag) {
  return flag.created_at + '|' + state.envs.map((e) => U.evaluatedAt(flag, e.name, state.defaultEnv) || '').join('|');
}

/** The words (and tooltip) of one cell's "last evaluated" line; writes only what changed. */
function paintEvaluated(c, flag, now) {
  const at = U.evaluatedAt(flag, c.env, state.defaultEnv);
  const e = envByName(c.env);
  const unused = U.unusedFor(at, [flag.created_at, e && e.created_at], now);
  setText(c.used, at ? `evaluated ${U.shortAgo(at, now)}` : 'never evaluated');
  const key = `${at}|${unused}`;
  if (c.usedKey === key) return;
  c.usedKey = key;
  c.used.classList.toggle('is-unused', unused);
  c.used.title = at
    ? `Last evaluated in ${c.env}: ${U.formatTime(at)}`
    : unused
      ? `Never evaluated in ${c.env} in over ${U.UNUSED_DAYS} days: a candidate for removal`
      : `Never evaluated in ${c.env}`;
}

/** Brings every "evaluated … ago" up to date with the clock (the list's words are not re-read for it). */
function evaluatedTick(now) {
  for (const [name, row] of state.rows) {
    const flag = state.flags.get(name);
    if (flag) for (const c of row.refs.cells) paintEvaluated(c, flag, now);
  }
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

/** Whether the flags name environments the page does not know (one was created or deleted elsewhere). */
function envsMoved(list) {
  const known = new Set(state.envs.map((e) => e.name));
  for (const f of list.slice(0, 1)) {
    if (!f.environments) return false;
    const names = Object.keys(f.environments);
    if (names.length !== known.size || names.some((n) => !known.has(n))) return true;
  }
  return false;
}

/** One flag changed (our own write): merge it in. */
function mergeFlag(flag) {
  const old = state.flags.get(flag.name);
  // A write answer may lack the derived fields; keep the last known ones until
  // the next list read brings exact values.
  const merged = { ...flag };
  if (merged.age_days === undefined) merged.age_days = old ? old.age_days : 0;
  if (merged.stale === undefined) merged.stale = old ? old.stale : [];
  if (merged.environments === undefined && old && old.environments) merged.environments = old.environments;
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
  const now = Date.now();
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
    const ek = evalKeyOf(flag);
    if (row.evalKey !== ek) {
      for (const c of row.refs.cells) paintEvaluated(c, flag, now);
      row.evalKey = ek;
    }
    const pk = planKeyOf(name);
    if (row.planKey !== pk) updatePlanMarks(row, name, pk);
  }
  // Order: move only rows that are out of place; keep focus where it was.
  const focused = document.activeElement;
  const sorted = U.sortFlags([...state.flags.values()], state.sort.key, state.sort.dir, state.focus, state.defaultEnv);
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
  let stale = 0;
  const on = new Map(state.envs.map((e) => [e.name, 0]));
  for (const [name, row] of state.rows) {
    const f = state.flags.get(name);
    const match = U.matchesFilter(f, state.filter, state.focus, state.defaultEnv);
    if (row.tr.hidden === match) row.tr.hidden = !match;
    if (match) shown++;
    for (const e of state.envs) if (st(f, e.name).enabled) on.set(e.name, on.get(e.name) + 1);
    if (f.stale && f.stale.length) stale++;
  }
  const total = state.flags.size;
  const summary = $('summary');
  const parts = [el('span', {}, U.plural(total, 'flag', 'flags'))];
  for (const e of state.envs) parts.push(el('span', { class: 'summary-on', 'data-env': e.name }, state.envs.length > 1 ? `${on.get(e.name)} on in ${e.name}` : `${on.get(e.name)} on`));
  if (stale) {
    const b = el('button', { type: 'button', class: 'btn btn-quiet', title: 'Show only stale flags' }, `${stale} stale`);
    b.addEventListener('click', () => setFilter('is:stale'));
    parts.push(b);
  } else parts.push(el('span', {}, 'none stale'));
  let moving = 0;
  let halted = 0;
  for (const m of state.plans.values()) {
    for (const p of m.values()) {
      if (p.status === 'running' || p.status === 'paused') moving++;
      else if (p.status === 'halted') halted++;
    }
  }
  if (moving) parts.push(el('span', { class: 'summary-plans' }, `${U.plural(moving, 'release plan', 'release plans')} under way`));
  if (halted) parts.push(el('span', { class: 'summary-halted' }, `${U.plural(halted, 'plan', 'plans')} halted`));
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
  if (row) for (const c of row.refs.cells) c.sw.disabled = n > 0;
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
        describe: (cur) => U.describePatch(op(cur), cur, state.defaultEnv),
        isNoop: (cur) => U.diffFlags(cur, U.applyPatch(cur, op(cur), state.defaultEnv), envNames()).length === 0,
        retry: (cur) => changeFlag(name, op, cur),
      });
    }
    if (e instanceof ApiError && e.status === 404 && !patchNamesUnknownEnv(patch)) {
      notifyError(`“${name}” no longer exists: someone deleted it. Your change (${U.describePatch(patch, base, state.defaultEnv)}) was not saved.`);
      forgetFlag(name);
      return null;
    }
    if (e instanceof ApiError && e.status === 400 && patch.environments) refreshEnvironments();
    if (!(e instanceof ApiError && e.status === 401)) notifyError(`“${name}”: could not ${U.describePatch(patch, base, state.defaultEnv)}. ${describeError(e)}`);
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
  const rows = U.diffFlags(base, current, envNames()).map((d) => diffRow(d.field, d.before, d.after, d.env));
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

function envNames() {
  return state.envs.map((e) => e.name);
}

/** Whether a patch names an environment the page no longer knows of. */
function patchNamesUnknownEnv(patch) {
  return Object.keys(patch.environments || {}).some((e) => !envByName(e));
}

/**
 * One row of a diff table: field (in env, when given), before, after. Users
 * and segments show what was added and removed.
 */
function diffRow(field, before, after, env) {
  const label = (env && state.envs.length > 1 ? `${env} · ` : '') + (U.FIELD_LABELS[field] || field);
  if (field === 'users' || field === 'segments') {
    const d = U.usersDelta(before, after);
    const cell = el('td', { colspan: '2' });
    const noun = field === 'segments' ? 'segment ' : '';
    if (d.added.length) cell.append(el('div', { class: 'users-add' }, `+ added ${noun}${U.listSome(d.added, 20)}`));
    if (d.removed.length) cell.append(el('div', { class: 'users-remove' }, `− removed ${noun}${U.listSome(d.removed, 20)}`));
    cell.append(el('div', { class: 'muted' }, `${U.formatValue(field, before || [])} → ${U.formatValue(field, after || [])}`));
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

/** A PATCH body that sets fields of the state in one environment. */
function envPatch(env, fields) {
  return { environments: { [env]: fields } };
}

/** The kill switch: turns the flag on or off in one environment, nowhere else. */
async function toggle(name, env) {
  const flag = state.flags.get(name);
  if (!flag || state.pending.has(name) || !env) return;
  const target = !st(flag, env).enabled;
  const updated = await changeFlag(name, () => envPatch(env, { enabled: target }), flag);
  if (updated && st(updated, env).enabled === target) notify(`“${name}” is now ${target ? 'on' : 'off'} in ${env}.`);
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
  segKey: null,
  copyTouched: false, // the person chose the copy environments themselves
  planFor: null, // "name|env" the plan section shows
  planKey: null, // what the plan section was built from
  planBusy: false, // a plan request is in flight
  planFormOpen: false, // the person asked to start a new plan where one has ended
};

function openFlag(name, { deleted = false } = {}) {
  Object.assign(detail, { name, deleted, formBase: null, pctDirty: false, usersAll: false, usersKey: null, historyFor: null, segKey: null, copyTouched: false, planFor: null, planKey: null, planFormOpen: false });
  clearMessages($('fd-msg'));
  resetPlanForm();
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
    for (const e of state.envs) {
      const on = st(flag, e.name).enabled;
      badges.push(el('span', { class: on ? 'badge badge-on' : 'badge badge-off', 'data-env': e.name }, `${e.name}: ${on ? 'on' : 'off'}`));
    }
    for (const r of flag.stale || []) badges.push(el('span', { class: 'badge badge-stale' }, `stale: ${U.staleText(r)}`));
    for (const e of state.envs) {
      const p = planOf(name, e.name);
      if (U.planShown(p)) badges.push(el('span', { class: 'badge badge-plan', 'data-status': p.status, 'data-env': e.name, title: planSentence(p) }, `${e.name}: plan ${p.status}`));
    }
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

  const env = state.focus;
  const s = st(flag, env);
  $('fd-env').value = env;
  $('fd-env-name').textContent = env;
  $('fd-envs').replaceChildren(
    ...state.envs.map((e) => {
      const b = el('button', { type: 'button', class: 'env-pill', 'data-env': e.name, 'aria-pressed': e.name === env ? 'true' : 'false' });
      b.append(el('strong', {}, e.name), ` ${U.stateSummary(st(flag, e.name))}`);
      b.title = e.description || e.name;
      return b;
    }),
  );
  const sw = $('fd-switch');
  sw.setAttribute('aria-checked', s.enabled ? 'true' : 'false');
  $('fd-switch-text').textContent = s.enabled ? 'On' : 'Off';
  sw.disabled = busy;
  const nUsers = (s.users || []).length;
  const nSegs = (s.segments || []).length;
  const extras = [];
  if (nUsers) extras.push(U.plural(nUsers, 'listed user', 'listed users'));
  if (nSegs) extras.push(`the users of ${U.plural(nSegs, 'segment', 'segments')}`);
  $('fd-state-help').textContent = s.enabled
    ? `On in ${env} for ${s.percentage === 100 ? 'everyone' : `${s.percentage} % of users`}${extras.length && s.percentage < 100 ? ` and ${extras.join(' and ')}` : ''}.`
    : `Off for everyone in ${env}, whatever the rollout, listed users and segments (kill switch).`;
  renderEvaluated(flag, env);

  for (const b of $('fd-steps').children) {
    b.setAttribute('aria-pressed', Number(b.dataset.pct) === s.percentage ? 'true' : 'false');
    b.disabled = busy;
  }
  if (!detail.pctDirty) {
    $('fd-pct').value = String(s.percentage);
    $('fd-pct-range').value = String(s.percentage);
  }
  $('fd-pct-set').disabled = busy;
  $('fd-pct-help').textContent = s.enabled
    ? 'Each user keeps the same bucket, so raising the rollout never turns anyone off.'
    : 'The rollout applies once the flag is on.';

  renderPlan();
  renderUsers(flag, busy);
  renderSegmentChoices(flag, busy);
  renderCopy(busy);
  renderDetailsForm(flag);
  const hkey = `${name}|${flag.revision}|${flag.updated_at}`;
  if (detail.historyFor !== hkey) loadHistory();
}

/** "Last evaluated: 3 d ago (Nov 27, 2026, 10:02)", or "Never evaluated in staging", for the environment in focus. */
function renderEvaluated(flag, env) {
  const now = Date.now();
  const at = U.evaluatedAt(flag, env, state.defaultEnv);
  const e = envByName(env);
  const since = [flag.created_at, e && e.created_at];
  const unused = U.unusedFor(at, since, now);
  const p = $('fd-evaluated');
  p.classList.toggle('is-unused', unused);
  if (at) {
    const when = `${U.shortAgo(at, now)} (${U.formatTime(at)})`;
    const time = p.querySelector('time');
    if (!time || time.dateTime !== at || time.textContent !== when) p.replaceChildren('Last evaluated: ', el('time', { datetime: at, title: at }, when));
    return;
  }
  let text = `Never evaluated in ${env}`;
  if (unused) {
    const days = Math.floor((now - Math.max(...since.map((t) => Date.parse(t)).filter((t) => !Number.isNaN(t)))) / 86400000);
    text += ` in ${U.plural(days, 'day', 'days')}: nothing seems to use it there, so it may be ready for removal`;
  }
  setText(p, text + '.');
}

function renderUsers(flag, busy) {
  const users = st(flag, state.focus).users || [];
  $('fd-users-count').textContent = `(${users.length})`;
  $('fd-users-tools').hidden = users.length === 0;
  $('fd-users-clear').disabled = busy;
  const q = $('fd-users-filter').value.trim().toLowerCase();
  const key = `${state.focus}|${users.join('\n')}|${q}|${detail.usersAll}|${busy}`;
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
  const env = state.focus;
  if (p === st(flag, env).percentage) {
    renderDetail();
    return;
  }
  const updated = await changeFlag(name, () => envPatch(env, { percentage: p }), flag);
  if (updated && st(updated, env).percentage === p) notify(`Rollout of “${name}” in ${env} set to ${p} %.`);
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
  const env = state.focus;
  const cur = st(flag, env);
  const have = new Set(cur.users || []);
  const fresh = wanted.filter((u) => !have.has(u));
  if (!fresh.length) {
    notify(wanted.length === 1 ? `“${wanted[0]}” is already listed.` : `All ${wanted.length} are already listed.`, { kind: 'info' });
    return;
  }
  const problems = U.checkUsers([...(cur.users || []), ...fresh]);
  if (problems.length) {
    notifyError('Not added: ' + problems.join('; ') + '.');
    return;
  }
  const add = (f) => envPatch(env, { users: [...new Set([...(st(f, env).users || []), ...fresh])] });
  const updated = await changeFlag(name, add, flag);
  if (updated) {
    $('fd-users-add').value = '';
    const skipped = wanted.length - fresh.length;
    notify(`Added ${U.plural(fresh.length, 'user', 'users')} in ${env}${skipped ? ` (${skipped} already listed)` : ''}.`);
  }
}

async function removeUsers(list, label) {
  const name = detail.name;
  const flag = state.flags.get(name);
  if (!flag) return;
  const gone = new Set(list);
  const env = state.focus;
  const updated = await changeFlag(name, (f) => envPatch(env, { users: (st(f, env).users || []).filter((u) => !gone.has(u)) }), flag);
  if (updated) notify(`Removed ${label} in ${env}.`);
}

/** The segments to choose from for the flag's state in the focused environment. */
function renderSegmentChoices(flag, busy) {
  const chosen = st(flag, state.focus).segments || [];
  const names = state.segments.map((g) => g.name);
  for (const c of chosen) if (!names.includes(c)) names.push(c); // chosen but not (yet) in our list
  $('fd-segments-count').textContent = `(${chosen.length})`;
  const key = `${state.focus}|${chosen.join('\n')}|${names.join('\n')}|${busy}`;
  if (key === detail.segKey) return;
  detail.segKey = key;
  const items = names.map((n) => {
    const seg = state.segments.find((g) => g.name === n);
    const box = el('input', { type: 'checkbox', 'data-segment': n, disabled: busy });
    box.checked = chosen.includes(n);
    const label = el('label', {}, box, el('span', { class: 'seg-choice-name' }, n));
    if (seg) label.append(el('span', { class: 'muted small' }, ` ${U.plural(seg.users_count ?? 0, 'user', 'users')}`));
    if (seg && seg.description) label.title = seg.description;
    return el('li', {}, label);
  });
  if (!names.length) items.push(el('li', { class: 'chips-empty' }, 'No segments yet: create them under “Segments”.'));
  $('fd-segments').replaceChildren(...items);
}

async function setSegment(seg, on) {
  const name = detail.name;
  const flag = state.flags.get(name);
  if (!flag) return;
  const env = state.focus;
  const op = (f) => {
    const cur = st(f, env).segments || [];
    return envPatch(env, { segments: on ? [...new Set([...cur, seg])] : cur.filter((x) => x !== seg) });
  };
  const updated = await changeFlag(name, op, flag);
  detail.segKey = null;
  renderDetail();
  if (updated) notify(on ? `Segment “${seg}” added to “${name}” in ${env}.` : `Segment “${seg}” removed from “${name}” in ${env}.`);
}

function renderCopy(busy) {
  const from = $('fd-copy-from');
  const to = $('fd-copy-to');
  if (!detail.copyTouched) {
    // Default: from the environment in focus to the next one.
    const names = envNames();
    const i = names.indexOf(state.focus);
    from.value = state.focus;
    to.value = names[(i + 1) % names.length] || state.focus;
  }
  $('fd-copy').disabled = busy || state.envs.length < 2;
}

/** "Copy from A to B": shows every change, then one PATCH of B's state with If-Match. */
async function copyBetween(ev) {
  ev.preventDefault();
  const name = detail.name;
  const flag = state.flags.get(name);
  const from = $('fd-copy-from').value;
  const to = $('fd-copy-to').value;
  if (!flag) return;
  if (from === to) {
    notifyError('Choose two different environments to copy between.');
    return;
  }
  const changes = U.diffStates(st(flag, to), st(flag, from));
  if (!changes.length) {
    notify(`“${name}” is already the same in ${to} as in ${from}; nothing to copy.`, { kind: 'info' });
    return;
  }
  const body = [
    el('p', {}, `The state of “${name}” in ${to} will become its state in ${from}. This is what changes in ${to}:`),
    el(
      'table',
      { class: 'diff', id: 'copy-preview' },
      el('caption', { class: 'visually-hidden' }, `What changes in ${to}`),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Field'), el('th', { scope: 'col' }, `${to} now`), el('th', { scope: 'col' }, `After (as in ${from})`))),
      el('tbody', {}, ...changes.map((d) => diffRow(d.field, d.before, d.after))),
    ),
    el('p', { class: 'muted small' }, `Nothing else changes: not ${from}, not the other environments, not the description or owner.`),
  ];
  if (!(await confirmBox(`Copy ${from} → ${to}?`, body, `Copy to ${to}`))) return;
  // The state as it was previewed; a 412 shows what moved meanwhile before anything is applied.
  const copied = U.copyState(st(flag, from));
  const updated = await changeFlag(name, () => envPatch(to, copied), flag);
  if (updated) notify(`Copied “${name}” from ${from} to ${to}.`);
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
  if (ev.before && ev.after) changes = U.diffFlags(ev.before, ev.after, envNames());
  else if (ev.after) changes = U.diffFlags(null, ev.after, envNames()).filter((d) => !isDefault(d.field, d.after));
  if (Array.isArray(ev.environments) && ev.environments.length) {
    head.append(el('span', { class: 'event-envs small' }, `in ${ev.environments.join(', ')}`));
  }
  if (ev.action === 'delete' && ev.before) {
    li.append(el('p', { class: 'event-note' }, `Deleted while ${summarize(ev.before)}.`));
  } else if (ev.action === 'create' && !changes.length) {
    li.append(el('p', { class: 'event-note' }, 'Created off, at 0 %, with no listed users.'));
  } else if (changes.length && !ev.before) {
    // A creation (or a revert that brought the flag back): just the values it got.
    const label = (d) => (d.env && state.envs.length > 1 ? `${d.env} · ` : '') + U.FIELD_LABELS[d.field];
    const rows = changes.map((d) =>
      d.field === 'users'
        ? el('tr', {}, el('th', { scope: 'row' }, label(d)), el('td', { class: 'set' }, `${U.formatValue('users', d.after)}: ${U.listSome(d.after, 20)}`))
        : el('tr', {}, el('th', { scope: 'row' }, label(d)), el('td', { class: 'set' }, U.formatValue(d.field, d.after))),
    );
    if (ev.action !== 'create') li.append(el('p', { class: 'event-note' }, 'Brought back after it had been deleted, with:'));
    li.append(el('table', { class: 'diff' }, el('caption', { class: 'visually-hidden' }, 'The values it got'), el('tbody', {}, ...rows)));
  } else if (changes.length) {
    const table = el(
      'table',
      { class: 'diff' },
      el('caption', { class: 'visually-hidden' }, `Fields ${ACTION_WORDS[ev.action] || 'changed'}`),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Field'), el('th', { scope: 'col' }, 'Before'), el('th', { scope: 'col' }, 'After'))),
      el('tbody', {}, ...changes.map((d) => diffRow(d.field, d.before, d.after, d.env))),
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
  return (field === 'enabled' && v === false) || (field === 'percentage' && v === 0) || ((field === 'users' || field === 'segments') && Array.isArray(v) && !v.length) || v === '' || v === undefined;
}

function summarize(f) {
  if (f.environments && state.envs.length > 1) {
    return Object.keys(f.environments).map((e) => `${U.stateSummary(st(f, e))} in ${e}`).join('; ');
  }
  const s = st(f, state.defaultEnv);
  return `${s.enabled ? 'on' : 'off'}, at ${s.percentage} %, with ${U.plural((s.users || []).length, 'listed user', 'listed users')}`;
}

/**
 * What a revert of ev would make of the flag: the server restores only the
 * parts that event changed (the definition if it changed, and the state in
 * each environment it names); a deleted flag comes back as it was.
 */
function revertTarget(current, ev) {
  const before = ev.before;
  if (!current || !ev.after || !before.environments) return before;
  const out = { ...current, environments: { ...(current.environments || {}) } };
  for (const f of U.DEF_FIELDS) if (!U.sameValue(before[f], ev.after[f])) out[f] = before[f];
  const envs = Array.isArray(ev.environments) ? ev.environments : Object.keys(before.environments);
  for (const e of envs) if (before.environments[e]) out.environments[e] = before.environments[e];
  return out;
}

async function revertTo(name, ev) {
  const current = state.flags.get(name) || null;
  const target = revertTarget(current, ev);
  const changes = U.diffFlags(current, target, envNames());
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
        el('tbody', {}, ...changes.map((d) => diffRow(d.field, d.before, d.after, d.env))),
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
// release plans: one per flag and environment (docs/api.md §8)

function planOf(name, env) {
  const m = state.plans.get(env);
  return (m && m.get(name)) || null;
}

/** What the list shows of a flag's plans: changes only when a mark must change (not with the countdown). */
function planKeyOf(name) {
  let key = '';
  for (const e of state.envs) {
    const p = planOf(name, e.name);
    if (U.planShown(p)) key += `${e.name}|${p.status}|${p.step}|${p.next_at}|${p.reason}\n`;
  }
  return key;
}

/** Sets a node's text only when it differs (a ticking countdown touches nothing that did not move). */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** The words of a plan's mark in its environment's cell: "Plan: 50 % in 23 h", "Plan paused", "Plan halted". */
function markText(p) {
  if (p.status === 'running') {
    const next = U.nextStep(p);
    return next ? `Plan: ${next.percentage} % ${U.untilText(p.next_at)}` : 'Plan running';
  }
  return `Plan ${U.PLAN_STATUS_WORDS[p.status] || p.status}`;
}

/** A plan in one sentence, for titles and labels. */
function planSentence(p) {
  let s = `release plan ${U.PLAN_STATUS_WORDS[p.status] || p.status}, ${U.planLadder(p)}`;
  // No "in 23 min" here: titles and labels are set when the plan changes, not every second.
  if (p.status === 'running' && p.next_at) s += `, next step at ${U.formatTime(p.next_at)}`;
  if (p.reason) s += `: ${p.reason}`;
  return s;
}

/**
 * The plan marks of one row: a mark in each environment's cell with a plan
 * running, paused or halted there, and under the name, the reason of each
 * halted or paused one (halted first), so a rollback is seen without opening
 * anything.
 */
function updatePlanMarks(row, name, key) {
  row.planKey = key;
  const notes = [];
  let anyHalted = false;
  for (const c of row.refs.cells) {
    const p = planOf(name, c.env);
    const shown = U.planShown(p);
    c.planMark.hidden = !shown;
    c.td.classList.toggle('plan-halted', shown && p.status === 'halted');
    if (!shown) {
      c.planMark.textContent = '';
      c.planMark.removeAttribute('data-status');
      continue;
    }
    c.planMark.dataset.status = p.status;
    c.planMark.textContent = markText(p);
    c.planMark.setAttribute('aria-label', `${name} in ${c.env}: ${planSentence(p)}. Open it.`);
    c.planMark.title = `${c.env}: ${planSentence(p)}`;
    if (p.status === 'halted') anyHalted = true;
    if (p.status === 'halted' || p.status === 'paused') notes.push(p);
  }
  notes.sort((a, b) => (a.status === b.status ? 0 : a.status === 'halted' ? -1 : 1));
  row.refs.planNotes.replaceChildren(
    ...notes.map((p) =>
      el(
        'li',
        { class: 'plan-note', 'data-status': p.status, 'data-env': p.environment },
        el('span', { class: 'badge badge-plan', 'data-status': p.status }, p.status === 'halted' ? 'halted' : 'paused'),
        el('span', { class: 'plan-note-text' }, `Plan in ${p.environment}${p.reason ? `: ${p.reason}` : ''}`),
      ),
    ),
  );
  row.refs.planNotes.hidden = notes.length === 0;
  row.tr.classList.toggle('plan-halted', anyHalted);
}

/** Replaces the plans of one environment with a fresh GET /api/plans?env= answer. */
function setPlans(env, list) {
  const fresh = new Map();
  for (const p of list) if (p && typeof p.flag === 'string') fresh.set(p.flag, p);
  const old = state.plans.get(env);
  state.plans.set(env, fresh);
  if (old && old.size === fresh.size && [...fresh].every(([n, p]) => U.sameValue(old.get(n), p))) return;
  plansChanged();
}

/** One plan changed (the answer to our own action or start). */
function setPlan(env, plan) {
  if (!plan || typeof plan.flag !== 'string') return;
  const r = planRead(env);
  r.gen++; // a list read that started before this answer is older than it: drop it
  if (!state.plans.has(env)) state.plans.set(env, new Map());
  state.plans.get(env).set(plan.flag, plan);
  plansChanged();
}

function plansChanged() {
  let touched = false;
  for (const [name, row] of state.rows) {
    const pk = planKeyOf(name);
    if (row.planKey !== pk) {
      updatePlanMarks(row, name, pk);
      touched = true;
    }
  }
  if (touched) applyFilter();
  if (detail.name) renderDetail();
}

function planRead(env) {
  let r = state.planReads.get(env);
  if (!r) {
    r = { reading: null, queued: null, gen: 0, at: 0, failed: false };
    state.planReads.set(env, r);
  }
  return r;
}

/**
 * Re-reads the plans of one environment: one GET /api/plans?env= at a time;
 * callers arriving while one runs share the next one. Never rejects.
 */
function refreshPlans(env) {
  if (!state.api) return Promise.resolve();
  const r = planRead(env);
  if (r.queued) return r.queued;
  if (r.reading) {
    r.queued = r.reading.then(() => {
      r.queued = null;
      return readPlans(env, r);
    });
    return r.queued;
  }
  return readPlans(env, r);
}

function readPlans(env, r) {
  const api = state.api;
  const gen = r.gen;
  r.at = Date.now();
  r.reading = (async () => {
    try {
      const list = await api.listPlans(env);
      if (state.api !== api || !envByName(env)) return;
      const hadError = state.plansError;
      state.plansError = '';
      r.failed = false;
      if (r.gen === gen) setPlans(env, list);
      else refreshPlans(env); // an action answered meanwhile: read once more, after it
      if (hadError && detail.name) renderDetail();
    } catch (e) {
      if (state.api !== api || (e instanceof ApiError && e.status === 401)) return;
      state.plansError = describeError(e);
      r.failed = true; // planTick tries again
      if (detail.name) renderDetail();
    }
  })().finally(() => {
    r.reading = null;
  });
  return r.reading;
}

/**
 * Every second: the countdowns ("in 23 s") move on, and the plans of an
 * environment with a plan running or paused are re-read every PLAN_POLL_MS
 * (what only changes a plan, as pause, resume and abort do, moves no version),
 * those of the others every PLAN_IDLE_POLL_MS.
 */
function planTick() {
  if (!state.api) return;
  const now = Date.now();
  for (const [env, m] of state.plans) {
    let moving = false;
    for (const [name, p] of m) {
      if (p.status !== 'running' && p.status !== 'paused') continue;
      moving = true;
      if (p.status !== 'running') continue;
      const row = state.rows.get(name);
      const c = row && row.refs.cells.find((x) => x.env === env);
      if (c && !c.planMark.hidden) setText(c.planMark, markText(p));
    }
    const every = moving ? PLAN_POLL_MS : PLAN_IDLE_POLL_MS;
    if (envByName(env) && now - planRead(env).at >= every - 100) refreshPlans(env);
  }
  // A read that failed is tried again as often (the plans may have moved meanwhile).
  for (const [env, r] of state.planReads) if (r.failed && envByName(env) && now - r.at >= PLAN_POLL_MS - 100) refreshPlans(env);
  if (detail.name && !detail.deleted) tickPlanPanel();
  usageTick(now);
  webhookTick(now);
  if (now - state.agesAt >= AGES_MS) {
    state.agesAt = now;
    evaluatedTick(now);
  }
}

// ---- the plan in the flag panel (the environment in focus)

function renderPlan() {
  const name = detail.name;
  const env = state.focus;
  const plan = planOf(name, env);
  const where = `${name}|${env}`;
  if (detail.planFor !== where) {
    // Another flag or environment: what was said about the last one no longer applies.
    detail.planFor = where;
    detail.planFormOpen = false;
    clearMessages($('fd-plan-msg'));
    for (const input of $('fd-plan-steps').querySelectorAll('input')) input.removeAttribute('aria-invalid');
  }
  setText($('fd-plan-env'), env);
  $('fd-plan-read').textContent = state.plansError ? `Could not read the release plans: ${state.plansError} What is shown here may be out of date.` : '';
  const key = JSON.stringify([where, plan, detail.planBusy, detail.planFormOpen]);
  if (key === detail.planKey) return tickPlanPanel();
  detail.planKey = key;

  $('fd-plan-current').hidden = !plan;
  // No plan: the form is there. One that has ended: the form is one click away, so the plan stays what is seen.
  const canStart = U.canStartPlan(plan);
  $('fd-plan-form').hidden = !canStart || (plan && !detail.planFormOpen);
  $('fd-plan-new').hidden = !canStart || !plan || detail.planFormOpen;
  $('fd-plan-new').setAttribute('aria-expanded', String(!$('fd-plan-form').hidden));
  $('fd-plan-start').disabled = detail.planBusy;
  $('fd-plan-form-h').textContent = plan
    ? `Start a new plan in ${env} (it replaces this one): on at ${U.PLAN_TEMPLATE[0].percentage} % at once, then up the steps.`
    : `Start one from the template in ${env}: on at ${U.PLAN_TEMPLATE[0].percentage} % at once, then up the steps on its own. Holds can be changed.`;
  planFormTotal();
  if (!plan) {
    for (const id of ['fd-plan-pause', 'fd-plan-resume', 'fd-plan-advance', 'fd-plan-abort']) $(id).disabled = true;
    return;
  }

  const badge = $('fd-plan-status');
  badge.className = 'badge badge-plan';
  badge.dataset.status = plan.status;
  badge.textContent = U.PLAN_STATUS_WORDS[plan.status] || plan.status;
  $('fd-plan-reason').textContent = plan.reason || '';
  $('fd-plan-ladder').setAttribute('aria-label', `Steps of the plan: ${U.planLadder(plan).replace(/\[([^\]]*)\]/, '$1 (applied)')}`);
  $('fd-plan-ladder').replaceChildren(
    ...(plan.steps || []).map((s, i) => {
      const when = i < plan.step ? 'past' : i === plan.step ? 'current' : 'ahead';
      const li = el('li', { class: 'ladder-step', 'data-state': when, 'data-pct': String(s.percentage), 'aria-current': i === plan.step ? 'step' : null }, el('span', { class: 'ladder-pct' }, `${s.percentage} %`));
      if (i + 1 < plan.steps.length && s.hold_seconds) li.append(el('span', { class: 'ladder-hold' }, `held ${U.formatDuration(s.hold_seconds)}`));
      if (i === plan.step) li.append(el('span', { class: 'visually-hidden' }, ' (applied)'));
      return li;
    }),
  );
  const started = [`Started by ${plan.started_by || 'unknown'}`];
  if (plan.started_at) started.push(`${U.timeAgo(plan.started_at)} (${U.formatTime(plan.started_at)})`);
  $('fd-plan-meta').textContent = `${started.join(' ')} · when an alert fires: ${plan.on_alert === 'pause' ? 'pause the plan' : 'turn it off and halt'}`;
  const can = U.planActions(plan.status);
  for (const a of ['pause', 'resume', 'advance', 'abort']) $(`fd-plan-${a}`).disabled = !can[a] || detail.planBusy;
  const next = U.nextStep(plan);
  $('fd-plan-advance').textContent = next ? `Advance to ${next.percentage} %…` : 'Advance now…';
  $('fd-plan-advance').setAttribute('aria-label', next ? `Advance the plan to ${next.percentage} % now` : 'Advance the plan now');
  tickPlanPanel(true);
}

/** The plan's next step in words, absolute and relative; the relative part moves every second. */
function tickPlanPanel(force = false) {
  const plan = planOf(detail.name, state.focus);
  const box = $('fd-plan-next');
  if (!plan) {
    box.replaceChildren();
    return;
  }
  const next = U.nextStep(plan);
  let text;
  if (plan.status === 'running' && next && plan.next_at) text = `Next: ${next.percentage} % ${U.untilText(plan.next_at)}`;
  else if (plan.status === 'paused') text = next ? `Waits for a person. Resume holds ${plan.percentage} % for ${U.formatDuration(plan.steps[plan.step].hold_seconds)} again, then goes on to ${next.percentage} %.` : 'Waits for a person.';
  else if (plan.status === 'halted') text = `Halted at ${plan.percentage} %, with the flag turned off here. Abort it, or start a new plan.`;
  else if (plan.status === 'done') text = `Done: every step applied, at ${plan.percentage} %.`;
  else if (plan.status === 'aborted') text = `Aborted at ${plan.percentage} %; the state was left as it was.`;
  else text = '';
  const cur = box.querySelector('.plan-next-text');
  if (!force && cur && box.dataset.key === `${plan.status}|${plan.next_at}`) {
    setText(cur, text);
    return;
  }
  box.dataset.key = `${plan.status}|${plan.next_at}`;
  const parts = [el('span', { class: 'plan-next-text' }, text)];
  if (plan.status === 'running' && plan.next_at) parts.push(' ', el('time', { datetime: plan.next_at, title: plan.next_at, class: 'muted' }, `(${U.formatTime(plan.next_at)})`));
  box.replaceChildren(...parts);
}

/** The template, holds in their best unit, alert: turn off. */
function resetPlanForm() {
  U.PLAN_TEMPLATE.forEach((s, i) => {
    if (!s.hold_seconds) return;
    const { value, unit } = U.splitHold(s.hold_seconds);
    $(`fd-plan-hold-${i}`).value = String(value);
    $(`fd-plan-unit-${i}`).value = unit;
    $(`fd-plan-hold-${i}`).removeAttribute('aria-invalid');
  });
  $('fd-plan-alert-disable').checked = true;
  planFormTotal();
}

/** The steps as the form has them: [{percentage, hold_seconds}, …, {percentage}]. */
function planFormSteps() {
  return U.PLAN_TEMPLATE.map((s, i) => {
    if (i === U.PLAN_TEMPLATE.length - 1) return { percentage: s.percentage };
    const secs = U.holdSeconds($(`fd-plan-hold-${i}`).value, $(`fd-plan-unit-${i}`).value);
    // Whatever was typed goes to the server, which says what is wrong with it (400 names the step).
    return { percentage: s.percentage, hold_seconds: Number.isNaN(secs) ? $(`fd-plan-hold-${i}`).value.trim() || null : secs };
  });
}

function planFormTotal() {
  const steps = planFormSteps();
  const holds = steps.slice(0, -1).map((s) => s.hold_seconds);
  const last = steps[steps.length - 1].percentage;
  $('fd-plan-total').textContent = holds.every((h) => Number.isInteger(h) && h > 0)
    ? `Reaches ${last} % after ${U.formatDuration(holds.reduce((a, b) => a + b, 0))} at the earliest.`
    : '';
}

async function startPlan(ev) {
  ev.preventDefault();
  const name = detail.name;
  const env = state.focus;
  if (!name || detail.planBusy) return;
  const body = { steps: planFormSteps(), on_alert: $('fd-plan-alert-pause').checked ? 'pause' : 'disable' };
  clearMessages($('fd-plan-msg'));
  for (const input of $('fd-plan-steps').querySelectorAll('input')) input.removeAttribute('aria-invalid');
  detail.planBusy = true;
  renderDetail();
  try {
    const plan = await state.api.startPlan(name, env, body);
    if (detail.name === name) detail.planFormOpen = false;
    setPlan(env, plan);
    // Said in the plan section itself: the panel's message area would cover what it says.
    const next = U.nextStep(plan);
    if (detail.name === name) notify(`Started in ${env}: on at ${plan.percentage} % now${next && plan.next_at ? `; ${next.percentage} % ${U.untilText(plan.next_at)}` : ''}.`, { area: $('fd-plan-msg') });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    const i = U.planErrorStep(e.message);
    const input = i >= 0 && i < U.PLAN_TEMPLATE.length - 1 ? $(`fd-plan-hold-${i}`) : null;
    const where = i >= 0 && U.PLAN_TEMPLATE[i] ? `Step ${i + 1} (${U.PLAN_TEMPLATE[i].percentage} %): ` : '';
    if (detail.name === name) {
      notifyError(`The plan was not started. ${where}${describeError(e)}`, { area: $('fd-plan-msg') });
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
    }
  } finally {
    detail.planBusy = false;
    await refreshPlans(env);
    if (detail.name === name) {
      renderDetail();
      if (!$('fd-plan-current').hidden && (planFocusLost() || document.activeElement === $('fd-plan-start'))) focusPlanAction();
    }
  }
}

/**
 * Has the focus nowhere useful after a plan call: on the page itself, on a
 * disabled button (the one just used), or on the plan section, where
 * focusPlanAction() leaves it while every action is disabled (another call
 * still running)?
 */
function planFocusLost() {
  const a = document.activeElement;
  return !a || a === document.body || a === $('fd-plan') || a.disabled === true;
}

/** Focus the first action the plan allows (after the one just used went disabled), else the section. */
function focusPlanAction() {
  const b = [...$('fd-plan-current').querySelectorAll('.plan-actions button')].find((x) => !x.disabled);
  (b || $('fd-plan')).focus();
}

const PLAN_DONE_WORDS = { pause: 'paused', resume: 'resumed', advance: 'advanced', abort: 'aborted' };

async function planAction(action) {
  const name = detail.name;
  const env = state.focus;
  const plan = planOf(name, env);
  if (!name || !plan || detail.planBusy) return;
  const next = U.nextStep(plan);
  if (action === 'advance') {
    const body = [
      el('p', {}, `“${name}” in ${env} goes from ${plan.percentage} % to ${next ? next.percentage : '?'} % now, without waiting for the rest of the hold.`),
      el('p', { class: 'muted small' }, next && U.nextStep({ ...plan, step: plan.step + 1 }) ? `Then the plan holds ${next.percentage} % for ${U.formatDuration(next.hold_seconds)} before the next step.` : 'That is the last step: the plan is done after it.'),
    ];
    if (!(await confirmBox(next ? `Advance to ${next.percentage} % now?` : 'Advance now?', body, next ? `Advance to ${next.percentage} %` : 'Advance'))) return;
  } else if (action === 'abort') {
    const flag = state.flags.get(name);
    const body = [
      el('p', {}, `No further step is taken. “${name}” stays as it is in ${env}${flag ? ` (${U.stateSummary(st(flag, env))})` : ''}.`),
      el('p', { class: 'muted small' }, 'A new plan can be started afterwards.'),
    ];
    if (!(await confirmBox('Abort the release plan?', body, 'Abort plan', true))) return;
  }
  if (detail.name !== name) return;
  clearMessages($('fd-plan-msg'));
  detail.planBusy = true;
  renderDetail();
  try {
    const updated = await state.api.planAction(name, env, action);
    setPlan(env, updated);
    if (detail.name === name) notify(`Plan ${PLAN_DONE_WORDS[action]}${updated && updated.status === 'done' ? ': every step applied' : ''}.`, { area: $('fd-plan-msg') });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    if (detail.name === name) notifyError(`Could not ${action} the plan: ${describeError(e)}`, { area: $('fd-plan-msg') });
  } finally {
    detail.planBusy = false;
    await refreshPlans(env);
    if (detail.name === name) {
      renderDetail();
      if (planFocusLost()) focusPlanAction();
    }
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
// live updates: one long-poll per environment, GET /flags?env=E&wait=30 with
// If-None-Match of E's version; any of them moving re-reads /api/flags.

const CONN_WORDS = {
  connecting: 'Connecting to live updates.',
  live: 'Live: changes made elsewhere, in any environment, show up here at once.',
  retrying: 'Live updates are interrupted; retrying.',
};

/**
 * Shows the state of the live connection: a short text in the top bar (with a
 * countdown while retrying), a sentence for screen readers only when the state
 * changes, and the reason in words on the page once it has failed twice.
 */
function setConn(kind, text, reason = '', failures = 0) {
  const c = $('conn');
  const changed = c.dataset.state !== kind;
  c.dataset.state = kind;
  $('conn-text').textContent = text;
  c.title = reason ? `${text} — ${reason}` : CONN_WORDS[kind] || text;
  if (changed) $('conn-sr').textContent = CONN_WORDS[kind] || text;
  const banner = $('live-msg');
  if (kind === 'retrying' && failures >= 2) {
    $('live-msg-text').textContent =
      `Live updates are interrupted: ${reason} The page keeps retrying; what you see may be out of date, ` +
      'but your changes are still checked against the current state before they are saved.';
    banner.hidden = false;
  } else if (kind === 'live') banner.hidden = true;
}

/** The top bar's state from every environment's loop: live only when all are. */
function connFromLoops() {
  const live = state.live;
  if (!live) return;
  const loops = [...live.loops.values()];
  const failing = loops.find((l) => l.failures);
  if (failing) return; // the failing loop shows its own countdown
  if (loops.length && loops.every((l) => l.ok)) {
    if ($('conn').dataset.state !== 'live') setConn('live', 'Live');
  }
}

function startLive() {
  stopLive();
  state.live = { stopped: false, stop: new AbortController(), loops: new Map(), reading: null, queued: null };
  setConn('connecting', 'Connecting…');
  syncLoops();
}

/** One loop per environment: starts the missing ones, stops those of environments gone. */
function syncLoops() {
  const live = state.live;
  if (!live) return;
  for (const [name, loop] of live.loops) {
    if (!envByName(name)) {
      loop.stopped = true;
      loop.stop.abort();
      if (loop.wake) loop.wake();
      live.loops.delete(name);
    }
  }
  for (const e of state.envs) {
    if (live.loops.has(e.name)) continue;
    const loop = { env: e.name, version: e.version ?? null, stopped: false, stop: new AbortController(), wake: null, kick: false, failures: 0, ok: false };
    live.loops.set(e.name, loop);
    liveLoop(live, loop);
    if (!state.plans.has(e.name)) refreshPlans(e.name); // an environment created since sign-in
  }
  for (const env of [...state.plans.keys()]) if (!envByName(env)) state.plans.delete(env);
}

function stopLive() {
  const live = state.live;
  if (!live) return;
  live.stopped = true;
  live.stop.abort();
  for (const loop of live.loops.values()) {
    loop.stopped = true;
    loop.stop.abort();
    if (loop.wake) loop.wake();
  }
  state.live = null;
}

function sleep(loop, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      loop.wake = null;
      resolve();
    }
    loop.wake = done;
  });
}

/**
 * Re-reads /api/flags (and the segments, whose "used by" follow the flags).
 * One read at a time: callers arriving while one runs share the next one, so
 * three environments moving at once cost two reads, not three.
 */
function reread(live) {
  if (live.queued) return live.queued; // a read already waits behind the running one: share it
  if (live.reading) {
    live.queued = live.reading.catch(() => {}).then(() => {
      live.queued = null;
      return readNow(live);
    });
    return live.queued;
  }
  return readNow(live);
}

function readNow(live) {
  live.reading = (async () => {
    const [flags, segments] = await Promise.all([state.api.listFlags(), state.api.listSegments()]);
    if (live.stopped) return;
    if (envsMoved(flags)) await refreshEnvironments();
    state.flagsReadAt = Date.now();
    applyFlags(flags);
    setSegments(segments);
    refreshOpenDeliveries(); // a change makes a delivery to each webhook that wants it
  })().finally(() => {
    live.reading = null;
  });
  return live.reading;
}

/**
 * The usage poll: re-reads /api/flags alone (last_evaluated_at moves no
 * version) when no read has brought them for USAGE_POLL_MS, not while the tab
 * is hidden, and never beside another read (one that runs brings them too).
 */
function usageTick(now) {
  const live = state.live;
  if (!live || live.stopped || live.reading || live.queued || document.visibilityState === 'hidden') return;
  if (now - state.flagsReadAt < USAGE_POLL_MS - 100) return;
  state.flagsReadAt = now; // a failed read waits a whole period too; the live loops report the connection
  live.reading = (async () => {
    const flags = await state.api.listFlags();
    if (live.stopped) return;
    if (envsMoved(flags)) await refreshEnvironments();
    applyFlags(flags);
  })()
    .catch(() => {})
    .finally(() => {
      live.reading = null;
    });
}

/** Re-reads the environments (one was created, deleted or described elsewhere). */
async function refreshEnvironments() {
  if (!state.api) return;
  try {
    const envs = await state.api.listEnvironments();
    if (!state.api) return;
    const hadFocus = state.focus;
    setEnvironments(envs);
    if (hadFocus !== state.focus) {
      notify(`The environment “${hadFocus}” no longer exists; showing ${state.focus}.`, { kind: 'info' });
      writeLocation();
      refreshRows();
    }
  } catch (e) {
    if (e.status !== 401) notifyError('Could not read the environments: ' + describeError(e));
  }
}

async function liveLoop(live, loop) {
  while (!loop.stopped && !live.stopped) {
    const headers = {};
    const known = loop.version;
    if (known !== null) headers['If-None-Match'] = `"${known}"`;
    const req = new AbortController();
    const onStop = () => req.abort();
    loop.stop.signal.addEventListener('abort', onStop, { once: true });
    // A held request that outlives its wait by far is stuck somewhere: drop it.
    const timer = setTimeout(() => req.abort(), (WAIT_SECONDS + 20) * 1000);
    const started = Date.now();
    try {
      // The first request is not held: its 304 says at once that this
      // environment is reachable and still at the version the page read.
      const probe = !loop.ok && known !== null;
      const path = `/flags?env=${encodeURIComponent(loop.env)}` + (probe ? '' : `&wait=${WAIT_SECONDS}`);
      const r = await state.api.request('GET', path, { headers, signal: req.signal });
      let quick = false;
      if (r.status === 200) {
        let v = r.body && Number.isSafeInteger(r.body.version) ? r.body.version : null;
        if (v === null) {
          const m = /^"(\d+)"$/.exec(r.headers.get('ETag') || '');
          v = m ? Number(m[1]) : null;
        }
        // A plan's step is a flag write: the environment's plans are re-read with the flags.
        await Promise.all([reread(live), refreshPlans(loop.env)]);
        if (loop.stopped || live.stopped) break;
        loop.version = v;
        quick = v === null || v === known; // the server did not move on: do not spin
      } else {
        quick = !probe && Date.now() - started < 1000; // a 304 that was not held
      }
      loop.ok = true;
      if (loop.failures) {
        loop.failures = 0;
        setConn('live', 'Live');
      }
      connFromLoops();
      if (quick) await sleep(loop, 1000);
    } catch (e) {
      if (loop.stopped || live.stopped) break;
      if (e instanceof ApiError && e.status === 401) break; // signed out by onUnauthorized
      if (e instanceof ApiError && e.status === 404) {
        // The environment was deleted elsewhere: the re-read drops its loop.
        await refreshEnvironments();
        if (loop.stopped) break;
      }
      loop.failures++;
      const delay = Math.min(30, 2 ** Math.min(loop.failures - 1, 5)) * (0.8 + Math.random() * 0.4);
      const reason = e.name === 'AbortError' ? 'The server stopped answering.' : describeError(e);
      const until = Date.now() + Math.max(delay, e.retryAfter || 0) * 1000;
      while (!loop.stopped && Date.now() < until) {
        const left = Math.ceil((until - Date.now()) / 1000);
        setConn('retrying', `Reconnecting in ${left} s`, reason, loop.failures);
        await sleep(loop, Math.min(1000, until - Date.now()));
        if (loop.kick) {
          loop.kick = false;
          break;
        }
      }
      if (!loop.stopped) setConn('retrying', 'Reconnecting…', reason, loop.failures);
    } finally {
      clearTimeout(timer);
      loop.stop.signal.removeEventListener('abort', onStop);
    }
  }
}

/** Retry at once (the browser came back online, the tab became visible, or "Retry now"). */
function kickLive() {
  const live = state.live;
  if (!live) return;
  for (const loop of live.loops.values()) {
    if (loop.failures && loop.wake) {
      loop.kick = true;
      loop.wake();
    }
  }
}

// ---------------------------------------------------------------------------
// segments: named lists of users that a flag's state can include

const seg = { name: null, revision: null, base: null }; // the segment open in the dialog (null name: a new one)

function setSegments(list) {
  state.segments = list;
  renderSegments();
  if (detail.name) renderDetail();
}

function usedByText(used) {
  if (!used || !used.length) return 'not used';
  const byFlag = new Map();
  for (const u of used) {
    if (!byFlag.has(u.flag)) byFlag.set(u.flag, []);
    byFlag.get(u.flag).push(u.environment);
  }
  return U.listSome([...byFlag].map(([f, envs]) => `${f} (${envs.join(', ')})`), 8);
}

function renderSegments() {
  const list = state.segments;
  const key = JSON.stringify(list.map((g) => [g.name, g.description, g.users_count, g.used_by, g.revision]));
  if (key === state.segmentsKey) return;
  state.segmentsKey = key;
  const rows = list.map((g) => {
    const nameBtn = el('button', { type: 'button', class: 'flag-name seg-name' }, g.name);
    nameBtn.setAttribute('aria-label', `${g.name}: edit description and users`);
    const used = g.used_by || [];
    const tr = el(
      'tr',
      {},
      el('td', { class: 'c-name' }, nameBtn),
      el('td', { class: 'c-sdesc', 'data-label': '' }, g.description || ''),
      el('td', { class: 'c-count', 'data-label': 'Users' }, String(g.users_count ?? 0)),
      el('td', { class: used.length ? 'c-used' : 'c-used none', 'data-label': 'Used by' }, usedByText(used)),
    );
    tr.dataset.segment = g.name;
    tr.title = g.description || '';
    return tr;
  });
  $('segments-body').replaceChildren(...rows);
  $('segments-table').hidden = list.length === 0;
  $('segments-empty').hidden = list.length !== 0;
}

async function reloadSegments() {
  try {
    setSegments(await state.api.listSegments());
  } catch (e) {
    if (e.status !== 401) notifyError('Could not read the segments: ' + describeError(e));
  }
}

function segmentCount() {
  const { users, repeated } = U.countUsers($('sd-users').value);
  let text = U.plural(users.length, 'user', 'users');
  if (repeated) text += ` (${U.plural(repeated, 'repeat', 'repeats')} dropped)`;
  if (seg.base) {
    const d = U.usersDelta(seg.base.users || [], users);
    if (d.added.length || d.removed.length) text += ` · ${d.added.length} to add, ${d.removed.length} to remove`;
  }
  $('sd-count').textContent = text;
  return users;
}

async function openSegment(name) {
  $('segment-form').reset();
  $('sd-name-error').textContent = '';
  clearMessages($('sd-msg'));
  Object.assign(seg, { name: name || null, revision: null, base: null });
  $('sd-title').textContent = name ? `Segment “${name}”` : 'New segment';
  $('sd-name').value = name || '';
  $('sd-name').readOnly = !!name;
  $('sd-delete').hidden = !name;
  $('sd-submit').textContent = name ? 'Save segment' : 'Create segment';
  $('sd-used').textContent = '';
  $('sd-count').textContent = '';
  const d = $('segment-dialog');
  if (!d.open) d.showModal();
  if (!name) {
    segmentCount();
    $('sd-name').focus();
    return;
  }
  $('sd-submit').disabled = true;
  try {
    await loadSegment(name);
    $('sd-desc').focus();
  } catch (e) {
    if (e.status !== 401) notifyError(`Could not read “${name}”: ${describeError(e)}`, { area: $('sd-msg') });
  } finally {
    $('sd-submit').disabled = false;
  }
}

/** Reads one segment (with its users) into the dialog. */
async function loadSegment(name) {
  const g = await state.api.getSegment(name);
  seg.base = g;
  seg.revision = g.revision;
  $('sd-desc').value = g.description || '';
  $('sd-users').value = (g.users || []).join('\n');
  $('sd-used').textContent = `Used by: ${usedByText(g.used_by)}.`;
  segmentCount();
  return g;
}

async function submitSegment(ev) {
  ev.preventDefault();
  clearMessages($('sd-msg'));
  const users = segmentCount();
  const problems = U.checkUsers(users, U.MAX_SEGMENT_USERS, 'a segment');
  if (problems.length) {
    notifyError('Not saved: ' + problems.join('; ') + '.', { area: $('sd-msg') });
    return;
  }
  const description = $('sd-desc').value;
  const submit = $('sd-submit');
  submit.disabled = true;
  try {
    if (!seg.name) {
      const name = $('sd-name').value.trim();
      if (!name) {
        $('sd-name-error').textContent = 'Give the segment a name.';
        $('sd-name').focus();
        return;
      }
      const g = await state.api.createSegment({ name, description, users });
      $('segment-dialog').close();
      notify(`Created segment “${g.name}” with ${U.plural(users.length, 'user', 'users')}.`);
    } else {
      const body = {};
      if (description !== (seg.base.description || '')) body.description = description;
      if (!U.sameValue([...users].sort(U.compareBytes), [...(seg.base.users || [])].sort(U.compareBytes))) body.users = users;
      if (!Object.keys(body).length) {
        $('segment-dialog').close();
        return;
      }
      await state.api.patchSegment(seg.name, seg.revision, body);
      $('segment-dialog').close();
      notify(`Saved segment “${seg.name}” (${U.plural(users.length, 'user', 'users')}).`);
    }
    await reloadSegments();
  } catch (e) {
    if (e.status === 409 && !seg.name) {
      $('sd-name-error').textContent = describeError(e);
      $('sd-name').focus();
    } else if (e.status === 412) {
      // Someone saved this segment since it was opened: show theirs, keep ours in the box.
      const mine = { description, users: $('sd-users').value };
      try {
        const g = await state.api.getSegment(seg.name);
        seg.base = g;
        seg.revision = g.revision;
        $('sd-used').textContent = `Used by: ${usedByText(g.used_by)}.`;
        notifyError(
          `Someone else changed “${seg.name}” since you opened it (it now has ${U.plural((g.users || []).length, 'user', 'users')}` +
            `${g.description ? ` and the description “${g.description}”` : ''}). Nothing was overwritten. Save again to replace it with what is in this form, or Cancel to keep theirs.`,
          { area: $('sd-msg') },
        );
        $('sd-desc').value = mine.description;
        $('sd-users').value = mine.users;
        segmentCount();
      } catch (e2) {
        notifyError(`“${seg.name}” was changed by someone else, and reading it again failed: ${describeError(e2)}`, { area: $('sd-msg') });
      }
    } else if (e.status !== 401) notifyError('Could not save the segment: ' + describeError(e), { area: $('sd-msg') });
  } finally {
    submit.disabled = false;
  }
}

async function deleteSegment() {
  const name = seg.name;
  if (!name) return;
  const ok = await confirmBox(`Delete segment “${name}”?`, 'Its users lose what they got through it. A segment still chosen by a flag cannot be deleted.', 'Delete segment', true);
  if (!ok) return;
  clearMessages($('sd-msg'));
  try {
    await state.api.deleteSegment(name);
    $('segment-dialog').close();
    notify(`Deleted segment “${name}”.`);
  } catch (e) {
    if (e.status === 409) {
      let used = [];
      try {
        used = (await state.api.getSegment(name)).used_by || [];
      } catch {
        /* the server's words below say it already */
      }
      notifyError(
        `“${name}” was not deleted: it is still used by ${used.length ? usedByText(used) : 'a flag'}. Remove it from ${used.length > 1 ? 'those flags' : 'that flag'} first. ${describeError(e)}`,
        { area: $('sd-msg') },
      );
      if (used.length) $('sd-used').textContent = `Used by: ${usedByText(used)}.`;
    } else if (e.status === 404) {
      $('segment-dialog').close();
      notify(`“${name}” was already deleted.`, { kind: 'info' });
    } else if (e.status !== 401) notifyError(`Could not delete “${name}”: ${describeError(e)}`, { area: $('sd-msg') });
  }
  await reloadSegments();
}

// ---------------------------------------------------------------------------
// webhooks (docs/api.md §9): the list, "Add webhook", each one's recent deliveries

const wh = {
  list: null, // GET /api/webhooks, oldest first; null until read
  rows: new Map(), // id -> the row of the list and its deliveries panel (buildWebhookRow)
  reading: null, // the read of the list in flight
  queued: null, // a read asked for while one ran: it follows that one
  gen: 0, // moves on sign-out, so an answer that comes later is dropped
  seq: 0, // numbers the panels' element ids (never the server's id in an id)
  generated: '', // the secret "Generate" put in the form while it is still there
};

/** The tab is shown: read the list, and the open panels again. */
function showWebhooks() {
  reloadWebhooks();
  refreshOpenDeliveries();
}

function forgetWebhooks() {
  wh.gen++;
  wh.list = null;
  wh.rows.clear();
  wh.generated = '';
  $('webhooks-body').replaceChildren();
  $('webhooks-wrap').hidden = true;
  $('webhooks-empty').hidden = true;
  $('webhooks-status').textContent = '';
}

/** Reads the list (one read at a time; a call during a read is served by one read after it). */
function reloadWebhooks() {
  if (wh.queued) return wh.queued;
  if (wh.reading) {
    wh.queued = wh.reading.then(() => {
      wh.queued = null;
      return readWebhooks();
    });
    return wh.queued;
  }
  return readWebhooks();
}

function readWebhooks() {
  const gen = wh.gen;
  if (wh.list === null) $('webhooks-status').textContent = 'Reading the webhooks…';
  wh.reading = (async () => {
    try {
      const list = await state.api.listWebhooks();
      if (gen !== wh.gen) return;
      wh.list = list;
      $('webhooks-status').textContent = '';
      renderWebhooks();
    } catch (e) {
      if (gen !== wh.gen) return;
      $('webhooks-status').textContent = '';
      if (e.status !== 401) notifyError('Could not read the webhooks: ' + describeError(e));
    }
  })().finally(() => {
    wh.reading = null;
  });
  return wh.reading;
}

/** Puts the rows in the list's order; a webhook never changes, so its row (and open panel) is kept as it is. */
function renderWebhooks() {
  const list = wh.list || [];
  const ids = new Set(list.map((w) => w.id));
  for (const [id, row] of wh.rows) {
    if (ids.has(id)) continue;
    row.tr.remove();
    row.detail.remove();
    wh.rows.delete(id);
  }
  const body = $('webhooks-body');
  let at = body.firstChild;
  for (const w of list) {
    let row = wh.rows.get(w.id);
    if (!row) {
      row = buildWebhookRow(w);
      wh.rows.set(w.id, row);
    }
    // Move only what is out of place: a moved element would lose the keyboard focus.
    for (const node of [row.tr, row.detail]) {
      if (node === at) at = at.nextSibling;
      else body.insertBefore(node, at);
    }
  }
  $('webhooks-wrap').hidden = list.length === 0;
  $('webhooks-empty').hidden = wh.list === null || list.length !== 0;
}

function buildWebhookRow(w) {
  const panelId = `wh-deliveries-${++wh.seq}`;
  const events = Array.isArray(w.events) ? w.events : [];
  const toggle = el(
    'button',
    { type: 'button', class: 'btn btn-small wh-toggle', 'aria-expanded': 'false', 'aria-controls': panelId, 'aria-label': `Deliveries to ${w.url}` },
    el('span', { class: 'wh-caret', 'aria-hidden': 'true' }, '▸'),
    'Deliveries',
  );
  const del = el('button', { type: 'button', class: 'btn btn-small btn-danger wh-delete', 'aria-label': `Delete the webhook to ${w.url}` }, 'Delete…');
  const tr = el(
    'tr',
    { class: 'wh-row' },
    el('td', { class: 'c-url' }, el('span', { class: 'wh-url' }, w.url)),
    el('td', { class: 'c-format', 'data-label': 'Format' }, el('span', { class: 'badge badge-format', 'data-format': w.format === 'slack' ? 'slack' : 'json' }, U.webhookFormatText(w.format))),
    el('td', { class: events.length ? 'c-events' : 'c-events all', 'data-label': 'Events' }, U.webhookEventsText(events)),
    el('td', { class: 'c-created', 'data-label': 'Created' }, el('time', { datetime: w.created_at, title: U.timeAgo(w.created_at) }, U.formatTime(w.created_at))),
    el('td', { class: 'c-actions' }, el('div', { class: 'wh-actions' }, toggle, del)),
  );
  tr.dataset.id = w.id;

  const status = el('p', { class: 'wh-d-status', role: 'status' });
  const readAt = el('span', { class: 'wh-d-read' });
  const refresh = el('button', { type: 'button', class: 'btn btn-small wh-refresh', 'aria-label': `Refresh the deliveries to ${w.url}` }, 'Refresh');
  const msg = el('div', { class: 'msg-area', role: 'alert' });
  const tbody = el('tbody');
  const table = el(
    'table',
    { class: 'wh-d-table', hidden: true },
    el('caption', { class: 'visually-hidden' }, `Recent deliveries to ${w.url}, newest first`),
    el('thead', {}, el('tr', {}, ...['Event', 'Status', 'Attempts', 'Last result', 'Created'].map((h) => el('th', { scope: 'col', class: 'd-' + h.split(' ')[0].toLowerCase() }, h)))),
    tbody,
  );
  const empty = el('p', { class: 'wh-d-empty', hidden: true }, 'No deliveries yet. Each change this webhook receives from now on is listed here.');
  const section = el(
    'section',
    { class: 'wh-deliveries', 'aria-labelledby': panelId + '-h' },
    el('div', { class: 'wh-d-head' }, el('h3', { id: panelId + '-h' }, 'Recent deliveries'), status, readAt, refresh),
    msg,
    table,
    empty,
  );
  const detail = el('tr', { class: 'wh-detail', id: panelId, hidden: true }, el('td', { colspan: '5' }, section));
  detail.dataset.id = w.id;
  return { w, tr, detail, toggle, del, refresh, status, readAt, msg, table, tbody, empty, open: false, deliveries: null, error: '', readAtMs: 0, reading: null, again: false };
}

function rowOfEvent(ev) {
  const tr = ev.target.closest('tr[data-id]');
  return tr ? wh.rows.get(tr.dataset.id) : null;
}

function toggleDeliveries(row, open = !row.open) {
  row.open = open;
  row.detail.hidden = !open;
  row.toggle.setAttribute('aria-expanded', String(open));
  row.tr.classList.toggle('is-open', open);
  if (open) loadDeliveries(row);
}

/** Re-reads every open panel (the tab is shown, or a change was made). */
function refreshOpenDeliveries() {
  if (state.view !== 'webhooks') return;
  for (const row of wh.rows.values()) if (row.open) loadDeliveries(row);
}

/** Reads a webhook's recent deliveries into its panel; one read at a time, a call during one reads once more after it. */
function loadDeliveries(row) {
  if (row.reading) {
    row.again = true;
    return row.reading;
  }
  const gen = wh.gen;
  if (!row.deliveries) setText(row.status, 'Reading the deliveries…');
  row.reading = (async () => {
    try {
      const list = await state.api.webhookDeliveries(row.w.id, DELIVERIES_SHOWN);
      if (gen !== wh.gen) return;
      row.deliveries = list;
      row.error = '';
      clearMessages(row.msg);
      renderDeliveries(row);
    } catch (e) {
      if (gen !== wh.gen || e.status === 401) return;
      if (e.status === 404) {
        notify(`The webhook to ${row.w.url} was deleted meanwhile.`, { kind: 'info' });
        row.again = false;
        reloadWebhooks();
        return;
      }
      row.error = describeError(e);
      if (!row.deliveries) setText(row.status, '');
      clearMessages(row.msg);
      notifyError('Could not read the deliveries: ' + row.error, { area: row.msg });
    } finally {
      row.readAtMs = Date.now();
    }
  })().finally(() => {
    row.reading = null;
    if (row.again) {
      row.again = false;
      if (row.open && wh.rows.get(row.w.id) === row) loadDeliveries(row);
    }
  });
  return row.reading;
}

function renderDeliveries(row) {
  const list = row.deliveries || [];
  const now = Date.now();
  row.tbody.replaceChildren(...list.map((d) => deliveryRow(d, now)));
  row.table.hidden = list.length === 0;
  row.empty.hidden = list.length !== 0;
  const count = list.length >= DELIVERIES_SHOWN ? `The last ${list.length}` : U.plural(list.length, 'delivery', 'deliveries');
  setText(row.status, list.length ? `${count}, newest first: ${U.deliveriesSummary(list)}.` : '');
  row.readAt.textContent = `read at ${U.formatClock(now)}`;
}

const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'];

function deliveryRow(d, now) {
  const known = DELIVERY_STATUSES.includes(d.status) ? d.status : 'unknown';
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  const last = attempts[attempts.length - 1];
  const badge = el('span', { class: 'badge badge-delivery', 'data-status': known }, String(d.status));
  if (d.status === 'delivered' && d.delivered_at) badge.title = `Delivered ${U.formatTime(d.delivered_at)}, ${U.formatClock(d.delivered_at)}`;
  const statusCell = el('td', { class: 'd-status', 'data-label': 'Status' }, badge);
  if (d.status === 'pending' && d.next_at) {
    statusCell.append(
      el(
        'span',
        { class: 'd-next' },
        attempts.length ? 'next attempt ' : 'first attempt ',
        el('span', { class: 'd-in', 'data-at': d.next_at }, U.untilText(d.next_at, now)),
        ', at ',
        el('time', { datetime: d.next_at, title: U.formatTime(d.next_at) }, U.formatClock(d.next_at)),
      ),
    );
  }
  const ok = last && Number.isInteger(last.status_code) && last.status_code >= 200 && last.status_code < 300;
  const result = el('td', { class: last && !ok ? 'd-last is-error' : 'd-last', 'data-label': 'Last result' }, U.lastAttemptText(d) || 'no attempt yet');
  if (last) result.title = `${U.formatTime(last.at)}, ${U.formatClock(last.at)}; took ${last.duration_ms} ms`;
  const tr = el(
    'tr',
    { class: `d-row is-${known}` },
    el('td', { class: 'd-event' }, el('span', { class: 'd-event-name' }, String(d.event)), el('span', { class: 'd-event-id' }, ` #${d.event_id}`)),
    statusCell,
    el('td', { class: 'd-attempts', 'data-label': 'Attempts' }, String(attempts.length)),
    result,
    el('td', { class: 'd-created', 'data-label': 'Created' }, el('time', { datetime: d.created_at, title: `${U.formatTime(d.created_at)}, ${U.formatClock(d.created_at)}` }, U.shortAgo(d.created_at, now))),
  );
  tr.dataset.delivery = String(d.id);
  return tr;
}

/** Every second: the "next attempt in 3 s" countdowns; open panels with a pending delivery (or a failed read) are read again. */
function webhookTick(now) {
  if (state.view !== 'webhooks' || document.visibilityState === 'hidden') return;
  for (const row of wh.rows.values()) {
    if (!row.open) continue;
    for (const s of row.tbody.querySelectorAll('.d-in')) setText(s, U.untilText(s.dataset.at, now));
    const pending = (row.deliveries || []).some((d) => d.status === 'pending');
    if ((pending || row.error) && !row.reading && now - row.readAtMs >= WEBHOOK_POLL_MS - 100) loadDeliveries(row);
  }
}

async function deleteWebhook(row) {
  const w = row.w;
  const body = [
    el('p', {}, 'Changes will no longer be posted to ', el('code', {}, w.url), '. Its deliveries still pending are dropped, and its recent deliveries can no longer be seen.'),
    el('p', { class: 'muted small' }, `${U.webhookFormatText(w.format)}, receives ${U.webhookEventsText(w.events)}. Added ${U.formatTime(w.created_at)}.`),
  ];
  if (!(await confirmBox('Delete this webhook?', body, 'Delete webhook', true))) return;
  const order = (wh.list || []).map((x) => x.id);
  const i = order.indexOf(w.id);
  try {
    await state.api.deleteWebhook(w.id);
    notify(`Deleted the webhook to ${w.url}.`);
  } catch (e) {
    if (e.status === 404) notify(`The webhook to ${w.url} was already deleted.`, { kind: 'info' });
    else if (e.status !== 401) notifyError(`Could not delete the webhook to ${w.url}: ${describeError(e)}`);
  }
  await reloadWebhooks();
  // Its row is gone with the button that had the focus: give it to the row that took its place.
  if (!wh.rows.has(w.id) && !document.querySelector('dialog[open]')) {
    const next = order.slice(i + 1).concat(order.slice(0, i).reverse()).map((id) => wh.rows.get(id)).find(Boolean);
    (next ? next.toggle : $('new-webhook')).focus();
  }
}

// ---- "Add webhook"

function openWebhookForm() {
  $('webhook-form').reset();
  forgetGenerated();
  clearMessages($('wd-msg'));
  for (const field of ['url', 'secret']) fieldError(field, '');
  webhookEventsCount();
  $('webhook-dialog').showModal();
  $('wd-url').focus();
}

/** The generated secret is shown once, while the form has it: gone when it is edited, or the form closes. */
function forgetGenerated() {
  wh.generated = '';
  $('wd-secret-value').textContent = '';
  $('wd-secret-shown').hidden = true;
}

/** Marks the form's url or secret field with the words of a 400 ('' clears it). */
function fieldError(field, text) {
  $(`wd-${field}-error`).textContent = text;
  if (text) $('wd-' + field).setAttribute('aria-invalid', 'true');
  else $('wd-' + field).removeAttribute('aria-invalid');
}

function generateSecret() {
  const secret = U.randomSecret();
  $('wd-secret').value = secret;
  fieldError('secret', '');
  wh.generated = secret;
  $('wd-secret-value').textContent = secret;
  $('wd-secret-shown').hidden = false;
}

function chosenEvents() {
  return [...$('wd-events').querySelectorAll('input[type="checkbox"]:checked')].map((b) => b.value);
}

function webhookEventsCount() {
  const n = chosenEvents().length;
  $('wd-events-count').textContent = n ? `Receives ${n} of ${U.WEBHOOK_EVENT_NAMES.length} events.` : 'Receives all events.';
}

async function submitWebhook(ev) {
  ev.preventDefault();
  clearMessages($('wd-msg'));
  for (const field of ['url', 'secret']) fieldError(field, '');
  const format = $('wd-format-slack').checked ? 'slack' : 'json';
  const body = { url: $('wd-url').value.trim(), secret: $('wd-secret').value, events: chosenEvents(), format };
  const submit = $('wd-submit');
  submit.disabled = true;
  try {
    const w = await state.api.createWebhook(body);
    $('webhook-dialog').close();
    notify(`Added the webhook to ${w.url} (${U.webhookFormatText(w.format)}, ${U.webhookEventsText(w.events)}).`);
    await reloadWebhooks();
    const row = wh.rows.get(w.id);
    if (row) {
      row.tr.classList.add('is-new');
      setTimeout(() => row.tr.classList.remove('is-new'), 2000);
    }
  } catch (e) {
    if (e.status === 401) return;
    if (e.status === 400) {
      // The server's own words: under the field they name, else at the foot of the form.
      const text = `Not added: ${String(e.message).replace(/[\s.]+$/, '')} (${e.status} ${e.code.replace(/_/g, ' ')}).`;
      const field = U.webhookErrorField(e.message);
      if (field === 'url' || field === 'secret') {
        fieldError(field, text);
        $('wd-' + field).focus();
      } else notifyError(text, { area: $('wd-msg') });
    } else notifyError('Could not add the webhook: ' + describeError(e), { area: $('wd-msg') });
  } finally {
    submit.disabled = false;
  }
}

function wireWebhooks() {
  for (const [group, list] of U.WEBHOOK_EVENTS) {
    const fs = el('fieldset', { class: 'wd-event-group' }, el('legend', {}, group));
    const items = el('div', { class: 'wd-event-items' });
    for (const [name, what] of list) {
      const box = el('input', { type: 'checkbox', id: 'wd-ev-' + name.replace(/[._]/g, '-'), value: name });
      items.append(el('label', { class: 'choice' }, box, el('span', { class: 'choice-text' }, el('span', { class: 'wd-event-name' }, name), el('span', { class: 'wd-event-what' }, what))));
    }
    fs.append(items);
    $('wd-events').append(fs);
  }
  $('wd-events').addEventListener('change', webhookEventsCount);
  $('new-webhook').addEventListener('click', openWebhookForm);
  $('webhook-form').addEventListener('submit', submitWebhook);
  $('wd-generate').addEventListener('click', generateSecret);
  $('wd-secret').addEventListener('input', () => {
    fieldError('secret', '');
    if (wh.generated && $('wd-secret').value !== wh.generated) forgetGenerated();
  });
  $('wd-url').addEventListener('input', () => fieldError('url', ''));
  for (const b of $('webhook-dialog').querySelectorAll('[data-close]')) b.addEventListener('click', () => $('webhook-dialog').close());
  $('webhook-dialog').addEventListener('close', () => {
    // Nothing of the secret stays in the page once the form is closed.
    $('wd-secret').value = '';
    forgetGenerated();
  });
  $('webhooks-body').addEventListener('click', (ev) => {
    const row = rowOfEvent(ev);
    if (!row) return;
    if (ev.target.closest('.wh-toggle')) toggleDeliveries(row);
    else if (ev.target.closest('.wh-refresh')) loadDeliveries(row);
    else if (ev.target.closest('.wh-delete')) deleteWebhook(row);
  });
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
    const sw = ev.target.closest('.switch');
    if (sw) {
      toggle(tr.dataset.name, sw.dataset.env);
      return;
    }
    const mark = ev.target.closest('.plan-mark');
    if (mark) {
      setFocus(mark.dataset.env);
      openFlag(tr.dataset.name);
      $('fd-plan').scrollIntoView({ block: 'start' });
      $('fd-plan').focus();
      return;
    }
    if (ev.target.closest('td.c-env')) {
      // A click on an environment's cell (not its switch) opens the flag in that environment.
      setFocus(ev.target.closest('td.c-env').dataset.env);
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
  $('fd-switch').addEventListener('click', () => toggle(detail.name, state.focus));
  $('fd-env').addEventListener('change', () => setFocus($('fd-env').value));
  $('fd-envs').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-env]');
    if (b) setFocus(b.dataset.env);
  });
  $('fd-segments').addEventListener('change', (ev) => {
    const box = ev.target.closest('input[data-segment]');
    if (box) setSegment(box.dataset.segment, box.checked);
  });
  for (const id of ['fd-copy-from', 'fd-copy-to']) $(id).addEventListener('change', () => (detail.copyTouched = true));
  $('fd-copy-form').addEventListener('submit', copyBetween);
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
  // release plan: the template's steps, each hold a number and a unit
  const last = U.PLAN_TEMPLATE.length - 1;
  U.PLAN_TEMPLATE.forEach((s, i) => {
    const li = el('li', { class: 'plan-step' }, el('span', { class: 'plan-step-pct' }, `${s.percentage} %`));
    if (i < last) {
      const hold = el('input', { id: `fd-plan-hold-${i}`, type: 'number', min: '1', step: 'any', inputmode: 'decimal', required: true, 'aria-label': `Hold ${s.percentage} % for` });
      const unit = el('select', { id: `fd-plan-unit-${i}`, 'aria-label': `Unit of the hold at ${s.percentage} %` }, ...U.HOLD_UNITS.map(([u, , word]) => el('option', { value: u }, word)));
      li.append(el('span', { class: 'plan-step-word', 'aria-hidden': 'true' }, 'held'), hold, unit);
    } else li.append(el('span', { class: 'plan-step-word' }, 'the last step: stays'));
    $('fd-plan-steps').append(li);
  });
  $('fd-plan-steps').addEventListener('input', (ev) => {
    if (ev.target instanceof HTMLInputElement) ev.target.removeAttribute('aria-invalid');
    planFormTotal();
  });
  $('fd-plan-steps').addEventListener('change', planFormTotal);
  $('fd-plan-form').addEventListener('submit', startPlan);
  $('fd-plan-new').addEventListener('click', () => {
    detail.planFormOpen = true;
    renderDetail();
    $('fd-plan-hold-0').focus();
  });
  for (const b of $('fd-plan-current').querySelectorAll('.plan-actions button')) b.addEventListener('click', () => planAction(b.dataset.action));
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
    const users = st(flag, state.focus).users || [];
    if (!flag || !users.length) return;
    const n = users.length;
    if (await confirmBox(`Remove all ${n} listed users in ${state.focus}?`, `There they will get “${detail.name}” only through the rollout percentage and segments.`, 'Remove all', true)) {
      removeUsers(users, U.plural(n, 'listed user', 'listed users'));
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

  // environments and sections
  $('env-select').addEventListener('change', () => setFocus($('env-select').value));
  $('flags-head').addEventListener('click', (ev) => {
    const b = ev.target.closest('button.env-head');
    if (b) setFocus(b.dataset.env);
  });
  for (const view of Object.keys(VIEWS)) {
    $('tab-' + view).addEventListener('click', (ev) => {
      ev.preventDefault();
      setView(view);
      writeLocation();
      if (view === 'segments') reloadSegments();
      if (view === 'webhooks') showWebhooks();
    });
  }
  window.addEventListener('hashchange', () => {
    if (!state.api) return;
    readLocation();
    if (detail.name) renderDetail();
  });

  // segments
  $('new-segment').addEventListener('click', () => openSegment(null));
  $('segments-body').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr');
    if (!tr) return;
    if (!ev.target.closest('.seg-name') && String(window.getSelection())) return;
    openSegment(tr.dataset.segment);
  });
  $('segment-form').addEventListener('submit', submitSegment);
  $('sd-users').addEventListener('input', segmentCount);
  $('sd-delete').addEventListener('click', deleteSegment);
  for (const b of $('segment-dialog').querySelectorAll('[data-close]')) b.addEventListener('click', () => $('segment-dialog').close());

  wireWebhooks();

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
