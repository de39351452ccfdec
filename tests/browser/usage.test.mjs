// Browser tests of "last evaluated" on the admin page (docs/operations.md §3,
// Last evaluated) against a real `vexil serve` on a real PostgreSQL, in
// Debian's Chromium driven by playwright-core.
//
//   source tests/lib/pg.sh && pg_start /tmp/pgweb     # once
//   VEXIL_BIN=build/plain/vexil node --test tests/browser/usage.test.mjs
//
// The server writes evaluations every second (--last-evaluated-interval 1).
// Flags are evaluated the way a service does it, GET /flags/<name>?user= with
// a client token of one environment, and the test waits until the admin API
// shows the time before it looks at the page.  last_evaluated_at moves no
// version, so the page learns of it either with a re-read it makes anyway (a
// long-poll moved) or with its own poll of /api/flags every 30 s; the test
// moves the page's clock (Playwright's fake timers) past that period rather
// than waiting for it.  Two environments: production (the default) and
// staging.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createFlag, psql, sleep, startEnv } from '../integration/lib/harness.mjs';
import { browserMissing, launch, openPage, openPanel, row, signIn, until } from './lib/browser.mjs';

const INTERVAL_S = 1;
const USAGE_POLL_MS = 30000; // web/app.js
const JUST_NOW = /^evaluated just now$/;
const NEVER = 'never evaluated';

let env;
let browser;
let base;
const tok = {}; // environment -> a client token's secret

function used(page, name, e) {
  return row(page, name).locator(`td.c-env[data-env="${e}"] .env-used`);
}

async function usedOf(page, name, e) {
  const u = used(page, name, e);
  return { text: await u.textContent(), title: await u.getAttribute('title'), unused: await u.evaluate((n) => n.classList.contains('is-unused')) };
}

/** Evaluate flag `name` for a user in environment e, as a service would. */
async function evaluate(name, e) {
  const r = await env.server.client(tok[e]).get(`/flags/${encodeURIComponent(name)}?user=u-${e}`);
  assert.equal(r.status, 200, r.text);
}

/** last_evaluated_at of flag `name` in every environment, as the admin API has it. */
async function apiEvaluated(name) {
  const r = await env.admin.get('/api/flags/' + encodeURIComponent(name));
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(Object.entries(r.json.environments).map(([e, s]) => [e, s.last_evaluated_at]));
}

/** Waits until the server has written the evaluation of `name` in e; returns every environment's time. */
async function written(name, e) {
  return until(async () => {
    const t = await apiEvaluated(name);
    return t[e] ? t : null;
  }, { timeout: 5000 + 3000 * INTERVAL_S, what: `last_evaluated_at of ${name} in ${e}` });
}

async function closePanel(page) {
  await page.click('#flag-dialog [data-close]');
  await page.waitForFunction(() => !document.getElementById('flag-dialog').open);
}

const panelText = (page) => page.locator('#fd-evaluated').textContent();

