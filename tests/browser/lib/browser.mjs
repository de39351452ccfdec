// browser.mjs -- Chromium (Debian's package) driven by playwright-core for the
// admin page tests.  Every page opened here records what a test must never see:
// a request to another origin, a JavaScript dialog (alert/confirm/prompt), an
// uncaught exception, or a Content-Security-Policy violation.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.VEXIL_CHROMIUM || '/usr/bin/chromium';

export const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why the browser tests cannot run here, or '' when they can. */
export function browserMissing() {
  return existsSync(CHROMIUM) ? '' : `${CHROMIUM} not found (apt-get install chromium)`;
}

/** A headless Chromium with a temporary profile (removed on close). */
export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
}

/**
 * A fresh context and page on `origin`, with watchers.  Returns
 * {context, page, requests, dialogs, errors, check()} where check() asserts
 * that every request stayed on origin and nothing bad happened.
 */
export async function openPage(browser, origin, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const requests = [];
  const dialogs = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text())) errors.push(`CSP: ${m.text()}`);
  });
  return {
    context,
    page,
    requests,
    dialogs,
    errors,
    check() {
      const foreign = requests.filter((u) => !u.startsWith(origin + '/'));
      assert.deepEqual(foreign, [], `requests left ${origin}`);
      assert.deepEqual(dialogs, [], 'the page opened a JavaScript dialog');
      assert.deepEqual(errors, [], 'the page had errors');
    },
    close: () => context.close(),
  };
}

/** Open /admin and sign in with token; waits for the list and the live connection. */
export async function signIn(page, origin, token) {
  await page.goto(origin + '/admin');
  await page.fill('#token', token);
  await page.click('#signin-button');
  await page.waitForSelector('#list-view:not([hidden])');
  await page.waitForSelector('#conn[data-state="live"]');
}

/** signIn, then open the page at `suffix` (e.g. "#env=staging"); the tab keeps the token. */
export async function openAt(page, origin, token, suffix) {
  await signIn(page, origin, token);
  await page.goto(origin + '/admin/' + suffix);
  await page.waitForSelector('#list-view:not([hidden])');
  await page.waitForSelector('#conn[data-state="live"]');
}

/** Open the flag's panel from its row and wait for it. */
export async function openPanel(page, name) {
  await row(page, name).locator('.flag-name').click();
  await page.waitForSelector('#flag-dialog[open]');
  await page.waitForFunction((n) => document.getElementById('fd-title').textContent === n, name);
}

/** The row of flag `name` in the list. */
export function row(page, name) {
  return page.locator(`#flags-body tr[data-name="${name}"]`);
}

/** Wait until fn() (async, in node) returns truthy; returns its value. */
export async function until(fn, { timeout = 5000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** fn(item) for every item, `workers` at a time (bulk set-up through the API). */
export async function inParallel(items, workers, fn) {
  const queue = [...items];
  await Promise.all(Array.from({ length: workers }, async () => {
    while (queue.length) await fn(queue.shift());
  }));
}

/**
 * From now on, record the name of every row of #flags-body that the page
 * changes in any way but the clock's ('(tbody)' for the body itself);
 * touchedRows(page) reads them.
 */
export async function watchRows(page) {
  await page.evaluate(() => {
    window.__touched = new Set();
    new MutationObserver((list) => {
      for (const m of list) {
        const n = m.target.nodeType === 1 ? m.target : m.target.parentElement;
        // "evaluated 1 min ago" follows the clock on every row it is on;
        // that is time passing, not a change being drawn.
        if (n && n.closest('.env-used')) continue;
        const tr = n && n.closest('tr');
        window.__touched.add(tr ? tr.dataset.name : '(tbody)');
      }
    }).observe(document.getElementById('flags-body'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

export async function touchedRows(page) {
  return page.evaluate(() => [...window.__touched]);
}
