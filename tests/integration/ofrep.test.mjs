// docs/ofrep.md: OpenFeature Remote Evaluation Protocol (OFREP).
//
// The real OpenFeature server SDK with its OFREP provider against a running
// vexil, then the wire: single and bulk bodies, errors, auth, CORS, the bulk
// ETag/304, and the SSE change stream (events, Last-Event-ID, auth, the cap,
// SIGTERM, and that idle streams cost no CPU).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import {
  bucket, createFlag, currentVersion, evaluate, sleep, startEnv,
} from './lib/harness.mjs';
import { WAKE_TOTAL_MS, assertWokeBy, settledAt, timeWrite } from './lib/cluster.mjs';
import { openStream } from './lib/sse.mjs';

const ORIGIN = 'http://app.example';
let env;
before(async () => {
  env = await startEnv({ args: ['--cors-origins', ORIGIN] });
  for (const f of FLAGS) model[f.name] = await createFlag(env.admin, f);
});
after(async () => {
  await OpenFeature.close();
  await env?.close();
});

// Users on either side of a 50 % split, found with the model (docs/evaluation.md).
const usersIn = (name, pct, on) => {
  const out = [];
  for (let i = 0; out.length < 3; i++) {
    const u = `user-${i}`;
    if ((bucket(name, u) <= pct) === on) out.push(u);
  }
  return out;
};

const FLAGS = [
  { name: 'listed', enabled: true, percentage: 0, users: ['alice', 'ü-user'] },
  { name: 'split', enabled: true, percentage: 50, users: ['alice'] },
  { name: 'killed', enabled: false, percentage: 100, users: ['alice'] },
  { name: 'everyone', enabled: true, percentage: 100 },
];
const model = {};
const SPLIT_ON = usersIn('split', 50, true);
const SPLIT_OFF = usersIn('split', 50, false);

/** POST an OFREP body (raw string, or an object to JSON-encode). */
function ofrep(client, path, body, headers = {}) {
  const opts = { headers: { 'Content-Type': 'application/json', ...headers } };
  if (typeof body === 'string') opts.raw = body;
  else if (body !== undefined) opts.raw = JSON.stringify(body);
  return client.request('POST', path, opts);
}
const one = (key, body, headers) => ofrep(env.client, `/ofrep/v1/evaluate/flags/${key}`, body, headers);
const bulk = (body, headers) => ofrep(env.client, '/ofrep/v1/evaluate/flags', body, headers);

/** The expected single-flag success for user (null: anonymous). */
function expected(name, user, version) {
  const f = model[name];
  const on = evaluate(f, user);
  let reason;
  if (!f.enabled) reason = 'DISABLED';
  else if (user && f.users.includes(user)) reason = 'TARGETING_MATCH';
  else if (f.percentage === 100) reason = 'STATIC';
  else if (user) reason = 'SPLIT';
  else reason = 'DEFAULT';
  return { key: name, value: on, reason, variant: on ? 'on' : 'off', metadata: { version } };
}

function assertOfrepError(res, status, key, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assert.ok(res.json && typeof res.json === 'object', `not JSON: ${res.text}`);
  if (key === null) {
    assert.deepEqual(Object.keys(res.json).sort(), ['errorCode', 'errorDetails'], res.text);
  } else {
    assert.deepEqual(Object.keys(res.json).sort(), ['errorCode', 'errorDetails', 'key'], res.text);
    assert.equal(res.json.key, key);
  }
  assert.equal(res.json.errorCode, code);
  assert.equal(typeof res.json.errorDetails, 'string');
  assert.ok(res.json.errorDetails.length > 0);
}

// ---------------------------------------------------------------- the SDK