describe('admin page: when each flag was last evaluated', { skip: browserMissing() || false }, () => {
  before(async () => {
    env = await startEnv({ args: ['--last-evaluated-interval', String(INTERVAL_S)] });
    base = env.server.base;
    const r = await env.admin.post('/api/environments', { name: 'staging' });
    assert.equal(r.status, 201, r.text);
    for (const e of ['production', 'staging']) {
      const t = await env.admin.post('/api/tokens', { name: `client-${e}`, role: 'client', environment: e });
      assert.equal(t.status, 201, t.text);
      tok[e] = t.json.token;
    }
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close();
    if (env) await env.close();
  });

  test('a new flag shows "never"; an evaluation shows "just now" in its environment only, without a reload', { timeout: 60000 }, async () => {
    const FLAG = 'usage.probe';
    const BUMP = 'usage.bump';
    const both = { production: { enabled: true, percentage: 100 }, staging: { enabled: true, percentage: 100 } };
    await createFlag(env.admin, { name: FLAG, environments: both });
    await createFlag(env.admin, { name: BUMP, environments: both });
    assert.deepEqual(await apiEvaluated(FLAG), { production: null, staging: null });

    const p = await openPage(browser, base);
    try {
      const { page } = p;
      // Fake timers that run in real time until the test moves them on (below).
      await page.clock.install();
      await signIn(page, base, env.adminToken);
      for (const e of ['production', 'staging']) {
        assert.deepEqual(await usedOf(page, FLAG, e), { text: NEVER, title: `Never evaluated in ${e}`, unused: false }, e);
      }
      await openPanel(page, FLAG);
      assert.equal(await panelText(page), 'Never evaluated in production.');
      await page.selectOption('#fd-env', 'staging');
      await until(async () => (await panelText(page)) === 'Never evaluated in staging.', { what: 'the panel follows the environment' });
      await closePanel(page);

      // 1. Evaluated in staging; then a change in staging (another flag) moves
      //    staging's long-poll, and the re-read it makes brings the time.
      await evaluate(FLAG, 'staging');
      const t1 = await written(FLAG, 'staging');
      assert.equal(t1.production, null, 'production is not evaluated by a staging token');
      const r = await env.admin.patch('/api/flags/' + BUMP, { environments: { staging: { percentage: 50 } } });
      assert.equal(r.status, 200, r.text);
      await until(async () => JUST_NOW.test(await used(page, FLAG, 'staging').textContent()), { what: 'staging shows "evaluated just now"' });
      const st = await usedOf(page, FLAG, 'staging');
      assert.match(st.title, /^Last evaluated in staging: \w/, 'the exact time in the tooltip');
      assert.equal(st.unused, false);
      assert.deepEqual(await usedOf(page, FLAG, 'production'), { text: NEVER, title: 'Never evaluated in production', unused: false }, 'production is still never');
      assert.equal(await used(page, BUMP, 'staging').textContent(), NEVER, 'the flag that changed was not evaluated');

      // 2. Evaluated in production: no version moves, so nothing shows it
      //    until the page's own poll of /api/flags comes round.
      await evaluate(FLAG, 'production');
      const t2 = await written(FLAG, 'production');
      assert.equal(t2.staging, t1.staging, 'staging keeps its time');
      await sleep(1500);
      assert.equal(await used(page, FLAG, 'production').textContent(), NEVER, 'no re-read yet: no version moved');
      const reads = p.requests.length;
      await page.clock.fastForward(USAGE_POLL_MS);
      await until(async () => JUST_NOW.test(await used(page, FLAG, 'production').textContent()), { what: 'production shows "evaluated just now" after the poll' });
      const polled = p.requests.slice(reads).filter((u) => new URL(u).pathname === '/api/flags');
      assert.ok(polled.length >= 1, `the poll read /api/flags: ${JSON.stringify(p.requests.slice(reads))}`);
      assert.match(await used(page, FLAG, 'staging').textContent(), JUST_NOW, 'staging still shows its evaluation');
      assert.equal(await used(page, BUMP, 'production').textContent(), NEVER);

      await openPanel(page, FLAG); // in staging, the environment in focus since the panel was last open
      assert.match(await panelText(page), /^Last evaluated: just now \(.+\)$/);
      assert.equal(await page.locator('#fd-evaluated time').getAttribute('datetime'), t1.staging);
      await page.selectOption('#fd-env', 'production');
      await until(async () => (await page.locator('#fd-evaluated time').getAttribute('datetime')) === t2.production, { what: 'the panel shows production\'s time' });
      assert.match(await panelText(page), /^Last evaluated: just now \(.+\)$/);
      assert.equal(await page.locator('#fd-evaluated').evaluate((n) => n.classList.contains('is-unused')), false);
      await closePanel(page);

      // 3. The words follow the clock with no further read: two minutes on, "2 min ago".
      await page.clock.fastForward(2 * 60000);
      await until(async () => /^evaluated 2 min ago$/.test(await used(page, FLAG, 'production').textContent()), { what: '"evaluated 2 min ago"' });
      p.check();
    } finally {
      await p.close();
    }
  });

  test('never evaluated in a week-old flag and environment: a muted warning; evaluated once, it goes', { timeout: 60000 }, async () => {
    const OLD = 'usage.old_unused';
    const FRESH = 'usage.fresh';
    for (const name of [OLD, FRESH]) await createFlag(env.admin, { name, environments: { production: { enabled: true, percentage: 100 } } });
    // Ten days old: the flag, and production (staging stays a few seconds old).
    await psql(env.db.url, `UPDATE flags SET created_at = now() - interval '10 days' WHERE name = '${OLD}';
      UPDATE environments SET created_at = now() - interval '10 days' WHERE name = 'production';
      SELECT pg_notify('vexil', 'tokens');`);
    await until(async () => {
      const f = (await env.admin.get('/api/flags/' + OLD)).json;
      const envs = (await env.admin.get('/api/environments')).json.environments;
      const prod = envs.find((e) => e.name === 'production');
      return f.age_days === 10 && Date.now() - Date.parse(prod.created_at) > 9 * 86400000;
    }, { what: 'the server serves the older times' });

    const p = await openPage(browser, base);
    try {
      const { page } = p;
      await signIn(page, base, env.adminToken);
      const old = await usedOf(page, OLD, 'production');
      assert.equal(old.text, NEVER);
      assert.equal(old.unused, true, 'never evaluated in a flag and an environment ten days old');
      assert.match(old.title, /^Never evaluated in production in over 7 days: a candidate for removal$/);
      const color = (loc) => loc.evaluate((n) => getComputedStyle(n).color);
      assert.notEqual(await color(used(page, OLD, 'production')), await color(used(page, FRESH, 'production')), 'it looks different');
      assert.equal((await usedOf(page, OLD, 'staging')).unused, false, 'staging was made seconds ago');
      assert.equal((await usedOf(page, FRESH, 'production')).unused, false, 'a flag made seconds ago');

      await page.selectOption('#env-select', 'production');
      await openPanel(page, OLD);
      assert.equal(await panelText(page), 'Never evaluated in production in 10 days: nothing seems to use it there, so it may be ready for removal.');
      assert.equal(await page.locator('#fd-evaluated').evaluate((n) => n.classList.contains('is-unused')), true);

      // Evaluated once: the warning goes (the panel, open, follows the re-read).
      await evaluate(OLD, 'production');
      await written(OLD, 'production');
      const r = await env.admin.patch('/api/flags/' + FRESH, { environments: { production: { percentage: 40 } } });
      assert.equal(r.status, 200, r.text);
      await until(async () => /^Last evaluated: just now \(.+\)$/.test(await panelText(page)), { what: 'the panel shows the evaluation' });
      assert.equal(await page.locator('#fd-evaluated').evaluate((n) => n.classList.contains('is-unused')), false);
      await closePanel(page);
      const now = await usedOf(page, OLD, 'production');
      assert.match(now.text, JUST_NOW);
      assert.equal(now.unused, false);
      p.check();
    } finally {
      await p.close();
    }
  });
});
