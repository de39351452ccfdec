// Browser tests of the release plan panel (docs/api.md §8) against a real
// `vexil serve` on a real PostgreSQL, in Debian's Chromium driven by
// playwright-core.
//
//   source tests/lib/pg.sh && pg_start /tmp/pgweb     # once
//   VEXIL_BIN=build/plain/vexil node --test tests/browser/plans.test.mjs
//
// Two environments: production (the default) and staging. What the page does
// is checked through the HTTP API (GET /api/flags/<name>/plan?env=, the flag's
// state), and what it shows is checked after changes made elsewhere (a step
// the scheduler took, an Alertmanager alert, a PATCH, a pause through the
// API) without a reload.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, createFlag, sleep, startEnv } from '../integration/lib/harness.mjs';
import { browserMissing, launch, openAt, openPage, openPanel, row, signIn, until } from './lib/browser.mjs';

const ARTIFACTS = path.join(REPO, 'tests/artifacts');
const XSS = '<img src=x onerror="window.__pwned=1">';
const HOUR = 3600;
const LONG = { steps: [{ percentage: 5, hold_seconds: HOUR }, { percentage: 25, hold_seconds: HOUR }, { percentage: 50, hold_seconds: HOUR }, { percentage: 100 }] };

let env;
let browser;
let base;

const planPath = (name, e, action = '') => `/api/flags/${encodeURIComponent(name)}/plan${action ? '/' + action : ''}?env=${e}`;

/** The plan of flag `name` in environment `e` as the API has it, or null (404). */
async function apiPlan(name, e = 'production') {
  const r = await env.admin.get(planPath(name, e));
  if (r.status === 404) return null;
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function startPlanApi(name, e = 'production', body = LONG) {
  const r = await env.admin.request('PUT', planPath(name, e), { body });
  assert.equal(r.status, 201, `PUT plan of ${name} in ${e}: ${r.status} ${r.text}`);
  return r.json;
}

async function stateIn(name, e) {
  const r = await env.admin.get('/api/flags/' + encodeURIComponent(name));
  assert.equal(r.status, 200, r.text);
  const s = r.json.environments[e];
  return { enabled: s.enabled, percentage: s.percentage };
}

/** An Alertmanager webhook payload (version 4) with one firing alert per [alertname, flag, env]. */
function alertPayload(alerts) {
  return {
    version: '4',
    groupKey: '{}:{alertname="x"}',
    status: 'firing',
    receiver: 'vexil',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example',
    alerts: alerts.map(([alertname, flag, e]) => ({
      status: 'firing',
      labels: { alertname, vexil_flag: flag, ...(e ? { vexil_env: e } : {}) },
      annotations: {},
      startsAt: new Date().toISOString(),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: '',
      fingerprint: Math.random().toString(16).slice(2),
    })),
  };
}

function cell(page, name, e) {
  return row(page, name).locator(`td.c-env[data-env="${e}"]`);
}

/** What the plan section of the open flag panel shows. */
function panel(page) {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    const shown = !$('fd-plan-current').hidden;
    return {
      env: $('fd-plan-env').textContent,
      shown,
      status: shown ? $('fd-plan-status').textContent : null,
      reason: shown ? $('fd-plan-reason').textContent : null,
      // "5 [25] 50 100": the applied step in brackets
      ladder: shown ? [...$('fd-plan-ladder').children].map((li) => (li.getAttribute('aria-current') === 'step' ? `[${li.dataset.pct}]` : li.dataset.pct)).join(' ') : null,
      enabled: ['pause', 'resume', 'advance', 'abort'].filter((a) => !$('fd-plan-' + a).disabled),
      form: !$('fd-plan-form').hidden,
      newPlan: !$('fd-plan-new').hidden, // "Start a new plan…", where one has ended
      next: $('fd-plan-next').textContent,
      meta: $('fd-plan-meta').textContent,
      msg: $('fd-plan-msg').textContent,
    };
  });
}