describe('OpenFeature server SDK with the OFREP provider', () => {
  let client;
  before(async () => {
    const provider = new OFREPProvider({
      baseUrl: env.server.base,
      headers: [['Authorization', `Bearer ${env.clientToken}`]],
    });
    await OpenFeature.setProviderAndWait('vexil', provider);
    client = OpenFeature.getClient('vexil');
  });

  test('a listed user: true, TARGETING_MATCH, variant on, version in the metadata', async () => {
    const d = await client.getBooleanDetails('listed', false, { targetingKey: 'alice' });
    assert.equal(d.value, true);
    assert.equal(d.reason, 'TARGETING_MATCH');
    assert.equal(d.variant, 'on');
    assert.equal(d.errorCode, undefined);
    assert.deepEqual(d.flagMetadata, { version: await currentVersion(env.client) });
  });

  test('bucketed users: SPLIT, on and off as docs/evaluation.md says', async () => {
    for (const u of SPLIT_ON) {
      const d = await client.getBooleanDetails('split', false, { targetingKey: u });
      assert.deepEqual([d.value, d.reason, d.variant], [true, 'SPLIT', 'on'], u);
    }
    for (const u of SPLIT_OFF) {
      const d = await client.getBooleanDetails('split', true, { targetingKey: u });
      assert.deepEqual([d.value, d.reason, d.variant], [false, 'SPLIT', 'off'], u);
    }
  });

  test('a disabled flag is false with DISABLED, even for a listed user', async () => {
    const d = await client.getBooleanDetails('killed', true, { targetingKey: 'alice' });
    assert.deepEqual([d.value, d.reason, d.variant], [false, 'DISABLED', 'off']);
  });

  test('100 % is STATIC; anonymous below 100 % is DEFAULT', async () => {
    const s = await client.getBooleanDetails('everyone', false, { targetingKey: 'zed' });
    assert.deepEqual([s.value, s.reason], [true, 'STATIC']);
    const a = await client.getBooleanDetails('split', true, {});
    assert.deepEqual([a.value, a.reason, a.variant], [false, 'DEFAULT', 'off']);
  });

  test('an unknown flag gives the code default with FLAG_NOT_FOUND', async () => {
    const d = await client.getBooleanDetails('no_such_flag', true, { targetingKey: 'alice' });
    assert.equal(d.value, true);
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'FLAG_NOT_FOUND');
    const e = await client.getBooleanDetails('no_such_flag', false, {});
    assert.equal(e.value, false);
  });

  test('asking a boolean flag for a string: the default with TYPE_MISMATCH', async () => {
    const d = await client.getStringDetails('listed', 'fallback', { targetingKey: 'alice' });
    assert.equal(d.value, 'fallback');
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'TYPE_MISMATCH');
    const n = await client.getNumberDetails('listed', 7, { targetingKey: 'alice' });
    assert.equal(n.value, 7);
    assert.equal(n.errorCode, 'TYPE_MISMATCH');
  });

  test('a provider with a bad token gets the default and an error, never a value', async () => {
    const provider = new OFREPProvider({
      baseUrl: env.server.base,
      headers: [['Authorization', 'Bearer vx_not-a-token']],
    });
    await OpenFeature.setProviderAndWait('bad-token', provider);
    const d = await OpenFeature.getClient('bad-token')
      .getBooleanDetails('everyone', false, { targetingKey: 'alice' });
    assert.equal(d.value, false);
    assert.equal(d.reason, 'ERROR');
  });
});

// ---------------------------------------------------------------- single flag

