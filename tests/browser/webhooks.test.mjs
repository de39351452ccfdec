// Browser tests of the admin page's Webhooks tab (docs/api.md §9) against a
// real `vexil serve` on a real PostgreSQL, in Debian's Chromium driven by
// playwright-core.
//
//   VEXIL_TEST_PG_URL=... VEXIL_BIN=build/plain/vexil node --test tests/browser/webhooks.test.mjs
//
// A webhook is added through the page, pointing at a receiver started here (a
// Node http server on 127.0.0.1 that records every request and answers 200),
// and what the page did is checked through the API (GET /api/webhooks) and at
// the receiver (a change made through the API arrives, signed with the secret
// the page generated). The deliveries panel is checked against the server's
// own deliveries, and against a crafted answer (page.route) for the cases a
// real server takes a day to reach (a failed delivery).

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, createFlag, sleep, startEnv } from '../integration/lib/harness.mjs';
import { browserMissing, launch, openAt, openPage, until } from './lib/browser.mjs';

const ARTIFACTS = path.join(REPO, 'tests/artifacts');
const XSS = '<img src=x onerror="window.__pwned=1">';
// A change reaches a receiver that answers at once within this (the sender
// looks every 0.5 s, and at once on a change's notification).
const DELIVER_MS = 5000;

let env;
let browser;
let base;
const receivers = [];

/** A webhook receiver: records every request ({method, url, headers, raw, json}) and answers 200. */
async function startReceiver(name) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let json;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        json = undefined;
      }
      requests.push({ method: req.method, url: req.url, headers: req.headers, raw, json });
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const rec = {
    url: `http://127.0.0.1:${server.address().port}/hooks/${name}`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
  receivers.push(rec);
  return rec;
}

async function apiWebhooks() {
  const r = await env.admin.get('/api/webhooks');
  assert.equal(r.status, 200, r.text);
  return r.json.webhooks;
}