/** Waits until the panel shows `want` (a subset of panel()); returns what it shows. */
async function panelShows(page, want, what, timeout = 5000) {
  let last;
  try {
    return await until(async () => {
      last = await panel(page);
      return Object.entries(want).every(([k, v]) => (v instanceof RegExp ? v.test(last[k]) : JSON.stringify(last[k]) === JSON.stringify(v))) && last;
    }, { timeout, what });
  } catch (e) {
    e.message += `; the panel shows ${JSON.stringify(last)}`;
    throw e;
  }
}

/** Types the holds of the template's first three steps: [[value, unit], ...]. */
async function fillHolds(page, holds) {
  for (const [i, [value, unit]] of holds.entries()) {
    await page.fill(`#fd-plan-hold-${i}`, String(value));
    await page.selectOption(`#fd-plan-unit-${i}`, unit);
  }
}

/** Clicks an action that asks first, and answers the question. */
async function confirmed(page, button, answer) {
  await page.click(button);
  await page.waitForSelector('#confirm-dialog[open]');
  const title = await page.textContent('#cf-title');
  await page.click(answer === 'ok' ? '#cf-ok' : '#cf-cancel');
  await page.waitForSelector('#confirm-dialog:not([open])', { state: 'attached' });
  return title;
}

describe('admin page: release plans', { skip: browserMissing() || false }, () => {
  before(async () => {
    env = await startEnv();
    base = env.server.base;
    const r = await env.admin.post('/api/environments', { name: 'staging', description: 'Pre-release' });
    assert.equal(r.status, 201, r.text);
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close();
    if (env) await env.close();
  });

  test('start from the template with 1 s holds: the ladder climbs to done on its own, without reload', { timeout: 45000 }, async () => {
    await createFlag(env.admin, { name: 'plan.climb', description: 'Climbs on its own' });
    const p = await openPage(browser, base);
    const { page } = p;
    const sent = [];
    page.on('request', (r) => {
      if (/\/api\/(plans|flags\/[^/]+\/plan)/.test(r.url())) sent.push({ method: r.method(), url: r.url().slice(base.length), body: r.postData() });
    });
    try {
      await signIn(page, base, env.adminToken);
      const navigations = [];
      page.on('framenavigated', (f) => navigations.push(f.url()));
      await openPanel(page, 'plan.climb');
      let shown = await panel(page);
      assert.equal(shown.shown, false, 'no plan yet');
      assert.equal(shown.form, true, 'the start form is offered');
      // The template: 5 → 25 → 50 → 100, held 1 h, 1 d, 1 d, alert turns it off.
      const template = await page.evaluate(() => [...document.querySelectorAll('#fd-plan-steps li')].map((li) => {
        const input = li.querySelector('input');
        return [li.querySelector('.plan-step-pct').textContent, input ? input.value : null, input ? li.querySelector('select').value : null];
      }));
      assert.deepEqual(template, [['5 %', '1', 'h'], ['25 %', '1', 'd'], ['50 %', '1', 'd'], ['100 %', null, null]]);
      assert.equal(await page.isChecked('#fd-plan-alert-disable'), true);
      assert.match(await page.textContent('#fd-plan-total'), /Reaches 100 % after 2 d 1 h at the earliest/);

      // Record every step the ladder shows and every "next" text, as they happen.
      await page.evaluate(() => {
        window.__ladder = [];
        window.__next = [];
        const note = () => {
          const cur = document.querySelector('#fd-plan-ladder li[aria-current="step"]');
          const st = document.getElementById('fd-plan-status').textContent;
          const v = cur ? `${cur.dataset.pct}:${st}` : null;
          if (v && window.__ladder[window.__ladder.length - 1] !== v) window.__ladder.push(v);
          const n = document.getElementById('fd-plan-next').textContent;
          if (n && window.__next[window.__next.length - 1] !== n) window.__next.push(n);
        };
        new MutationObserver(note).observe(document.getElementById('fd-plan'), { subtree: true, childList: true, characterData: true, attributes: true });
      });

      await fillHolds(page, [[1, 's'], [1, 's'], [1, 's']]);
      assert.match(await page.textContent('#fd-plan-total'), /after 3 s at the earliest/);
      await page.check('#fd-plan-alert-pause');
      const t0 = Date.now();
      await page.click('#fd-plan-start');
      const started = await until(() => apiPlan('plan.climb'), { what: 'the plan in the API' });
      assert.equal(started.started_by, 'it-admin');
      assert.equal(started.on_alert, 'pause');
      assert.deepEqual(started.steps, [{ percentage: 5, hold_seconds: 1 }, { percentage: 25, hold_seconds: 1 }, { percentage: 50, hold_seconds: 1 }, { percentage: 100 }]);
      const puts = sent.filter((r) => r.method === 'PUT');
      assert.deepEqual(puts.map((r) => [r.url, JSON.parse(r.body)]), [[
        '/api/flags/plan.climb/plan?env=production',
        { steps: [{ percentage: 5, hold_seconds: 1 }, { percentage: 25, hold_seconds: 1 }, { percentage: 50, hold_seconds: 1 }, { percentage: 100 }], on_alert: 'pause' },
      ]]);

      // No reload, no click: the scheduler's steps move the version, the page follows.
      shown = await panelShows(page, { status: 'done', ladder: '5 25 50 [100]', enabled: [] }, 'the ladder at 100 %, done', 15000);
      const climbMs = Date.now() - t0;
      const ladder = await page.evaluate(() => window.__ladder);
      assert.deepEqual(ladder.map((v) => v.split(':')[0]), ['5', '25', '50', '100'], `every step was shown in turn (${ladder})`);
      assert.equal(ladder[ladder.length - 1], '100:done');
      const nexts = await page.evaluate(() => window.__next);
      assert.ok(nexts.some((n) => /^Next: (25|50|100) % (in \d s|due now)/.test(n)), `the next step with its time (${JSON.stringify(nexts)})`);
      assert.match(shown.next, /^Done: every step applied, at 100 %/);
      assert.match(shown.meta, /^Started by it-admin/);
      assert.deepEqual([shown.form, shown.newPlan], [false, true], 'a new plan may be started once it is done, one click away');
      await page.click('#fd-plan-new');
      await panelShows(page, { form: true, newPlan: false }, 'the form, opened');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'fd-plan-hold-0');
      assert.equal(await page.inputValue('#fd-plan-hold-0'), '1', 'the holds typed before are kept');

      const plan = await apiPlan('plan.climb');
      assert.equal(plan.status, 'done');
      assert.equal(plan.step, 3);
      assert.deepEqual(await stateIn('plan.climb', 'production'), { enabled: true, percentage: 100 });
      assert.equal(await cell(page, 'plan.climb', 'production').locator('.pct-text').textContent(), '100 %');
      assert.equal(await cell(page, 'plan.climb', 'production').locator('.switch').getAttribute('aria-checked'), 'true');
      assert.equal(await cell(page, 'plan.climb', 'production').locator('.plan-mark').isVisible(), false, 'a done plan leaves no mark in the list');
      assert.deepEqual(navigations, [], 'no reload');

      // Cheap: plans are read per environment, never per flag.
      const reads = sent.filter((r) => r.method === 'GET');
      assert.deepEqual(reads.filter((r) => !r.url.startsWith('/api/plans')), [], 'no GET of one flag\'s plan');
      assert.ok(reads.length <= 16, `${reads.length} plan reads in ${climbMs} ms`);
      console.log(`plan 5 → 100 % with 1 s holds shown done ${climbMs} ms after Start; ${reads.length} GET /api/plans`);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('pause, resume, advance and abort from the panel, in staging only', { timeout: 45000 }, async () => {
    await createFlag(env.admin, { name: 'plan.staged', environments: { production: { enabled: true, percentage: 10 } } });
    const p = await openPage(browser, base);
    const { page } = p;
    try {
      await openAt(page, base, env.adminToken, '#env=staging');
      await openPanel(page, 'plan.staged');
      assert.equal((await panel(page)).env, 'staging');
      const started = page.waitForResponse((res) => res.request().method() === 'PUT' && res.url().includes('/plan?env=staging'));
      await page.click('#fd-plan-start'); // the template as it is: 1 h, 1 d, 1 d
      // The answer comes once the instance serves the new state; the plan
      // itself is in the database, and visible to a GET, a moment before.
      assert.equal((await started).status(), 201);
      let plan = await apiPlan('plan.staged', 'staging');
      assert.equal(plan.status, 'running');
      assert.equal(plan.percentage, 5);
      assert.deepEqual(plan.steps.map((s) => s.hold_seconds), [HOUR, 86400, 86400, undefined]);
      assert.equal(plan.on_alert, 'disable');
      assert.equal(await apiPlan('plan.staged', 'production'), null, 'no plan in production');
      assert.deepEqual(await stateIn('plan.staged', 'staging'), { enabled: true, percentage: 5 });
      assert.deepEqual(await stateIn('plan.staged', 'production'), { enabled: true, percentage: 10 });

      let shown = await panelShows(page, { status: 'running', ladder: '[5] 25 50 100', enabled: ['pause', 'advance', 'abort'], form: false }, 'the running plan');
      assert.match(shown.next, /^Next: 25 % in (60 min|59 min|1 h) \(/);
      assert.equal(await page.getAttribute('#fd-plan-ladder li[aria-current="step"]', 'data-pct'), '5');
      // In the list: a mark in staging's cell, none in production's.
      const mark = cell(page, 'plan.staged', 'staging').locator('.plan-mark');
      await until(() => mark.isVisible(), { what: 'the plan mark in staging' });
      assert.match(await mark.textContent(), /^Plan: 25 % in (60 min|59 min|1 h)$/);
      assert.equal(await cell(page, 'plan.staged', 'production').locator('.plan-mark').isVisible(), false);

      // Pause (no question asked).
      await page.click('#fd-plan-pause');
      plan = await until(async () => { const x = await apiPlan('plan.staged', 'staging'); return x.status === 'paused' && x; }, { what: 'paused in the API' });
      assert.equal(plan.reason, 'paused by a person');
      assert.equal(plan.next_at, null);
      shown = await panelShows(page, { status: 'paused', reason: 'paused by a person', enabled: ['resume', 'advance', 'abort'] }, 'paused');
      assert.match(shown.next, /Resume holds 5 % for 1 h again/);
      assert.equal(await page.textContent('#fd-plan-msg .msg-ok .msg-text'), 'Plan paused.', 'said in the plan section');
      // The panel is drawn again when the plan is read back; the focus lands then.
      await until(async () => (await page.evaluate(() => document.activeElement.id)) === 'fd-plan-resume',
        { what: 'the focus moves to an action still allowed (#fd-plan-resume)' });
      const note = row(page, 'plan.staged').locator('.plan-note[data-env="staging"]');
      assert.equal(await note.textContent(), 'pausedPlan in staging: paused by a person');
      assert.match(await mark.textContent(), /^Plan paused$/);

      // Resume from the keyboard.
      await page.focus('#fd-plan-resume');
      await page.keyboard.press('Enter');
      plan = await until(async () => { const x = await apiPlan('plan.staged', 'staging'); return x.status === 'running' && x; }, { what: 'running again in the API' });
      assert.equal(plan.step, 0);
      await panelShows(page, { status: 'running', reason: '', enabled: ['pause', 'advance', 'abort'] }, 'running again');
      await until(async () => !(await note.isVisible()), { what: 'the paused note gone' });

      // Advance: asks first.
      assert.equal(await confirmed(page, '#fd-plan-advance', 'ok'), 'Advance to 25 % now?');
      plan = await until(async () => { const x = await apiPlan('plan.staged', 'staging'); return x.step === 1 && x; }, { what: 'step 1 in the API' });
      assert.equal(plan.status, 'running');
      assert.equal(plan.percentage, 25);
      // The plan is read from the database; the state from what the instance serves, a moment later.
      await until(async () => JSON.stringify(await stateIn('plan.staged', 'staging')) ===
        JSON.stringify({ enabled: true, percentage: 25 }), { what: 'staging at 25 % in the admin API' });
      shown = await panelShows(page, { ladder: '5 [25] 50 100', status: 'running' }, 'the ladder at 25 %');
      assert.match(shown.next, /^Next: 50 % in 24 h \(/);
      await until(async () => (await cell(page, 'plan.staged', 'staging').locator('.pct-text').textContent()) === '25 %', { what: 'staging at 25 % in the list' });
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'admin-plan-running.png') });

      // Abort: asks first; Cancel changes nothing.
      assert.equal(await confirmed(page, '#fd-plan-abort', 'cancel'), 'Abort the release plan?');
      await sleep(300);
      assert.equal((await apiPlan('plan.staged', 'staging')).status, 'running', 'Cancel did not abort');
      await confirmed(page, '#fd-plan-abort', 'ok');
      plan = await until(async () => { const x = await apiPlan('plan.staged', 'staging'); return x.status === 'aborted' && x; }, { what: 'aborted in the API' });
      assert.deepEqual(await stateIn('plan.staged', 'staging'), { enabled: true, percentage: 25 }, 'the state stays as it is');
      shown = await panelShows(page, { status: 'aborted', enabled: [], form: false, newPlan: true }, 'aborted, a new plan may start');
      await page.click('#fd-plan-new');
      await panelShows(page, { form: true, newPlan: false }, 'the form, opened');
      assert.match(await page.textContent('#fd-plan-form-h'), /Start a new plan in staging/);
      assert.equal(await mark.isVisible(), false, 'no mark for an aborted plan');

      // Production was never touched.
      assert.equal(await apiPlan('plan.staged', 'production'), null);
      assert.deepEqual(await stateIn('plan.staged', 'production'), { enabled: true, percentage: 10 });
      await page.selectOption('#fd-env', 'production');
      await panelShows(page, { env: 'production', shown: false, form: true, newPlan: false }, 'production has no plan');

      // The panel fits a phone.
      await page.setViewportSize({ width: 375, height: 740 });
      const w = await page.evaluate(() => document.getElementById('flag-dialog').scrollWidth);
      assert.ok(w <= 375, `the plan section fits 375 px (${w})`);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a pause made elsewhere shows within seconds; halted plans stand out with their reason, without reload', { timeout: 60000 }, async () => {
    for (const name of ['plan.paused_elsewhere', 'plan.alerted', 'plan.switched_off', 'plan.xss']) {
      await createFlag(env.admin, { name });
      await startPlanApi(name);
    }
    const p = await openPage(browser, base);
    const { page } = p;
    try {
      await signIn(page, base, env.adminToken);
      const navigations = [];
      page.on('framenavigated', (f) => navigations.push(f.url()));
      for (const name of ['plan.paused_elsewhere', 'plan.alerted', 'plan.switched_off', 'plan.xss']) {
        assert.match(await cell(page, name, 'production').locator('.plan-mark').textContent(), /^Plan: 25 % in (60 min|59 min|1 h)$/);
      }
      assert.match(await page.textContent('#summary'), /4 release plans under way/);
      await sleep(500);

      // Pausing writes no flag state, so no version moves: the page's poll finds it.
      let r = await env.admin.post(planPath('plan.paused_elsewhere', 'production', 'pause'));
      assert.equal(r.status, 200, r.text);
      const t0 = Date.now();
      const pausedNote = row(page, 'plan.paused_elsewhere').locator('.plan-note');
      await pausedNote.waitFor({ timeout: 6000 });
      const pollMs = Date.now() - t0;
      assert.equal(await pausedNote.locator('.plan-note-text').textContent(), 'Plan in production: paused by a person');
      assert.equal(await cell(page, 'plan.paused_elsewhere', 'production').locator('.plan-mark').textContent(), 'Plan paused');

      // An alert from Alertmanager halts two plans (one alert name is markup); a PATCH turns the third off.
      r = await env.admin.post('/api/alerts', alertPayload([['CheckoutErrors', 'plan.alerted'], [XSS, 'plan.xss', 'production']]));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.results.map((x) => [x.flag, x.action, x.plan && x.plan.status]), [['plan.alerted', 'disabled', 'halted'], ['plan.xss', 'disabled', 'halted']]);
      const t1 = Date.now();
      r = await env.admin.patch('/api/flags/plan.switched_off', { environments: { production: { enabled: false } } });
      assert.equal(r.status, 200, r.text);

      for (const [name, reason] of [['plan.alerted', 'alert CheckoutErrors fired'], ['plan.switched_off', 'turned off by it-admin'], ['plan.xss', `alert ${XSS} fired`]]) {
        assert.equal((await apiPlan(name)).reason, reason);
        const tr = row(page, name);
        await page.waitForFunction((n) => document.querySelector(`#flags-body tr[data-name="${n}"]`).classList.contains('plan-halted'), name, { timeout: 3000 });
        const haltedNote = tr.locator('.plan-note[data-status="halted"]');
        assert.ok(await haltedNote.isVisible(), `${name}: the halted note is visible in the list`);
        assert.equal(await haltedNote.locator('.plan-note-text').textContent(), `Plan in production: ${reason}`);
        assert.equal(await haltedNote.locator('.badge').textContent(), 'halted');
        const c = cell(page, name, 'production');
        assert.equal(await c.locator('.plan-mark').textContent(), 'Plan halted');
        assert.ok((await c.getAttribute('class')).split(' ').includes('plan-halted'), `${name}: the cell is marked`);
        assert.equal(await c.locator('.switch').getAttribute('aria-checked'), 'false', `${name} shows off`);
      }
      const haltMs = Date.now() - t1;
      assert.match(await page.textContent('#summary'), /3 plans halted/);
      assert.match(await page.textContent('#summary'), /1 release plan under way/);
      // It stands out: the halted row's mark is red, the paused one's is not.
      const colors = await page.evaluate(() => ['plan.alerted', 'plan.paused_elsewhere'].map((n) => getComputedStyle(document.querySelector(`tr[data-name="${n}"] .plan-mark`)).backgroundColor));
      assert.notEqual(colors[0], colors[1]);
      assert.equal(await page.locator('dialog[open]').count(), 0, 'seen without opening anything');

      // Markup in an alert's name is text.
      const injected = await page.evaluate(() => ({ img: document.querySelectorAll('img[src="x"]').length, pwned: window.__pwned ?? null }));
      assert.deepEqual(injected, { img: 0, pwned: null });

      // The mark opens the plan: only Abort is left, and a new plan may be started.
      await cell(page, 'plan.alerted', 'production').locator('.plan-mark').click();
      await page.waitForSelector('#flag-dialog[open]');
      assert.equal(await page.textContent('#fd-title'), 'plan.alerted');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'fd-plan');
      const shown = await panelShows(page, { status: 'halted', reason: 'alert CheckoutErrors fired', enabled: ['abort'], form: false, newPlan: true, ladder: '[5] 25 50 100' }, 'the halted plan in the panel');
      assert.match(shown.next, /^Halted at 5 %/);
      assert.match(await page.textContent('#fd-badges'), /production: plan halted/);

      assert.deepEqual(navigations, [], 'no reload');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'admin-plan-halted.png') });
      console.log(`a pause through the API shown after ${pollMs} ms (poll); halts shown after ${haltMs} ms`);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('on a slow network, a pause clicked while the start is still read back: the focus lands on Resume', { timeout: 45000 }, async () => {
    // The start's read-back of the plans answers while the pause is under
    // way (every action disabled), then the pause answers: the focus must not
    // stay where the start's read-back left it (the section) but move to an
    // action the paused plan allows.  Real requests, held back in the page.
    await createFlag(env.admin, { name: 'plan.overlap' });
    const p = await openPage(browser, base);
    const { page } = p;
    try {
      await signIn(page, base, env.adminToken);
      await openPanel(page, 'plan.overlap');
      await page.route('**/api/plans?*', async (route) => { await sleep(800); await route.continue(); });
      await page.route('**/plan/pause?*', async (route) => { await sleep(1600); await route.continue(); });
      const started = page.waitForResponse((res) => res.request().method() === 'PUT' && res.url().includes('/plan?env='));
      await page.click('#fd-plan-start');
      assert.equal((await started).status(), 201);
      // The flag's new state arrives live and draws the panel with the
      // actions allowed, before the start's read-back has come.
      await page.waitForSelector('#fd-plan-pause:not([disabled])', { timeout: 5000 });
      const paused = page.waitForResponse((res) => res.url().includes('/plan/pause?'), { timeout: 10000 });
      await page.click('#fd-plan-pause');
      assert.equal((await paused).status(), 200);
      await panelShows(page, { status: 'paused', enabled: ['resume', 'advance', 'abort'] }, 'paused', 8000);
      await until(async () => (await page.evaluate(() => document.activeElement.id)) === 'fd-plan-resume',
        { timeout: 5000, what: 'the focus on #fd-plan-resume' });
      await page.unroute('**/api/plans?*');
      await page.unroute('**/plan/pause?*');
      assert.equal((await apiPlan('plan.overlap')).status, 'paused');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('the API\'s 400 and 409 are shown inline in the plan section', { timeout: 45000 }, async () => {
    await createFlag(env.admin, { name: 'plan.refused' });
    const p = await openPage(browser, base);
    const { page } = p;
    try {
      await signIn(page, base, env.adminToken);
      await openPanel(page, 'plan.refused');

      // 400: a hold of 0 s on the second step.
      await fillHolds(page, [[1, 'h'], [0, 's'], [1, 'd']]);
      await page.click('#fd-plan-start');
      const msg = page.locator('#fd-plan-msg .msg-error');
      await msg.waitFor();
      assert.match(await msg.textContent(), /^The plan was not started\. Step 2 \(25 %\): Steps\[1\]\.hold_seconds must be an integer from 1 to 7776000 \(90 days\)\. \(400 invalid value\)/);
      assert.equal(await page.getAttribute('#fd-plan-hold-1', 'aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'fd-plan-hold-1', 'the step in question has the focus');
      assert.equal(await apiPlan('plan.refused'), null, 'nothing started');
      assert.deepEqual(await stateIn('plan.refused', 'production'), { enabled: false, percentage: 0 });
      assert.equal((await panel(page)).form, true);

      // 409: someone else starts a plan while the page cannot read the plans.
      await page.route('**/api/plans*', (route) => route.abort());
      await startPlanApi('plan.refused');
      // The flag's own change shows (its list is read); the plan does not.
      await until(async () => (await cell(page, 'plan.refused', 'production').locator('.pct-text').textContent()) === '5 %', { what: 'the flag at 5 % in the list' });
      await until(async () => /Could not read the release plans/.test(await page.textContent('#fd-plan-read')), { what: 'the failed read said' });
      await page.fill('#fd-plan-hold-1', '1');
      assert.equal(await page.getAttribute('#fd-plan-hold-1', 'aria-invalid'), null, 'typing clears the mark');
      await page.click('#fd-plan-start');
      await until(async () => /already running/.test(await page.textContent('#fd-plan-msg')), { what: 'the 409 inline' });
      assert.match(await msg.textContent(), /^The plan was not started\. A release plan is already running for 'plan\.refused' in production: abort it first\. \(409 conflict\)/);
      const plan = await apiPlan('plan.refused');
      assert.deepEqual(plan.steps, LONG.steps, 'the plan that runs is the other one');

      // Once the plans can be read again, the page shows the running plan, and the 409 stays in sight.
      await page.unroute('**/api/plans*');
      const shown = await panelShows(page, { status: 'running', form: false, enabled: ['pause', 'advance', 'abort'] }, 'the other plan', 8000);
      assert.match(shown.msg, /already running/);
      assert.equal(await page.textContent('#fd-plan-read'), '');
      p.check();
    } finally {
      await p.close();
    }
  });
});
