// The OpenFeature web SDK with its OFREP web provider, in Debian's Chromium,
// against a real `vexil serve` (docs/ofrep.md): a flag switched through the admin
// API reaches the page's client within a second, without a reload, through
// the SSE change stream the bulk answer advertises.
//
//   source tests/lib/pg.sh && pg_start /tmp/pgweb     # once
//   VEXIL_BIN=build/plain/vexil node --test tests/browser/ofrep-web.test.mjs
//
// No build step: a small Node server on loopback serves a test page and the
// packages' own ESM files from tests/node_modules, wired with an import map.
// Two set-ups: the page on its own origin, talking to vexil across origins
// (vexil runs with --cors-origins for it), and the page on vexil's origin
// (served by intercepting one path prefix in the browser).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, createFlag, startEnv } from '../integration/lib/harness.mjs';
import { browserMissing, launch, until } from './lib/browser.mjs';

const NODE_MODULES = path.join(REPO, 'tests/node_modules');

/** Directory of package `name` as Node would find it from directory `from`. */
function pkgDir(name, from = NODE_MODULES) {
  for (let d = from; ; d = path.dirname(d)) {
    const base = path.basename(d) === 'node_modules' ? d : path.join(d, 'node_modules');
    const p = path.join(base, name);
    if (existsSync(path.join(p, 'package.json'))) return p;
    if (d === path.dirname(d) || d === REPO) throw new Error(`${name} is not installed (npm ci in tests/)`);
  }
}

/** The ESM entry of a package directory (its "module", else exports' import). */
function esmEntry(dir) {
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const rel = pkg.module || pkg.exports?.['.']?.module || pkg.exports?.import || pkg.exports?.['.']?.import;
  assert.ok(rel, `${pkg.name} has no ESM entry`);
  return path.join(dir, rel);
}

/** Bare specifier -> file, resolved the way Node resolves them. */
function moduleFiles() {
  const webProvider = pkgDir('@openfeature/ofrep-web-provider');
  return {
    '@openfeature/core': esmEntry(pkgDir('@openfeature/core')),
    '@openfeature/web-sdk': esmEntry(pkgDir('@openfeature/web-sdk')),
    '@openfeature/ofrep-web-provider': esmEntry(webProvider),
    // The web provider's own ofrep-core (2.x), not the server provider's.
    '@openfeature/ofrep-core': esmEntry(pkgDir('@openfeature/ofrep-core', path.join(webProvider, 'node_modules'))),
  };
}

const PAGE = (imports) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vexil OFREP web test</title>
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module" src="./app.mjs"></script>
</head><body><p id="state">loading</p><pre id="flags"></pre></body></html>
`;

// The page's code: an OpenFeature web client on the OFREP web provider.
const APP = `import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

