// docs/operations.md §2: /healthz, /readyz, /metrics, the request log, X-Request-Id.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, UUID, createFlag, currentVersion, startEnv,
} from './lib/harness.mjs';

let env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

const rid = () => `it-${randomBytes(8).toString('hex')}`;

describe('/healthz and /readyz', () => {
  test('/healthz is 200', async () => {
    const r = await env.anon.get('/healthz');
    assert.equal(r.status, 200);
  });

  test('/readyz is 200 {"status":"ready","database":"up","version":N} with the current version', async () => {
    const r = await env.anon.get('/readyz');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: 'ready', database: 'up', version: 0 });
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    await createFlag(env.admin, { name: 'ready_probe' });
    await createFlag(env.admin, { name: 'ready_probe2' });
    const r2 = await env.anon.get('/readyz');
    assert.deepEqual(r2.json, { status: 'ready', database: 'up', version: 2 });
  });
});

/** Parse Prometheus text into [{name, labels, value}] (comments dropped). */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/);
    assert.ok(m, `unparsable metrics line: ${line}`);
    const labels = {};
    if (m[3]) {
      for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

async function metrics() {
  const r = await env.anon.get('/metrics');
  assert.equal(r.status, 200);
  return { r, series: parseMetrics(r.text) };
}

const one = (series, name) => {
  const s = series.filter((x) => x.name === name);
  assert.equal(s.length, 1, `one series ${name}, got ${s.length}`);
  return s[0].value;
};

describe('/metrics', () => {
  test('is Prometheus text with every series of docs/decisions.md', async () => {
    const { r, series } = await metrics();
    assert.match(r.headers.get('content-type') || '', /^text\/plain/);
    assert.match(r.text, /^# TYPE vexil_http_requests_total counter$/m);
    assert.match(r.text, /^# TYPE vexil_http_request_duration_seconds histogram$/m);
    assert.match(r.text, /^# TYPE vexil_longpoll_held gauge$/m);
    assert.match(r.text, /^# TYPE vexil_flags gauge$/m);
    assert.match(r.text, /^# TYPE vexil_version gauge$/m);
    assert.match(r.text, /^# TYPE vexil_database_up gauge$/m);
    const req = series.filter((s) => s.name === 'vexil_http_requests_total');
    assert.ok(req.length > 0);
    for (const s of req) {
      assert.ok('route' in s.labels && 'status' in s.labels, JSON.stringify(s.labels));
      assert.match(s.labels.status, /^\d{3}$/);
    }
    const buckets = series.filter((s) => s.name === 'vexil_http_request_duration_seconds_bucket');
    assert.ok(buckets.some((b) => b.labels.le === '+Inf'), 'a +Inf bucket');
    const inf = buckets.filter((b) => b.labels.le === '+Inf').reduce((a, b) => a + b.value, 0);
    const count = series.filter((s) => s.name === 'vexil_http_request_duration_seconds_count').reduce((a, b) => a + b.value, 0);
    assert.equal(inf, count, '+Inf bucket = count');
    assert.ok(series.some((s) => s.name === 'vexil_http_request_duration_seconds_sum'));
  });

  test('gauges tell the flag count, the version, held long-polls and the database', async () => {
    const v = await currentVersion(env.client);
    const n = (await env.client.get('/flags')).json.flags.length;
    const { series } = await metrics();
    assert.equal(one(series, 'vexil_flags'), n);
    assert.equal(one(series, 'vexil_version'), v);
    assert.equal(one(series, 'vexil_longpoll_held'), 0);
    assert.equal(one(series, 'vexil_database_up'), 1);
    await createFlag(env.admin, { name: 'metrics_probe' });
    const after = (await metrics()).series;
    assert.equal(one(after, 'vexil_flags'), n + 1);
    assert.equal(one(after, 'vexil_version'), v + 1);
  });

  test('requests are counted by status', async () => {
    const sum = (series, status) => series
      .filter((s) => s.name === 'vexil_http_requests_total' && s.labels.status === status)
      .reduce((a, b) => a + b.value, 0);
    const before404 = sum((await metrics()).series, '404');
    const before401 = sum((await metrics()).series, '401');
    for (let i = 0; i < 3; i++) await env.admin.get('/no/such/route');
    for (let i = 0; i < 2; i++) await env.anon.get('/flags');
    const s = (await metrics()).series;
    assert.equal(sum(s, '404'), before404 + 3);
    assert.equal(sum(s, '401'), before401 + 2);
  });

  test('the route label is the route, not the raw path (bounded cardinality)', async () => {
    for (let i = 0; i < 3; i++) await env.client.get(`/flags/unique_${i}_${rid()}?user=x`);
    const { r } = await metrics();
    assert.ok(!/unique_\d_it-/.test(r.text), 'raw flag names must not become label values');
  });
});

describe('X-Request-Id', () => {
  test('a given X-Request-Id is echoed', async () => {
    const id = rid();
    const r = await env.client.get('/flags', { headers: { 'X-Request-Id': id } });
    assert.equal(r.headers.get('x-request-id'), id);
  });

  test('without one, a uuid is generated, new for each request', async () => {
    const a = await env.client.get('/flags');
    const b = await env.client.get('/flags');
    assert.match(a.headers.get('x-request-id') || '', UUID);
    assert.match(b.headers.get('x-request-id') || '', UUID);
    assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'));
  });

  test('echoed on errors, 304 and public endpoints too', async () => {
    const v = await currentVersion(env.client);
    for (const [client, p, h] of [
      [env.anon, '/flags', {}], [env.admin, '/nope', {}], [env.anon, '/healthz', {}],
      [env.client, '/flags', { 'If-None-Match': `"${v}"` }],
    ]) {
      const id = rid();
      const r = await client.get(p, { headers: { ...h, 'X-Request-Id': id } });
      assert.equal(r.headers.get('x-request-id'), id, `${p} → ${r.status}`);
    }
  });
});

describe('the request log', () => {
  test('one JSON line per request with time, level, method, path, status, duration_ms, request_id', async () => {
    const id = rid();
    const r = await env.client.get('/flags?user=log-user', { headers: { 'X-Request-Id': id } });
    assert.equal(r.status, 200);
    const lines = await env.server.waitLogs((l) => l.request_id === id);
    assert.equal(lines.length, 1, `exactly one log line for ${id}`);
    const l = lines[0];
    assert.match(l.time, RFC3339_MS);
    assert.ok(Math.abs(Date.parse(l.time) - Date.now()) < 60000, 'time is now');
    assert.equal(l.level, 'info');
    assert.equal(l.method, 'GET');
    assert.equal(l.path, '/flags', 'path without the query string');
    assert.equal(l.status, 200);
    assert.equal(typeof l.duration_ms, 'number');
    assert.ok(l.duration_ms >= 0 && l.duration_ms < 10000, String(l.duration_ms));
  });

  test('errors, writes and public endpoints are logged with their status', async () => {
    const cases = [
      [env.anon, 'GET', '/flags', undefined, 401],
      [env.client, 'GET', '/api/flags', undefined, 403],
      [env.admin, 'GET', '/nope', undefined, 404],
      [env.admin, 'POST', '/api/flags', { name: 'log_probe' }, 201],
      [env.admin, 'PATCH', '/api/flags/log_probe', { percentage: 5 }, 200],
      [env.admin, 'POST', '/api/flags', { name: 'log_probe' }, 409],
      [env.admin, 'DELETE', '/api/flags/log_probe', undefined, 204],
      [env.anon, 'GET', '/healthz', undefined, 200],
    ];
    for (const [client, method, p, body, status] of cases) {
      const id = rid();
      const r = await client.request(method, p, { body, headers: { 'X-Request-Id': id } });
      assert.equal(r.status, status, `${method} ${p}`);
      const lines = await env.server.waitLogs((l) => l.request_id === id);
      assert.equal(lines.length, 1, `one line for ${method} ${p}`);
      assert.equal(lines[0].method, method);
      assert.equal(lines[0].path, p);
      assert.equal(lines[0].status, status);
    }
  });

  test('a generated request id is the one logged', async () => {
    const r = await env.client.get('/flags');
    const id = r.headers.get('x-request-id');
    const lines = await env.server.waitLogs((l) => l.request_id === id);
    assert.equal(lines.length, 1);
  });

  test('every request gets a line: n requests, n lines', async () => {
    const ids = Array.from({ length: 20 }, rid);
    await Promise.all(ids.map((id) => env.client.get('/flags', { headers: { 'X-Request-Id': id } })));
    const set = new Set(ids);
    const lines = await env.server.waitLogs((l) => set.has(l.request_id), { min: ids.length });
    assert.equal(lines.length, ids.length);
  });

  test('no secret and no query string ever reaches the log', async () => {
    await env.admin.get('/api/flags?token=querysecret');
    await env.anon.get('/flags', { headers: { Authorization: 'Bearer vx_wrongsecretwrongsecretwrongsecretwrongsecre' } });
    await env.server.waitLogs(() => false, { timeout: 200 });
    for (const s of [env.adminToken, env.clientToken, env.adminToken.slice(3), 'wrongsecretwrongsecret', 'querysecret']) {
      assert.ok(!env.server.stderr.includes(s), `the log holds ${s.slice(0, 8)}…`);
    }
    for (const l of env.server.logs()) {
      if (l.path !== undefined) assert.ok(!l.path.includes('?'), `query in the logged path ${l.path}`);
    }
  });

  test('request log lines are one per line and valid JSON', async () => {
    const lines = env.server.stderr.split('\n').filter((l) => l.includes('"request_id"'));
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
  });
});