describe('POST /ofrep/v1/evaluate/flags/<key>', () => {
  test('success body: exactly key, value, reason, variant, metadata.version', async () => {
    const v = await currentVersion(env.client);
    for (const [name, user] of [['listed', 'alice'], ['listed', 'ü-user'], ['listed', 'bob'],
      ['split', SPLIT_ON[0]], ['split', SPLIT_OFF[0]], ['split', 'alice'], ['killed', 'alice'],
      ['everyone', 'x'], ['everyone', null], ['split', null]]) {
      const body = user === null ? {} : { context: { targetingKey: user } };
      const r = await one(name, body);
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers.get('content-type') || '', /^application\/json/);
      assert.deepEqual(r.json, expected(name, user, v), `${name} for ${user}`);
      assert.deepEqual(Object.keys(r.json).sort(), ['key', 'metadata', 'reason', 'value', 'variant']);
    }
  });

  test('lenient: empty body, {}, null or missing context, no targetingKey: anonymous', async () => {
    const v = await currentVersion(env.client);
    const anon = expected('split', null, v);
    const staticOn = expected('everyone', null, v);
    for (const body of ['', '  \n', '{}', '{"context":null}', '{"context":{}}',
      '{"context":{"targetingKey":null}}', '{"context":{"targetingKey":""}}',
      '{"context":{"country":"NZ","plan":{"tier":2}}}', '{"other":1}']) {
      const r = await one('split', body);
      assert.equal(r.status, 200, `${JSON.stringify(body)}: ${r.text}`);
      assert.deepEqual(r.json, anon, JSON.stringify(body));
      const s = await one('everyone', body);
      assert.deepEqual(s.json, staticOn, JSON.stringify(body));
    }
    // A body with no Content-Type at all is read the same.
    const r = await env.client.request('POST', '/ofrep/v1/evaluate/flags/listed',
      { raw: '{"context":{"targetingKey":"alice"}}' });
    assert.equal(r.json.reason, 'TARGETING_MATCH');
  });

  test('other context attributes do not change the answer', async () => {
    const a = await one('split', { context: { targetingKey: SPLIT_ON[0] } });
    const b = await one('split', { context: { targetingKey: SPLIT_ON[0], email: 'x@y', n: 3 } });
    assert.deepEqual(a.json, b.json);
  });

  test('unknown flag: 404 {key, errorCode FLAG_NOT_FOUND, errorDetails}', async () => {
    assertOfrepError(await one('nope', { context: { targetingKey: 'alice' } }), 404, 'nope',
      'FLAG_NOT_FOUND');
    assertOfrepError(await one('nope', ''), 404, 'nope', 'FLAG_NOT_FOUND');
    // The key is echoed as it was asked for, even when it could never be a flag name.
    assertOfrepError(await one('no%20such%22flag', {}), 404, 'no such"flag', 'FLAG_NOT_FOUND');
    assertOfrepError(await one('%C3%BC', {}), 404, 'ü', 'FLAG_NOT_FOUND');
  });

  test('malformed JSON: 400 PARSE_ERROR with the key', async () => {
    for (const body of ['{"context":', '{context: {}}', 'nope', '{"context":{}}x',
      '[{"context":{}}]', '"context"', '42', '{"context":{},"context":{}}']) {
      assertOfrepError(await one('listed', body), 400, 'listed', 'PARSE_ERROR');
    }
    // Even for a flag that does not exist, the body is judged first.
    assertOfrepError(await one('nope', '{'), 400, 'nope', 'PARSE_ERROR');
  });

  test('context of the wrong type, or targetingKey not a string: 400 INVALID_CONTEXT', async () => {
    for (const body of [{ context: 'alice' }, { context: [] }, { context: 42 }, { context: true },
      { context: { targetingKey: 42 } }, { context: { targetingKey: ['alice'] } },
      { context: { targetingKey: { id: 'alice' } } }, { context: { targetingKey: false } }]) {
      assertOfrepError(await one('listed', body), 400, 'listed', 'INVALID_CONTEXT');
    }
  });

  test('401 without a body: no token, unknown token, revoked token; never docs/api.md §5 JSON', async () => {
    const made = await env.admin.post('/api/tokens', { name: 'ofrep-revoked', role: 'client' });
    assert.equal(made.status, 201, made.text);
    const revoked = env.server.client(made.json.token);
    assert.equal((await ofrep(revoked, '/ofrep/v1/evaluate/flags/listed', {})).status, 200);
    assert.equal((await env.admin.del(`/api/tokens/${made.json.id}`)).status, 204);
    const deadline = Date.now() + 3000;
    while ((await ofrep(revoked, '/ofrep/v1/evaluate/flags/listed', {})).status === 200) {
      assert.ok(Date.now() < deadline, 'the revoked token still works after 3 s');
      await sleep(50);
    }
    for (const c of [env.anon, env.server.client('vx_' + 'A'.repeat(43)), revoked]) {
      for (const p of ['/ofrep/v1/evaluate/flags/listed', '/ofrep/v1/evaluate/flags']) {
        const r = await ofrep(c, p, { context: { targetingKey: 'alice' } });
        assert.equal(r.status, 401, `${p}: ${r.text}`);
        assert.equal(r.text, '', `${p}: 401 must have no body`);
        assert.match(r.headers.get('www-authenticate') || '', /^Bearer/);
      }
    }
    const basic = await ofrep(env.anon, '/ofrep/v1/evaluate/flags/listed', {},
      { Authorization: 'Basic YTpi' });
    assert.equal(basic.status, 401);
    assert.equal(basic.text, '');
  });

  test('an admin token is accepted too (no 403 on OFREP)', async () => {
    const r = await ofrep(env.admin, '/ofrep/v1/evaluate/flags/listed',
      { context: { targetingKey: 'alice' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.value, true);
  });

  test('GET on an evaluation path: 405 with Allow: POST', async () => {
    const r = await env.client.get('/ofrep/v1/evaluate/flags/listed');
    assert.equal(r.status, 405);
    assert.match(r.headers.get('allow') || '', /POST/);
  });
});

// ---------------------------------------------------------------- CORS

describe('CORS', () => {
  const preflight = (path, origin, method = 'POST') => env.anon.request('OPTIONS', path, {
    headers: {
      Origin: origin,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'authorization,content-type,if-none-match',
    },
  });

  test('preflight from an allowed origin: 204 with the methods and headers OFREP needs', async () => {
    for (const [p, m] of [['/ofrep/v1/evaluate/flags', 'POST'], ['/ofrep/v1/evaluate/flags/listed', 'POST'],
      ['/ofrep/v1/events', 'GET']]) {
      const r = await preflight(p, ORIGIN, m);
      assert.equal(r.status, 204, `${p}: ${r.text}`);
      assert.equal(r.text, '');
      assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
      assert.match(r.headers.get('access-control-allow-methods') || '', new RegExp(m));
      const allowed = (r.headers.get('access-control-allow-headers') || '').toLowerCase();
      for (const h of ['authorization', 'content-type', 'if-none-match', 'last-event-id']) {
        assert.ok(allowed.includes(h), `${p}: ${h} not in ${allowed}`);
      }
    }
  });

  test('preflight from another origin gets no CORS grant', async () => {
    const r = await preflight('/ofrep/v1/evaluate/flags', 'http://evil.example');
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  });

  test('answers to an allowed origin carry the grant and expose ETag', async () => {
    const r = await bulk({ context: { targetingKey: 'alice' } }, { Origin: ORIGIN });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(r.headers.get('access-control-expose-headers') || '', /ETag/i);
    const e = await one('nope', {}, { Origin: ORIGIN });
    assert.equal(e.status, 404);
    assert.equal(e.headers.get('access-control-allow-origin'), ORIGIN);
    const u = await ofrep(env.anon, '/ofrep/v1/evaluate/flags', {}, { Origin: ORIGIN });
    assert.equal(u.status, 401);
    assert.equal(u.headers.get('access-control-allow-origin'), ORIGIN,
      'a browser can only see the 401 with the grant');
    const other = await bulk({}, { Origin: 'http://evil.example' });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });
});

// ---------------------------------------------------------------- bulk

describe('POST /ofrep/v1/evaluate/flags', () => {
  test('every flag, sorted by name, evaluated for the context, with version and eventStreams', async () => {
    const v = await currentVersion(env.client);
    for (const user of ['alice', 'bob', SPLIT_ON[0], null]) {
      const r = await bulk(user === null ? {} : { context: { targetingKey: user } });
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers.get('content-type') || '', /^application\/json/);
      assert.deepEqual(Object.keys(r.json).sort(), ['eventStreams', 'flags', 'metadata']);
      const names = Object.keys(model).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.deepEqual(r.json.flags, names.map((n) => expected(n, user, v)), `flags for ${user}`);
      assert.deepEqual(r.json.metadata, { version: v });
    }
  });

  test('eventStreams: one SSE entry whose URL opens the change stream', async () => {
    const r = await bulk({});
    const es = r.json.eventStreams;
    assert.equal(es.length, 1);
    assert.equal(es[0].type, 'sse');
    assert.ok(Number.isInteger(es[0].inactivityDelaySec) && es[0].inactivityDelaySec > 0);
    const url = new URL(es[0].url);
    assert.equal(url.origin, env.server.base, 'url is absolute, on the host the client used');
    assert.equal(url.pathname, '/ofrep/v1/events');
    assert.equal(es[0].endpoint.requestUri, url.pathname + url.search);
    assert.doesNotMatch(es[0].url, new RegExp(env.clientToken), 'the URL never carries the token');
    const s = await openStream(es[0].url);
    try {
      assert.equal(s.status, 200);
      assert.match(s.headers.get('content-type') || '', /^text\/event-stream/);
    } finally {
      s.close();
    }
  });

  test('behind a proxy: X-Forwarded-Proto and X-Forwarded-Host make the URL', async () => {
    const r = await bulk({}, { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'flags.example.com' });
    assert.match(r.json.eventStreams[0].url, /^https:\/\/flags\.example\.com\/ofrep\/v1\/events\?key=/);
    const bad = await bulk({}, { 'X-Forwarded-Host': 'evil.example/x?', 'X-Forwarded-Proto': 'javascript' });
    assert.equal(new URL(bad.json.eventStreams[0].url).origin, env.server.base);
  });

  test('ETag covers the version and the context', async () => {
    const v = await currentVersion(env.client);
    const a = await bulk({ context: { targetingKey: 'alice' } });
    const etag = a.headers.get('etag');
    assert.match(etag, new RegExp(`^"${v}-[0-9a-f]{16}"$`));
    const again = await bulk({ context: { targetingKey: 'alice' } });
    assert.equal(again.headers.get('etag'), etag, 'same context, same ETag');
    const b = await bulk({ context: { targetingKey: 'bob' } });
    assert.notEqual(b.headers.get('etag'), etag, 'another user, another ETag');
    const c = await bulk({ context: { targetingKey: 'alice', plan: 'pro' } });
    assert.notEqual(c.headers.get('etag'), etag, 'another attribute, another ETag');
    // Canonical: key order and whitespace do not matter.
    const d1 = await bulk('{"context":{"targetingKey":"alice","plan":"pro","n":{"b":1,"a":2}}}');
    const d2 = await bulk('{ "context" : { "n": {"a":2, "b":1}, "plan":"pro", "targetingKey":"alice" } }');
    assert.equal(d1.headers.get('etag'), d2.headers.get('etag'));
    // No body, {} and {"context":{}} are the same anonymous context.
    const e1 = await bulk('');
    const e2 = await bulk({});
    const e3 = await bulk({ context: {} });
    assert.equal(e1.headers.get('etag'), e2.headers.get('etag'));
    assert.equal(e2.headers.get('etag'), e3.headers.get('etag'));
  });

  test('If-None-Match with the same context and ETag: 304 without a body (never 412)', async () => {
    const ctx = { context: { targetingKey: 'alice', plan: 'pro' } };
    const a = await bulk(ctx);
    const etag = a.headers.get('etag');
    for (const inm of [etag, `W/${etag}`, `"0-0000000000000000", ${etag}`]) {
      const r = await bulk(ctx, { 'If-None-Match': inm });
      assert.equal(r.status, 304, `${inm}: ${r.status} ${r.text}`);
      assert.equal(r.text, '');
      assert.equal(r.headers.get('etag'), etag);
    }
  });

  test('If-None-Match from another context, a stale or odd ETag: 200', async () => {
    const alice = await bulk({ context: { targetingKey: 'alice' } });
    const etag = alice.headers.get('etag');
    for (const ctx of [{ context: { targetingKey: 'bob' } }, {}, { context: { targetingKey: 'alice', x: 1 } }]) {
      const r = await bulk(ctx, { 'If-None-Match': etag });
      assert.equal(r.status, 200, JSON.stringify(ctx));
      assert.ok(Array.isArray(r.json.flags));
    }
    for (const inm of ['"1"', 'garbage', '"', `${etag.slice(0, -2)}"`]) {
      const r = await bulk({ context: { targetingKey: 'alice' } }, { 'If-None-Match': inm });
      assert.equal(r.status, 200, `${inm}: ${r.text}`);
    }
  });

  test('after a change the old ETag gets 200 with the new values', async () => {
    const ctx = { context: { targetingKey: 'bob' } };
    const before = await bulk(ctx);
    const etag = before.headers.get('etag');
    assert.equal((await bulk(ctx, { 'If-None-Match': etag })).status, 304);
    const p = await env.admin.patch('/api/flags/listed', { users: ['alice', 'bob', 'ü-user'] });
    assert.equal(p.status, 200, p.text);
    model.listed = p.json;
    const after = await bulk(ctx, { 'If-None-Match': etag });
    assert.equal(after.status, 200);
    assert.notEqual(after.headers.get('etag'), etag);
    const v = await currentVersion(env.client);
    assert.deepEqual(after.json.flags.find((f) => f.key === 'listed'), expected('listed', 'bob', v));
    assert.equal(after.json.flags.find((f) => f.key === 'listed').reason, 'TARGETING_MATCH');
    assert.equal((await bulk(ctx, { 'If-None-Match': after.headers.get('etag') })).status, 304);
  });

  test('bulk errors: 400 {errorCode, errorDetails} without key', async () => {
    for (const body of ['{', '[]', 'null', '{"context":{},"context":{}}']) {
      assertOfrepError(await bulk(body), 400, null, 'PARSE_ERROR');
    }
    for (const body of [{ context: 'x' }, { context: [] }, { context: { targetingKey: 1 } }]) {
      assertOfrepError(await bulk(body), 400, null, 'INVALID_CONTEXT');
    }
  });

  test('the query parameters an SSE-triggered re-fetch adds are accepted', async () => {
    const r = await ofrep(env.client, '/ofrep/v1/evaluate/flags?flagConfigEtag=%227%22&flagConfigLastModified=1', {});
    assert.equal(r.status, 200, r.text);
  });
});