const t = {
  loadId: Math.random().toString(36).slice(2),
  changes: 0,
  errors: [],
  values: null,
  async start({ baseUrl, token, user, flags }) {
    const provider = new OFREPWebProvider({
      baseUrl,
      headers: [['Authorization', 'Bearer ' + token]],
      cacheMode: 'disabled',
    });
    await OpenFeature.setContext({ targetingKey: user });
    await OpenFeature.setProviderAndWait(provider);
    const client = OpenFeature.getClient();
    const render = () => {
      const v = {};
      for (const f of flags) v[f] = client.getBooleanValue(f, false);
      t.values = v;
      document.getElementById('flags').textContent = JSON.stringify(v);
    };
    client.addHandler(ProviderEvents.ConfigurationChanged, () => { t.changes++; render(); });
    client.addHandler(ProviderEvents.Error, (e) => t.errors.push(String(e && e.message)));
    t.client = client;
    render();
    document.getElementById('state').textContent = 'ready';
  },
  details(flag) {
    const d = t.client.getBooleanDetails(flag, false);
    return { value: d.value, reason: d.reason, variant: d.variant, errorCode: d.errorCode };
  },
};
window.vexilTest = t;
`;

/** {path: [content-type, body]} for the page, its app and the modules. */
function pageFiles() {
  const files = moduleFiles();
  const imports = {};
  const out = {
    '': ['text/html; charset=utf-8', null],
    'app.mjs': ['text/javascript; charset=utf-8', APP],
  };
  for (const [spec, file] of Object.entries(files)) {
    const name = 'm/' + spec.replace('@openfeature/', '') + '.js';
    imports[spec] = './' + name;
    out[name] = ['text/javascript; charset=utf-8', readFileSync(file, 'utf8')];
  }
  out[''][1] = PAGE(imports);
  return out;
}

describe('OpenFeature web SDK + OFREP web provider in Chromium', { skip: browserMissing() || false }, () => {
  let env;
  let browser;
  let pages; // the static server
  let pageOrigin;
  const files = pageFiles();

  before(async () => {
    pages = http.createServer((req, res) => {
      const p = new URL(req.url, 'http://x').pathname.replace(/^\//, '');
      const f = files[p];
      if (!f) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': f[0], 'Cache-Control': 'no-store' }).end(f[1]);
    });
    await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${pages.address().port}`;
    env = await startEnv({ args: ['--cors-origins', pageOrigin] });
    await createFlag(env.admin, { name: 'checkout', enabled: true, percentage: 100 });
    await createFlag(env.admin, { name: 'banner', enabled: false });
    await createFlag(env.admin, { name: 'beta', enabled: true, percentage: 0, users: ['user-7'] });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await env?.close();
    await new Promise((resolve) => (pages ? pages.close(resolve) : resolve()));
  });

  const setups = [
    ['across origins (CORS)', () => pageOrigin + '/'],
    ['on vexil\'s own origin', () => env.server.base + '/__vexil_test/'],
  ];

  for (const [label, pageUrl] of setups) {
    describe(label, () => {
      let context;
      let page;
      const problems = [];
      const requests = [];

      before(async () => {
        // Each set-up starts from the same flag state.
        for (const [n, b] of [['checkout', { enabled: true }], ['banner', { enabled: false }]]) {
          const r = await env.admin.patch(`/api/flags/${n}`, b);
          assert.equal(r.status, 200, r.text);
        }
        context = await browser.newContext();
        page = await context.newPage();
        page.setDefaultTimeout(10000);
        // Same-origin set-up: the page and modules come from under vexil's
        // origin; everything else goes to vexil itself.
        const prefix = env.server.base + '/__vexil_test/';
        await page.route(prefix + '**', (route) => {
          const f = files[route.request().url().slice(prefix.length).split('?')[0]];
          if (!f) return route.fulfill({ status: 404, body: '' });
          return route.fulfill({ status: 200, contentType: f[0], body: f[1] });
        });
        page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), type: r.resourceType() }));
        page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(`console: ${m.text()}`);
        });
        await page.goto(pageUrl());
        await page.evaluate((cfg) => window.vexilTest.start(cfg), {
          baseUrl: env.server.base,
          token: env.clientToken,
          user: 'user-7',
          flags: ['checkout', 'banner', 'beta'],
        });
        await page.waitForSelector('#state:text("ready")');
      });
      after(async () => {
        await context?.close();
      });

      const values = () => page.evaluate(() => window.vexilTest.values);

      test('the page evaluates through vexil: values and reasons', async () => {
        assert.deepEqual(await values(), { checkout: true, banner: false, beta: true });
        const d = (f) => page.evaluate((x) => window.vexilTest.details(x), f);
        assert.deepEqual(await d('checkout'), { value: true, reason: 'STATIC', variant: 'on', errorCode: undefined });
        assert.deepEqual(await d('banner'), { value: false, reason: 'DISABLED', variant: 'off', errorCode: undefined });
        assert.deepEqual(await d('beta'), { value: true, reason: 'TARGETING_MATCH', variant: 'on', errorCode: undefined });
        const missing = await d('no_such_flag');
        assert.equal(missing.value, false);
        assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
        assert.equal(await page.textContent('#flags'), JSON.stringify({ checkout: true, banner: false, beta: true }));
      });

      test('it follows the SSE change stream the bulk answer advertised', async () => {
        await until(() => requests.some((r) => r.type === 'eventsource'), {
          what: 'an EventSource connection',
          timeout: 5000,
        });
        const streams = requests.filter((r) => r.type === 'eventsource');
        assert.equal(streams.length, 1, `one EventSource: ${JSON.stringify(streams)}`);
        const u = new URL(streams[0].url);
        assert.equal(u.origin, env.server.base);
        assert.equal(u.pathname, '/ofrep/v1/events');
        assert.ok(u.searchParams.get('key'), 'the stream key');
      });

      test('a flag turned off through the admin API changes the page within a second, no reload', async () => {
        const loadId = await page.evaluate(() => window.vexilTest.loadId);
        const changes = await page.evaluate(() => window.vexilTest.changes);
        const t0 = Date.now();
        const r = await env.admin.patch('/api/flags/checkout', { enabled: false });
        assert.equal(r.status, 200, r.text);
        await page.waitForFunction(() => window.vexilTest.values.checkout === false, null, { timeout: 1000 });
        const ms = Date.now() - t0;
        assert.ok(ms < 1000, `the page saw the change after ${ms} ms`);
        assert.equal(await page.textContent('#flags'), JSON.stringify({ checkout: false, banner: false, beta: true }));
        assert.equal(await page.evaluate(() => window.vexilTest.loadId), loadId, 'the page was not reloaded');
        assert.ok(await page.evaluate(() => window.vexilTest.changes) > changes, 'ConfigurationChanged fired');
        const d = await page.evaluate(() => window.vexilTest.details('checkout'));
        assert.deepEqual([d.value, d.reason], [false, 'DISABLED']);
      });

      test('and back on, again within a second, on the same stream', async () => {
        const t0 = Date.now();
        assert.equal((await env.admin.patch('/api/flags/checkout', { enabled: true })).status, 200);
        await page.waitForFunction(() => window.vexilTest.values.checkout === true, null, { timeout: 1000 });
        assert.ok(Date.now() - t0 < 1000);
        assert.equal((await env.admin.patch('/api/flags/banner', { enabled: true, percentage: 100 })).status, 200);
        await page.waitForFunction(() => window.vexilTest.values.banner === true, null, { timeout: 1000 });
        assert.equal(requests.filter((x) => x.type === 'eventsource').length, 1, 'no reconnection');
        // Polling is off (the provider's default): every bulk fetch after the
        // first was asked for by an SSE event (three changes so far).
        const bulks = requests.filter((x) => x.method === 'POST'
          && new URL(x.url).pathname === '/ofrep/v1/evaluate/flags');
        assert.ok(bulks.length >= 4 && bulks.length <= 8, `bulk fetches: ${bulks.length}`);
      });

      test('no page errors, no CORS or CSP complaints, no provider errors', async () => {
        assert.deepEqual(problems, []);
        assert.deepEqual(await page.evaluate(() => window.vexilTest.errors), []);
      });
    });
  }
});