async function registerApi(url, extra = {}) {
  const r = await env.admin.post('/api/webhooks', { url, secret: 'a-secret-of-more-than-16-bytes', ...extra });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

function webhookRow(page, id) {
  return page.locator(`#webhooks-body tr.wh-row[data-id="${id}"]`);
}

/** Opens the deliveries panel of webhook `id`; returns the panel's id. */
async function openDeliveries(page, id) {
  const toggle = webhookRow(page, id).locator('.wh-toggle');
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  const panel = await toggle.getAttribute('aria-controls');
  await page.waitForSelector(`#${panel}:not([hidden])`);
  return panel;
}

/** What a deliveries panel shows: one {id, event, status, attempts, last} per delivery, and its status line. */
function deliveriesShown(page, panel) {
  return page.evaluate((id) => {
    const p = document.getElementById(id);
    const rows = [...p.querySelectorAll('tbody tr.d-row')].map((tr) => ({
      id: tr.dataset.delivery,
      event: tr.querySelector('.d-event-name').textContent,
      status: tr.querySelector('.badge-delivery').textContent,
      next: tr.querySelector('.d-next') ? tr.querySelector('.d-next').textContent : null,
      attempts: tr.querySelector('.d-attempts').textContent,
      last: tr.querySelector('.d-last').textContent,
    }));
    return { rows, status: p.querySelector('.wh-d-status').textContent, empty: !p.querySelector('.wh-d-empty').hidden, msg: p.querySelector('.msg-area').textContent };
  }, panel);
}

/** Clicks a button that asks first, and answers the question; returns the question's title and body. */
async function confirmed(page, locator, answer) {
  await locator.click();
  await page.waitForSelector('#confirm-dialog[open]');
  const asked = { title: await page.textContent('#cf-title'), body: await page.textContent('#cf-body') };
  await page.click(answer === 'ok' ? '#cf-ok' : '#cf-cancel');
  await page.waitForSelector('#confirm-dialog:not([open])', { state: 'attached' });
  return asked;
}

describe('admin page: webhooks', { skip: browserMissing() || false }, () => {
  before(async () => {
    env = await startEnv();
    base = env.server.base;
    const r = await env.admin.post('/api/environments', { name: 'staging', description: 'Pre-release' });
    assert.equal(r.status, 201, r.text);
    await createFlag(env.admin, { name: 'wh.checkout', environments: { production: { enabled: true, percentage: 100 } } });
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close();
    await Promise.all(receivers.map((r) => r.close()));
    if (env) await env.close();
  });

  test('add a Slack webhook with a generated secret: listed; a flag change reaches the receiver, signed, and its deliveries show it delivered', { timeout: 45000 }, async () => {
    const rec = await startReceiver('slack');
    const p = await openPage(browser, base);
    const { page } = p;
    const sent = [];
    page.on('request', (r) => {
      if (r.url().startsWith(base + '/api/webhooks')) sent.push({ method: r.method(), url: r.url().slice(base.length), body: r.postData() });
    });
    try {
      // The tab, in the URL with the environment in focus, as the others.
      await openAt(page, base, env.adminToken, '#env=staging&view=webhooks');
      await page.waitForSelector('#webhooks-view:not([hidden])');
      assert.equal(await page.inputValue('#env-select'), 'staging');
      assert.equal(await page.getAttribute('#tab-webhooks', 'aria-current'), 'page');
      assert.equal(await page.textContent('#list-title'), 'Webhooks');
      await page.waitForSelector('#webhooks-empty:not([hidden])');
      assert.equal(await page.getAttribute('#tab-flags', 'href'), '#env=staging');
      assert.equal(await page.getAttribute('#tab-segments', 'href'), '#env=staging&view=segments');
      await page.click('#tab-flags');
      await page.waitForSelector('#flags-view:not([hidden])');
      assert.equal(await page.isHidden('#webhooks-view'), true);
      assert.equal(await page.evaluate(() => location.hash), '#env=staging');
      await page.click('#tab-webhooks');
      await page.waitForSelector('#webhooks-view:not([hidden])');
      assert.equal(await page.evaluate(() => location.hash), '#env=staging&view=webhooks');

      // The form, from the keyboard: every control has a name.
      await page.focus('#new-webhook');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#webhook-dialog[open]');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'wd-url');
      const unnamed = await page.evaluate(() => [...document.querySelectorAll('#webhook-dialog input, #webhook-dialog button')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map((e) => e.id || e.outerHTML));
      assert.deepEqual(unnamed, [], 'controls without a label');
      assert.equal(await page.getAttribute('#wd-secret', 'type'), 'password');
      const groups = await page.evaluate(() => [...document.querySelectorAll('#wd-events fieldset')].map((f) => [
        f.querySelector('legend').textContent,
        [...f.querySelectorAll('input[type="checkbox"]')].map((b) => b.value),
      ]));
      assert.deepEqual(groups, [
        ['Flags', ['flag.created', 'flag.updated', 'flag.deleted', 'flag.reverted', 'flag.plan_step', 'flag.plan_halted']],
        ['Segments', ['segment.created', 'segment.updated', 'segment.deleted']],
        ['Environments', ['environment.created', 'environment.updated', 'environment.deleted']],
      ]);
      assert.equal(await page.textContent('#wd-events-count'), 'Receives all events.');
      await page.keyboard.type(rec.url);

      // Generate: 32 URL-safe characters, shown once with the warning; another click, another secret.
      assert.equal(await page.isHidden('#wd-secret-shown'), true);
      await page.focus('#wd-generate');
      await page.keyboard.press('Enter');
      const first = await page.inputValue('#wd-secret');
      assert.match(first, /^[A-Za-z0-9_-]{32}$/);
      assert.equal(await page.textContent('#wd-secret-value'), first);
      assert.match(await page.textContent('#wd-secret-shown'), /cannot be read back/);
      await page.click('#wd-generate');
      const secret = await page.inputValue('#wd-secret');
      assert.match(secret, /^[A-Za-z0-9_-]{32}$/);
      assert.notEqual(secret, first);
      assert.equal(await page.textContent('#wd-secret-value'), secret);
      await page.check('#wd-format-slack');
      await page.click('#wd-submit');
      await page.waitForSelector('#webhook-dialog:not([open])', { state: 'attached' });

      const list = await apiWebhooks();
      assert.equal(list.length, 1, JSON.stringify(list));
      const w = list[0];
      assert.deepEqual([w.url, w.events, w.format], [rec.url, [], 'slack']);
      const posts = sent.filter((r) => r.method === 'POST');
      assert.deepEqual(posts.map((r) => [r.url, JSON.parse(r.body)]), [['/api/webhooks', { url: rec.url, secret, events: [], format: 'slack' }]]);
      assert.equal(await page.inputValue('#wd-secret'), '', 'the secret leaves the form when it closes');
      assert.equal(await page.textContent('#wd-secret-value'), '');

      // Listed: url, format, events, created.
      const tr = webhookRow(page, w.id);
      await tr.waitFor();
      assert.equal(await tr.locator('.wh-url').textContent(), rec.url);
      assert.equal(await tr.locator('.c-format').textContent(), 'Slack');
      assert.equal(await tr.locator('.c-events').textContent(), 'all events');
      assert.equal(await tr.locator('.c-created time').getAttribute('datetime'), w.created_at);
      assert.notEqual((await tr.locator('.c-created').textContent()).trim(), '');
      assert.equal(await page.isHidden('#webhooks-empty'), true);

      // Its deliveries, before any change: none.
      const panel = await openDeliveries(page, w.id);
      await page.waitForSelector(`#${panel} .wh-d-empty:not([hidden])`);
      assert.deepEqual((await deliveriesShown(page, panel)).rows, []);

      // A change through the API: the receiver gets it, signed with the generated secret.
      const t0 = Date.now();
      const r = await env.admin.patch('/api/flags/wh.checkout', { environments: { production: { enabled: false } } });
      assert.equal(r.status, 200, r.text);
      await until(() => rec.requests.length >= 1, { timeout: DELIVER_MS, what: 'the event at the receiver' });
      const got = rec.requests[0];
      assert.equal(got.method, 'POST');
      assert.equal(got.url, '/hooks/slack');
      assert.equal(got.headers['x-vexil-signature'], 'sha256=' + createHmac('sha256', secret).update(got.raw).digest('hex'), 'signed with the secret the page generated');
      assert.equal(got.json.event, 'flag.updated');
      assert.equal(got.json.flag, 'wh.checkout');
      assert.deepEqual(got.json.environments, ['production']);
      assert.equal(typeof got.json.text, 'string', 'the slack format has a text');
      assert.match(got.json.text, /wh\.checkout/);

      // The open panel follows without a click: delivered, one attempt, 200.
      let shown;
      try {
        await until(async () => {
          shown = await deliveriesShown(page, panel);
          return shown.rows.length === 1 && shown.rows[0].status === 'delivered';
        }, { timeout: DELIVER_MS, what: 'the delivery shown delivered' });
      } catch (e) {
        e.message += `; the panel shows ${JSON.stringify(shown)}`;
        throw e;
      }
      const ms = Date.now() - t0;
      assert.deepEqual(shown.rows, [{ id: got.headers['x-vexil-delivery'], event: 'flag.updated', status: 'delivered', next: null, attempts: '1', last: '200' }]);
      assert.equal(shown.status, '1 delivery, newest first: 1 delivered.');
      assert.equal(shown.empty, false);

      // Refresh reads again.
      const reads = () => sent.filter((x) => x.method === 'GET' && x.url === `/api/webhooks/${w.id}/deliveries?limit=50`).length;
      const n = reads();
      await webhookRow(page, w.id).locator('xpath=following-sibling::tr[1]').locator('.wh-refresh').click();
      await until(() => reads() > n, { what: 'a read on Refresh' });
      await sleep(200);
      assert.equal((await deliveriesShown(page, panel)).rows.length, 1);
      assert.equal(rec.requests.length, 1, 'one event, once (the flag was created before the webhook)');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'admin-webhooks.png') });
      console.log(`flag change to "delivered" in the panel: ${ms} ms`);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a bad url shows the API\'s 400 next to the form and adds nothing; a short secret too; then the ticked events only', { timeout: 45000 }, async () => {
    const rec = await startReceiver('chosen');
    const p = await openPage(browser, base);
    const { page } = p;
    try {
      await openAt(page, base, env.adminToken, '#view=webhooks');
      await page.waitForSelector('#webhooks-view:not([hidden])');
      const before = await apiWebhooks();
      await until(async () => (await page.locator('#webhooks-body tr.wh-row').count()) === before.length, { what: 'the list read' });

      await page.click('#new-webhook');
      await page.waitForSelector('#webhook-dialog[open]');
      const bad = 'ftp://example.com/hook';
      await page.fill('#wd-url', bad);
      await page.click('#wd-generate');
      await page.check('#wd-ev-flag-deleted');
      await page.check('#wd-ev-environment-created');
      assert.equal(await page.textContent('#wd-events-count'), 'Receives 2 of 12 events.');
      await page.click('#wd-submit');
      await page.waitForSelector('#wd-url-error:not(:empty)');
      // The server's own words, the same as the API answers, under the field.
      const api = await env.admin.post('/api/webhooks', { url: bad, secret: 'x'.repeat(32) });
      assert.equal(api.status, 400, api.text);
      const words = await page.textContent('#wd-url-error');
      assert.equal(await page.isVisible('#wd-url-error'), true);
      assert.equal(await page.getAttribute('#wd-url-error', 'role'), 'alert');
      assert.match(await page.getAttribute('#wd-url', 'aria-describedby'), /\bwd-url-error\b/);
      assert.ok(words.includes(api.json.error.message.replace(/[\s.]+$/, '')), `${JSON.stringify(words)} has the API's ${JSON.stringify(api.json.error.message)}`);
      assert.match(words, /\(400 invalid value\)/);
      assert.equal(await page.getAttribute('#wd-url', 'aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'wd-url');
      assert.equal(await page.isVisible('#webhook-dialog'), true, 'the form stays open');
      assert.equal(await page.inputValue('#wd-url'), bad, 'what was typed is kept');
      assert.equal(await page.isChecked('#wd-ev-flag-deleted'), true);
      assert.deepEqual(await apiWebhooks(), before, 'nothing added');
      assert.equal(await page.locator('#webhooks-body tr.wh-row').count(), before.length);

      // A secret under 16 bytes: the API's 400, at the secret.
      await page.fill('#wd-url', rec.url);
      await page.fill('#wd-secret', 'short');
      assert.equal(await page.isHidden('#wd-secret-shown'), true, 'the generated secret is no longer shown once edited');
      await page.click('#wd-submit');
      await page.waitForSelector('#wd-secret-error:not(:empty)');
      assert.equal(await page.textContent('#wd-secret-error'), 'Not added: secret must be a string of 16 to 1000 bytes (400 invalid value).');
      assert.equal(await page.getAttribute('#wd-secret', 'aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'wd-secret');
      assert.equal(await page.getAttribute('#wd-url', 'aria-invalid'), null);
      assert.equal(await page.textContent('#wd-url-error'), '', 'the url error went with the url typed again');
      assert.deepEqual(await apiWebhooks(), before, 'nothing added');

      // Fixed: added with the two ticked events, as JSON.
      await page.click('#wd-generate');
      await page.click('#wd-submit');
      await page.waitForSelector('#webhook-dialog:not([open])', { state: 'attached' });
      const now = await apiWebhooks();
      assert.equal(now.length, before.length + 1);
      const w = now.find((x) => x.url === rec.url);
      assert.deepEqual([w.events, w.format], [['flag.deleted', 'environment.created'], 'json']);
      const tr = webhookRow(page, w.id);
      await tr.waitFor();
      assert.equal(await tr.locator('.c-events').textContent(), 'flag.deleted, environment.created');
      assert.equal(await tr.locator('.c-format').textContent(), 'JSON');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('the deliveries panel: failed ones stand out, pending ones count down to their next attempt, server text stays text', { timeout: 45000 }, async () => {
    const w = await registerApi('http://127.0.0.1:9/crafted');
    const now = Date.now();
    const iso = (ms) => new Date(ms).toISOString();
    const crafted = [
      { id: '00000000-0000-4000-8000-000000000003', event_id: 12, event: 'flag.updated', status: 'pending', next_at: iso(now + 40000), created_at: iso(now - 5000), delivered_at: null,
        attempts: [{ at: iso(now - 4000), status_code: 500, error: null, duration_ms: 12 }] },
      { id: '00000000-0000-4000-8000-000000000002', event_id: 11, event: 'segment.created', status: 'failed', next_at: null, created_at: iso(now - 90000000), delivered_at: null,
        attempts: [{ at: iso(now - 89000000), status_code: null, error: 'connection refused', duration_ms: 1 }, { at: iso(now - 3600000), status_code: null, error: XSS, duration_ms: 5000 }] },
      { id: '00000000-0000-4000-8000-000000000001', event_id: 10, event: 'flag.created', status: 'delivered', next_at: null, created_at: iso(now - 95000000), delivered_at: iso(now - 95000000),
        attempts: [{ at: iso(now - 95000000), status_code: 204, error: null, duration_ms: 3 }] },
    ];
    const p = await openPage(browser, base);
    const { page } = p;
    let hits = 0;
    let answer = { status: 200, body: JSON.stringify({ deliveries: crafted }) };
    let held = null; // while an array, reads are held there unanswered
    const fulfill = (route) => route.fulfill({ status: answer.status, contentType: 'application/json', body: answer.body });
    await page.route(`${base}/api/webhooks/${w.id}/deliveries?limit=50`, (route) => {
      hits++;
      if (held) held.push(route);
      else fulfill(route);
    });
    try {
      await openAt(page, base, env.adminToken, '#view=webhooks');
      await webhookRow(page, w.id).waitFor();
      const panel = await openDeliveries(page, w.id);
      await page.waitForSelector(`#${panel} tr.d-row`);
      const shown = await deliveriesShown(page, panel);
      assert.equal(shown.status, '3 deliveries, newest first: 1 delivered, 1 failed, 1 pending.');
      assert.deepEqual(shown.rows.map((r) => [r.event, r.status, r.attempts, r.last]), [
        ['flag.updated', 'pending', '1', '500'],
        ['segment.created', 'failed', '2', XSS],
        ['flag.created', 'delivered', '1', '204'],
      ]);
      assert.match(shown.rows[0].next, /^next attempt in (3\d|40) s, at \d\d:\d\d:\d\d/);
      assert.equal(shown.rows[1].next, null);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      assert.equal(await page.locator(`#${panel} img`).count(), 0, 'the error is text, not markup');

      // Failed stands out: its own colours, and the last result in the danger colour.
      const look = await page.evaluate((id) => {
        const rows = [...document.querySelectorAll(`#${id} tr.d-row`)];
        const cs = (e) => getComputedStyle(e);
        return rows.map((tr) => ({
          cls: tr.className,
          bg: cs(tr.querySelector('td')).backgroundColor,
          badge: cs(tr.querySelector('.badge-delivery')).backgroundColor,
          last: cs(tr.querySelector('.d-last')).color,
        }));
      }, panel);
      assert.match(look[1].cls, /\bis-failed\b/);
      assert.equal(look[1].badge, 'rgb(180, 35, 24)', 'the failed badge is solid danger red');
      assert.notEqual(look[1].bg, look[2].bg, 'a failed row has its own background');
      assert.equal(look[1].last, 'rgb(180, 35, 24)');
      assert.equal(look[0].last, 'rgb(180, 35, 24)', 'a 500 is shown as an error');
      assert.notEqual(look[2].last, 'rgb(180, 35, 24)', 'a 204 is not');

      // A pending delivery: the panel is read again on its own; while that
      // read is held unanswered, the countdown moves by itself.
      held = [];
      const before = hits;
      await until(() => hits > before, { timeout: 4000, what: 'the panel read again while a delivery is pending' });
      await until(async () => (await deliveriesShown(page, panel)).rows[0].next !== shown.rows[0].next, { timeout: 3000, what: 'the countdown moving' });
      assert.equal(hits, before + 1, 'one read at a time');
      for (const route of held) await fulfill(route);
      held = null;

      // A failed read is said in the panel; what was shown stays.
      answer = { status: 503, body: JSON.stringify({ error: { code: 'unavailable', message: 'the database is unreachable' } }) };
      await webhookRow(page, w.id).locator('xpath=following-sibling::tr[1]').locator('.wh-refresh').click();
      await page.waitForSelector(`#${panel} .msg-error`);
      const failed = await deliveriesShown(page, panel);
      assert.match(failed.msg, /Could not read the deliveries: The database is unreachable\. \(503 unavailable\)/);
      assert.equal(failed.rows.length, 3);
      answer = { status: 200, body: JSON.stringify({ deliveries: crafted.slice(1) }) };
      await until(async () => (await deliveriesShown(page, panel)).rows.length === 2, { timeout: 4000, what: 'read again after the failure' });
      assert.equal((await deliveriesShown(page, panel)).msg, '');

      // Nothing pending: no more reads.
      let n = hits;
      await sleep(2600);
      assert.equal(hits, n, 'nothing pending, nothing read');

      // Closed: no more reads either, with a delivery pending.
      answer = { status: 200, body: JSON.stringify({ deliveries: crafted }) };
      await webhookRow(page, w.id).locator('xpath=following-sibling::tr[1]').locator('.wh-refresh').click();
      await until(async () => (await deliveriesShown(page, panel)).rows.length === 3, { what: 'the pending one back' });
      await webhookRow(page, w.id).locator('.wh-toggle').click();
      assert.equal(await webhookRow(page, w.id).locator('.wh-toggle').getAttribute('aria-expanded'), 'false');
      assert.equal(await page.isHidden(`#${panel}`), true);
      n = hits;
      await sleep(2600);
      assert.equal(hits, n, 'a closed panel is not read');
      p.check();
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      await p.close();
    }
  });

  test('delete asks first: Cancel keeps the webhook, Delete removes it; with all deleted the list is empty', { timeout: 45000 }, async () => {
    const w = await registerApi('http://127.0.0.1:9/to-delete', { events: ['segment.deleted'] });
    const p = await openPage(browser, base);
    const { page } = p;
    try {
      await openAt(page, base, env.adminToken, '#view=webhooks');
      await webhookRow(page, w.id).waitFor();

      const asked = await confirmed(page, webhookRow(page, w.id).locator('.wh-delete'), 'cancel');
      assert.equal(asked.title, 'Delete this webhook?');
      assert.match(asked.body, /no longer be posted to http:\/\/127\.0\.0\.1:9\/to-delete/);
      assert.match(asked.body, /receives segment\.deleted/);
      assert.ok((await apiWebhooks()).some((x) => x.id === w.id), 'Cancel keeps it');
      assert.equal(await webhookRow(page, w.id).count(), 1);

      // Delete every webhook there is, one by one, through the page.
      for (const x of await apiWebhooks()) {
        await webhookRow(page, x.id).waitFor();
        const q = await confirmed(page, webhookRow(page, x.id).locator('.wh-delete'), 'ok');
        assert.match(q.body, new RegExp(x.url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
        await until(async () => !(await apiWebhooks()).some((y) => y.id === x.id), { what: `${x.url} deleted` });
        await webhookRow(page, x.id).waitFor({ state: 'detached' });
      }
      assert.deepEqual(await apiWebhooks(), []);
      await page.waitForSelector('#webhooks-empty:not([hidden])');
      assert.equal(await page.isHidden('#webhooks-wrap'), true);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'new-webhook', 'the focus goes somewhere useful');
      p.check();
    } finally {
      await p.close();
    }
  });
});