// ---------------------------------------------------------------- SSE

describe('GET /ofrep/v1/events (SSE change stream)', () => {
  let url; // the stream URL a client token gets from the bulk answer
  const streams = [];
  const open = async (u, h) => { const s = await openStream(u, h); streams.push(s); return s; };
  let keepaliveStream;

  before(async () => {
    url = (await bulk({})).json.eventStreams[0].url;
    keepaliveStream = await open(url);
  });
  after(() => { for (const s of streams) s.close(); });

  const assertEvent = (e, version) => {
    assert.equal(e.id, String(version));
    assert.deepEqual(Object.keys(e.json).sort(), ['etag', 'lastModified', 'type']);
    assert.equal(e.json.type, 'refetchEvaluation');
    assert.equal(e.json.etag, `"${version}"`);
    assert.ok(Number.isInteger(e.json.lastModified));
    assert.ok(Math.abs(e.json.lastModified - Date.now() / 1000) < 24 * 3600, 'lastModified is Unix seconds');
  };

  test('a fresh stream: text/event-stream, no caching, a retry hint, the current version at once', async () => {
    const s = await open(url);
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type') || '', /^text\/event-stream/);
    assert.match(s.headers.get('cache-control') || '', /no-cache/);
    const v = await currentVersion(env.client);
    assertEvent(await s.next(), v);
    assert.ok(s.retry > 0, 'a retry: line');
  });

  test('an event arrives after a change, with the new version as its id', async () => {
    const s = await open(url);
    const v0 = await currentVersion(env.client);
    await s.next((e) => e.id === String(v0));
    const next = settledAt(s.next((x) => x.id === String(v0 + 1), WAKE_TOTAL_MS));
    const w = await timeWrite(async () => {
      const p = await env.admin.patch('/api/flags/split', { percentage: 60 });
      assert.equal(p.status, 200);
      model.split = p.json;
    });
    const { r: e, at } = await next;
    assertWokeBy(w, at, 'the event');
    assertEvent(e, v0 + 1);
    // The re-fetch the event asks for now brings the new value.
    const r = await bulk({ context: { targetingKey: 'x' } });
    assert.equal(r.json.metadata.version, v0 + 1);
  });

  test('several streams all get the event', async () => {
    const many = await Promise.all(Array.from({ length: 20 }, () => open(url)));
    const v0 = await currentVersion(env.client);
    await Promise.all(many.map((s) => s.next((e) => e.id === String(v0))));
    assert.equal((await env.admin.patch('/api/flags/split', { percentage: 61 })).status, 200);
    await Promise.all(many.map((s) => s.next((e) => e.id === String(v0 + 1), 2000)));
    for (const s of many) s.close();
  });

  test('Last-Event-ID equal to the current version: no event until a change', async () => {
    const v0 = await currentVersion(env.client);
    const s = await open(url, { 'Last-Event-ID': String(v0) });
    await sleep(700);
    assert.deepEqual(s.events, [], 'nothing to tell a client that is up to date');
    assert.ok(s.comments.length > 0, 'but the stream has started');
    assert.equal((await env.admin.patch('/api/flags/split', { percentage: 62 })).status, 200);
    assertEvent(await s.next(), v0 + 1);
  });

  test('Last-Event-ID older than the current version: an event at once (resume)', async () => {
    const v = await currentVersion(env.client);
    for (const id of [String(v - 1), '0']) {
      const s = await open(url, { 'Last-Event-ID': id });
      assertEvent(await s.next(() => true, 1500), v);
      s.close();
    }
    // An id that is not ours is treated as none.
    const s = await open(url, { 'Last-Event-ID': 'evt-abc' });
    assertEvent(await s.next(), v);
  });

  test('Authorization: Bearer works instead of the key', async () => {
    const s = await open(env.server.base + '/ofrep/v1/events', { Authorization: `Bearer ${env.clientToken}` });
    assert.equal(s.status, 200);
    assertEvent(await s.next(), await currentVersion(env.client));
  });

  test('without a token or with a wrong key: 401 without a body', async () => {
    const base = env.server.base + '/ofrep/v1/events';
    for (const [u, h] of [[base, {}], [base + '?key=nope', {}], [base + '?key=' + 'A'.repeat(43), {}],
      [base, { Authorization: 'Bearer vx_bad' }], [url, { Authorization: 'Bearer vx_bad' }]]) {
      const s = await open(u, h);
      assert.equal(s.status, 401, `${u} ${JSON.stringify(h)}`);
      assert.equal(s.text, '');
    }
  });

  test('each token has its own key; a revoked token\'s key stops working and its stream ends', async () => {
    const made = await env.admin.post('/api/tokens', { name: 'sse-revoked', role: 'client' });
    const c = env.server.client(made.json.token);
    const r = await ofrep(c, '/ofrep/v1/evaluate/flags', {});
    const myUrl = r.json.eventStreams[0].url;
    assert.notEqual(myUrl, url);
    const s = await open(myUrl);
    const v0 = await currentVersion(env.client);
    await s.next((e) => e.id === String(v0));
    assert.equal((await env.admin.del(`/api/tokens/${made.json.id}`)).status, 204);
    const deadline = Date.now() + 3000;
    while ((await open(myUrl)).status === 200) {
      assert.ok(Date.now() < deadline, 'the revoked token\'s key still opens streams');
      await sleep(50);
    }
    // The open stream is ended at its next wake-up instead of telling the change.
    assert.equal((await env.admin.patch('/api/flags/split', { percentage: 63 })).status, 200);
    await s.closed(3000);
    assert.equal(s.events.filter((e) => e.id === String(v0 + 1)).length, 0);
  });

  test('held streams show in vexil_longpoll_held', async () => {
    const ss = await Promise.all(Array.from({ length: 5 }, () => open(url)));
    await Promise.all(ss.map((s) => s.next()));
    assert.ok(await held() >= 5);
    for (const s of ss) s.close();
  });

  test('idle streams cost no CPU: 50 streams for 3 s use well under 0.3 s of CPU', async () => {
    const ss = await Promise.all(Array.from({ length: 50 }, () => open(url)));
    await Promise.all(ss.map((s) => s.next()));
    await sleep(200);
    const t0 = cpuSeconds(env.server.proc.pid);
    await sleep(3000);
    const used = cpuSeconds(env.server.proc.pid) - t0;
    assert.ok(used < 0.3, `the server used ${used.toFixed(2)} s of CPU with 50 idle streams`);
    for (const s of ss) assert.equal(s.ended, false);
    for (const s of ss) s.close();
  });

  test('a keep-alive comment comes after 15 s of silence', async () => {
    // Every event resets the keep-alive, so count from the stream's last bytes.
    const s = keepaliveStream;
    const deadline = Date.now() + 20000;
    while (!s.comments.includes('keep-alive') && !s.ended) {
      assert.ok(Date.now() < deadline, `no keep-alive: ${JSON.stringify(s.comments)}`);
      const quiet = Date.now() - s.lastDataAt;
      assert.ok(quiet < 17000, `${quiet} ms of silence without a keep-alive`);
      await sleep(100);
    }
    assert.equal(s.ended, false);
    const gap = s.commentGaps[s.comments.indexOf('keep-alive')];
    assert.ok(gap > 14000 && gap < 17000, `keep-alive after ${gap} ms of silence`);
  });
});

async function held() {
  const r = await env.anon.get('/metrics');
  const m = r.text.match(/^vexil_longpoll_held (\d+)/m);
  assert.ok(m, 'vexil_longpoll_held in /metrics');
  return Number(m[1]);
}

/** User + system CPU seconds of a process, from /proc/<pid>/stat. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

// ---------------------------------------------------------------- limits and SIGTERM

describe('streams on a small instance (--max-waiters 3)', () => {
  let small;
  before(async () => {
    small = await startEnv({ args: ['--max-waiters', '3'] });
  });
  after(async () => {
    await small?.close();
  });

  test('streams count against --max-waiters; beyond it 503; a closed one frees its slot at the next wake-up', async () => {
    const c = small.client;
    const url = (await ofrep(c, '/ofrep/v1/evaluate/flags', {})).json.eventStreams[0].url;
    const ss = [];
    try {
      await capTest(c, url, ss);
    } finally {
      for (const s of ss) s.close();
      await sleep(100);
      await createFlag(small.admin, { name: 'poke2' }); // reaps them
    }
  });

  /* The body of the test above; every stream it opens goes into ss, which
   * the caller closes whatever happens, so a failure here cannot leave the
   * small instance's slots taken for the next test. */
  async function capTest(c, url, ss) {
    for (let i = 0; i < 3; i++) {
      const s = await openStream(url);
      assert.equal(s.status, 200);
      await s.next();
      ss.push(s);
    }
    const over = await openStream(url);
    assert.equal(over.status, 503);
    assert.ok(over.headers.get('retry-after'));
    // Long-polls share the cap.
    const v = await currentVersion(c);
    const lp = await c.get('/flags?wait=1', { headers: { 'If-None-Match': `"${v}"` } });
    assert.equal(lp.status, 503);
    // A suspended stream cannot see its client leave; the next wake-up (a
    // change here, the keep-alive otherwise) finds the closed socket.
    ss[0].close();
    await sleep(100);
    await createFlag(small.admin, { name: 'poke' });
    await Promise.all(ss.slice(1).map((s) => s.next((e) => e.id === String(v + 1))));
    // The closed stream is reaped by its own worker thread, which may run
    // after the others have delivered the event: wait for its slot, boundedly.
    const deadline = Date.now() + 2000;
    let again = await openStream(url);
    while (again.status === 503 && Date.now() < deadline) {
      await sleep(50);
      again = await openStream(url);
    }
    assert.equal(again.status, 200, 'the closed stream\'s slot is free within 2 s of the wake-up');
    ss.push(again);
    await again.next();
  }

  test('SIGTERM ends every open stream and exits 0 in time', async () => {
    const url = (await ofrep(small.client, '/ofrep/v1/evaluate/flags', {})).json.eventStreams[0].url;
    const ss = [];
    const deadline = Date.now() + 3000;
    while (ss.length < 3) {
      const s = await openStream(url);
      if (s.status === 200) {
        await s.next();
        ss.push(s);
      } else {
        assert.ok(Date.now() < deadline, `cannot open 3 streams: ${s.status}`);
        await sleep(100);
      }
    }
    const ms = await small.server.stop(); // asserts exit 0 and no sanitizer report
    await Promise.all(ss.map((s) => s.closed(1000)));
    assert.ok(ms < 5000, `stopped in ${ms} ms`);
    small.server.proc = null; // already stopped: close() only drops the database
  });
});
