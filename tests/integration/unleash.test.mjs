// docs/unleash.md: Unleash's own SDKs against a running vexil.
//
// The real Node server SDK (unleash-client 6.12.1) and the real frontend SDK
// (unleash-proxy-client 3.8.2, in Node with its global fetch), pointed at
// http://vexil/api/ with a vexil token, must answer exactly what vexil
// answers itself (GET /flags?user=, docs/evaluation.md): for every rule of
// the evaluation, a thousand users and the anonymous one.  Then what the
// SDKs rely on: ETag polling with 304, the streaming mode and how fast it
// learns of a change, metrics moving last_evaluated_at in the token's
// environment only, the frontend API's ETag over the context, CORS, and
// every bad token and bad metrics body.  The client specification's own
// test cases are in unleash-spec.test.mjs.
//
// Known limitation, documented (docs/unleash.md) and not tested as equal:
// the Node SDK's MurmurHash3 hashes UTF-16 code units, so a non-ASCII user
// id can get another percentage bucket there than in vexil.  Every user id
// below that reaches a percentage is ASCII; non-ASCII ids are compared only
// where nothing is hashed (listed, segment, 0 %, 100 %, off).
//
// One test fails on purpose (a server bug, left for the server's owners):
// user ids with blanks at either end are sent in a `userId IN [...]`
// constraint, whose values the Node SDK trims, so " pad" is compared as
// "pad" (see "user ids with blanks at either end").
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { InMemStorageProvider, Unleash } from 'unleash-client';
import { UnleashClient } from 'unleash-proxy-client';
import { assertError, createFlag, sleep, startEnv } from './lib/harness.mjs';
import { waitFor } from './lib/cluster.mjs';
import { openStream } from './lib/sse.mjs';

const ORIGIN = 'http://app.example';
const q = encodeURIComponent;
let env;
const tok = {}; // name -> {id, token}
let quiet; // an Unleash stream on an environment nothing changes
let quietOpened; // ms

// Every case of docs/evaluation.md's rules, in production (the default).
const SEGMENT = { name: 'team', users: ['carol', 'dave', 'u-3', 'seg,comma'] };
const FLAGS = [
  { name: 'u.off', enabled: false, percentage: 100, users: ['alice'], segments: ['team'] },
  { name: 'u.listed', enabled: true, percentage: 0, users: ['alice', 'bob', 'u-7'] },
  { name: 'u.segment', enabled: true, percentage: 0, segments: ['team'] },
  { name: 'u.zero', enabled: true, percentage: 0 },
  { name: 'u.p5', enabled: true, percentage: 5 },
  { name: 'u.p50', enabled: true, percentage: 50, users: ['alice', 'x,y'], segments: ['team'] },
  { name: 'u.p99', enabled: true, percentage: 99 },
  { name: 'u.p100', enabled: true, percentage: 100 },
  { name: 'u.comma', enabled: true, percentage: 0, users: ['x,y', 'plain', 'a,b,c'] },
  { name: 'u.blanks', enabled: true, percentage: 0, users: [' pad', 'tail ', 'in side'] },
  { name: 'u.utf8', enabled: true, percentage: 0, users: ['ü-user', '😊', 'Ünïcödé,comma'] },
  { name: 'u.flip', enabled: false, percentage: 100 }, // changed by the tests below
];
const NAMES = FLAGS.map((f) => f.name);
const EVAL_NAMES = NAMES.filter((n) => n !== 'u.blanks' && n !== 'u.flip');
// The flags whose answer hashes nothing (no percentage strictly between 0 and 100).
const UNHASHED = ['u.off', 'u.listed', 'u.segment', 'u.zero', 'u.p100', 'u.comma', 'u.utf8'];
const SPECIAL_USERS = ['alice', 'bob', 'carol', 'dave', 'Alice', 'u-3', 'u-7', 'x,y', 'x', 'y',
  'plain', 'a,b,c', 'a', 'b', 'c', 'seg,comma', 'seg', 'comma', 'in side', '42'];

/** 1000 ASCII user ids of several shapes, the same on every run. */
function generatedUsers() {
  const out = [];
  for (let i = 0; out.length < 1000; i++) {
    switch (i % 4) {
      case 0: out.push(`u-${i}`); break;
      case 1: out.push(String(100000 + i * 7919)); break;
      case 2: out.push(`user${i}@example.com`); break;
      default: out.push(`k${(i * 2654435761 >>> 0).toString(36)}_${i}`);
    }
  }
  return out;
}
const USERS = [...SPECIAL_USERS, ...generatedUsers()];

before(async () => {
  env = await startEnv({ args: ['--cors-origins', ORIGIN, '--last-evaluated-interval', '1'] });
  let r = await env.admin.post('/api/segments', SEGMENT);
  assert.equal(r.status, 201, r.text);
  for (const f of FLAGS) await createFlag(env.admin, f);
  for (const e of ['met-a', 'met-b', 'bad-met', 'quiet']) {
    r = await env.admin.post('/api/environments', { name: e });
    assert.equal(r.status, 201, r.text);
  }
  // Tokens: [name, role, environment (null: the default)].
  for (const [name, role, environment] of [['fe', 'frontend', null], ['client2', 'client', null],
    ['met-a', 'client', 'met-a'], ['met-b', 'client', 'met-b'], ['bad-met', 'client', 'bad-met'],
    ['bad-met-fe', 'frontend', 'bad-met'], ['quiet', 'client', 'quiet']]) {
    r = await env.admin.post('/api/tokens', { name, role, ...(environment ? { environment } : {}) });
    assert.equal(r.status, 201, r.text);
    tok[name] = r.json;
  }
  // met-a: u.listed on for alice, the rest as created (disabled).
  r = await env.admin.patch('/api/flags/u.listed',
    { environments: { 'met-a': { enabled: true, users: ['alice'] } } });
  assert.equal(r.status, 200, r.text);
  // Last, so that no change of the setup reaches it: a stream on an
  // environment that nothing changes, checked at the end for keep-alives.
  quietOpened = Date.now();
  quiet = await openStream(env.server.base + '/api/client/streaming',
    { Authorization: tok.quiet.token });
  assert.equal(quiet.status, 200, quiet.text);
});

const sdks = [];
after(async () => {
  for (const s of sdks) {
    try { s.destroy?.(); s.stop?.(); } catch { /* already stopped */ }
  }
  quiet?.close();
  await env?.close();
});

// ---------------------------------------------------------------- helpers

/** An unleash-client (Node) on this vexil; destroyed in after() too. */
function nodeSdk(token, opts = {}) {
  const sdk = new Unleash({
    appName: 'vexil-it',
    instanceId: `it-${sdks.length}`,
    url: env.server.base + '/api/',
    customHeaders: { Authorization: token },
    refreshInterval: 60000,
    disableMetrics: true,
    storageProvider: new InMemStorageProvider(),
    skipInstanceCountWarning: true,
    ...opts,
  });
  sdk.errors = [];
  sdk.warnings = [];
  sdk.on('error', (e) => sdk.errors.push(e));
  sdk.on('warn', (w) => sdk.warnings.push(w));
  sdks.push(sdk);
  return sdk;
}

/** Wait (at most ms) for the emitter's next `name` event whose args satisfy pred. */
function nextEvent(emitter, name, ms, pred = () => true) {
  return new Promise((resolve, reject) => {
    const on = (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      emitter.off(name, on);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`no '${name}' event within ${ms} ms`));
    }, ms);
    emitter.on(name, on);
  });
}

/** Wait for the SDK's first data from vexil (bounded). */
async function synchronized(sdk, ms = 5000) {
  if (sdk.isSynchronized()) return;
  await nextEvent(sdk, 'synchronized', ms).catch((e) => {
    throw new Error(`${e.message}; SDK errors: ${sdk.errors.map(String).join('; ')}`);
  });
}

/** Sum of vexil_http_requests_total for a route (and status, method) from /metrics. */
async function requests(route, status, method) {
  const r = await env.anon.get('/metrics');
  assert.equal(r.status, 200);
  let n = 0;
  for (const m of r.text.matchAll(/^vexil_http_requests_total\{([^}]*)\} (\d+)$/gm)) {
    const l = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (l.route === route && (status === undefined || l.status === String(status)) &&
        (method === undefined || l.method === method)) n += Number(m[2]);
  }
  return n;
}

/** The value of a metric without labels (a gauge) from /metrics. */
async function gauge(name) {
  const r = await env.anon.get('/metrics');
  const m = r.text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  assert.ok(m, `${name} not in /metrics`);
  return Number(m[1]);
}

/** Run fn over items, `width` at a time. */
async function pool(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

/** vexil's own answer for every flag for user (a client) in the client's environment. */
async function vexilFor(client, user) {
  const r = await client.get(`/flags?user=${q(user)}`);
  assert.equal(r.status, 200, `GET /flags?user=${user}: ${r.text}`);
  return r.json.flags;
}

/** vexil's answer for the anonymous user, flag by flag (GET /flags/<name>, no user). */
async function vexilAnonymous(client, names) {
  const out = {};
  for (const n of names) {
    const r = await client.get(`/flags/${q(n)}`);
    assert.equal(r.status, 200, `GET /flags/${n}: ${r.text}`);
    out[n] = r.json.on;
  }
  return out;
}

/** last_evaluated_at of name in environment e (admin answer), or null. */
async function lastEvaluated(name, e) {
  const r = await env.admin.get(`/api/flags/${q(name)}?env=${q(e)}`);
  assert.equal(r.status, 200, r.text);
  return r.json.environments[e].last_evaluated_at;
}

/** A client bound to no token, sending exactly the headers given. */
const raw = (method, path, { headers = {}, body } = {}) =>
  env.anon.request(method, path, body === undefined ? { headers } : { headers, raw: body });

/** Status of GET /api/client/streaming (the stream is closed at once). */
async function streamStatus(headers) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const r = await fetch(env.server.base + '/api/client/streaming', { headers, signal: ctl.signal });
    const status = r.status;
    let body = '';
    if (status !== 200) body = await r.text();
    ctl.abort();
    return { status, body, headers: r.headers };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- the mapping on the wire

describe('GET /api/client/features: what the SDKs are sent', () => {
  test('each rule becomes the strategies of docs/unleash.md; ETag is the environment version', async () => {
    const r = await raw('GET', '/api/client/features', { headers: { Authorization: env.clientToken } });
    assert.equal(r.status, 200, r.text);
    const version = (await env.client.get('/flags')).json.version;
    assert.equal(r.headers.get('etag'), `"${version}"`);
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    assert.ok(Array.isArray(r.json.features), r.text);
    assert.deepEqual(r.json.segments, []);
    const by = Object.fromEntries(r.json.features.map((f) => [f.name, f]));
    assert.deepEqual(Object.keys(by).sort(), [...NAMES].sort());
    const strategies = (n) => by[n].strategies.map((s) => ({
      name: s.name, parameters: s.parameters, constraints: s.constraints,
    }));
    const userIds = (n, ...ids) => ({ name: 'userWithId', parameters: { userIds: ids.join(',') }, constraints: [] });
    const inList = (...ids) => ({
      name: 'default', parameters: {},
      constraints: [{ contextName: 'userId', operator: 'IN', values: ids, caseInsensitive: false, inverted: false }],
    });
    const roll = (n, p) => ({ name: 'flexibleRollout', parameters: { rollout: String(p), stickiness: 'userId', groupId: n }, constraints: [] });
    const everyone = { name: 'default', parameters: {}, constraints: [] };
    assert.equal(by['u.off'].enabled, false);
    assert.equal(by['u.zero'].enabled, false, 'enabled but on for nobody is sent disabled');
    assert.equal(by['u.flip'].enabled, false);
    for (const n of ['u.listed', 'u.segment', 'u.p5', 'u.p50', 'u.p99', 'u.p100', 'u.comma', 'u.blanks', 'u.utf8']) {
      assert.equal(by[n].enabled, true, n);
    }
    assert.deepEqual(strategies('u.listed'), [userIds('u.listed', 'alice', 'bob', 'u-7')]);
    assert.deepEqual(strategies('u.segment'), [userIds('u.segment', 'carol', 'dave', 'u-3'), inList('seg,comma')]);
    assert.deepEqual(strategies('u.p5'), [roll('u.p5', 5)]);
    assert.deepEqual(strategies('u.p100'), [everyone]);
    assert.deepEqual(strategies('u.comma'), [userIds('u.comma', 'plain'), inList('a,b,c', 'x,y')]);
    const p50 = strategies('u.p50');
    assert.equal(p50.length, 3, JSON.stringify(p50));
    assert.equal(p50[0].name, 'userWithId');
    assert.deepEqual(p50[0].parameters.userIds.split(',').sort(), ['alice', 'carol', 'dave', 'u-3']);
    assert.deepEqual(p50[1].constraints[0].values.sort(), ['seg,comma', 'x,y']);
    assert.deepEqual(p50[2], roll('u.p50', 50));
    for (const f of r.json.features) {
      for (const s of f.strategies) {
        assert.ok(s.parameters && typeof s.parameters === 'object', `${f.name}: parameters must be an object`);
      }
    }
  });

  test('If-None-Match with the ETag: 304 without a body; bare and Bearer tokens alike', async () => {
    const a = await raw('GET', '/api/client/features', { headers: { Authorization: env.clientToken } });
    const etag = a.headers.get('etag');
    for (const auth of [env.clientToken, `Bearer ${env.clientToken}`]) {
      const r = await raw('GET', '/api/client/features',
        { headers: { Authorization: auth, 'If-None-Match': etag } });
      assert.equal(r.status, 304, r.text);
      assert.equal(r.text, '');
      assert.equal(r.headers.get('etag'), etag);
    }
    const stale = await raw('GET', '/api/client/features',
      { headers: { Authorization: env.clientToken, 'If-None-Match': '"999999"' } });
    assert.equal(stale.status, 200);
    // A change in another environment leaves this one's ETag alone.
    const r = await env.admin.patch('/api/flags/u.flip', { environments: { 'met-b': { enabled: true, percentage: 100 } } });
    assert.equal(r.status, 200, r.text);
    const still = await raw('GET', '/api/client/features',
      { headers: { Authorization: env.clientToken, 'If-None-Match': etag } });
    assert.equal(still.status, 304, 'a change in met-b moved production\'s ETag');
    const mb = await raw('GET', '/api/client/features', { headers: { Authorization: tok['met-b'].token } });
    assert.equal(mb.status, 200);
    assert.equal(mb.json.query.environment, 'met-b');
    assert.equal(mb.json.features.find((f) => f.name === 'u.flip').enabled, true);
    assert.equal(a.json.features.find((f) => f.name === 'u.flip').enabled, false);
  });
});

// ---------------------------------------------------------------- the Node SDK

describe('unleash-client (Node) against vexil', () => {
  test('every isEnabled equals vexil for every rule, 1000+ users and the anonymous one', async () => {
    const sdk = nodeSdk(env.clientToken);
    try {
      await synchronized(sdk);
      const answers = await pool(USERS, 16, (u) => vexilFor(env.client, u));
      const bad = [];
      const on = Object.fromEntries(EVAL_NAMES.map((n) => [n, 0]));
      USERS.forEach((u, i) => {
        for (const n of EVAL_NAMES) {
          const mine = answers[i][n];
          assert.equal(typeof mine, 'boolean', `vexil's answer for ${n}/${u}`);
          if (mine) on[n]++;
          const theirs = sdk.isEnabled(n, { userId: u });
          if (theirs !== mine) bad.push(`${n} for ${JSON.stringify(u)}: SDK ${theirs}, vexil ${mine}`);
        }
      });
      const anon = await vexilAnonymous(env.client, EVAL_NAMES);
      for (const n of EVAL_NAMES) {
        for (const ctx of [{}, { userId: '' }, { sessionId: '12345' }]) {
          const theirs = sdk.isEnabled(n, ctx);
          if (theirs !== anon[n]) bad.push(`${n} for ${JSON.stringify(ctx)}: SDK ${theirs}, vexil ${anon[n]}`);
        }
      }
      assert.deepEqual(bad.slice(0, 20), [], `${bad.length} disagreements`);
      // The users cover both answers wherever the rule allows both, so that a
      // wrong mapping cannot agree by accident.
      const n = USERS.length;
      assert.equal(on['u.off'], 0);
      assert.equal(on['u.zero'], 0);
      assert.equal(on['u.p100'], n);
      assert.equal(on['u.listed'], 3);
      assert.equal(on['u.segment'], 4);
      assert.equal(on['u.comma'], 3);
      assert.equal(on['u.utf8'], 0);
      assert.ok(on['u.p5'] > 20 && on['u.p5'] < 90, `u.p5 on for ${on['u.p5']} of ${n}`);
      assert.ok(on['u.p50'] > 430 && on['u.p50'] < 600, `u.p50 on for ${on['u.p50']} of ${n}`);
      assert.ok(on['u.p99'] > n - 30 && on['u.p99'] < n, `u.p99 on for ${on['u.p99']} of ${n}`);
      assert.deepEqual(anon, {
        'u.off': false, 'u.listed': false, 'u.segment': false, 'u.zero': false, 'u.p5': false,
        'u.p50': false, 'u.p99': false, 'u.p100': true, 'u.comma': false, 'u.utf8': false,
      });
      assert.equal(sdk.isEnabled('no.such.flag', { userId: 'alice' }), false);
      assert.deepEqual(sdk.errors.map(String), []);
    } finally {
      sdk.destroy();
    }
  });

  // The known limitation (docs/unleash.md): the Node SDK's MurmurHash3 hashes
  // UTF-16 code units, so for a non-ASCII id only the answers that hash
  // nothing are compared: listed and segment users, 0 %, 100 %, off.
  test('non-ASCII user ids: listed users, segments, 0 % and 100 % agree', async () => {
    const sdk = nodeSdk(env.clientToken);
    try {
      await synchronized(sdk);
      const bad = [];
      let listed = 0;
      for (const u of ['ü-user', 'u-user', '😊', '😊x', 'Ünïcödé,comma', 'Ünïcödé', 'φίλος', '你好']) {
        const mine = await vexilFor(env.client, u);
        for (const n of UNHASHED) {
          if (mine[n] && n === 'u.utf8') listed++;
          if (sdk.isEnabled(n, { userId: u }) !== mine[n]) bad.push(`${n} for ${u}: SDK ${!mine[n]}, vexil ${mine[n]}`);
        }
      }
      assert.deepEqual(bad, []);
      assert.equal(listed, 3);
    } finally {
      sdk.destroy();
    }
  });

  // The Node SDK trims every id of `userWithId` and every value of an `IN`
  // constraint (strategy.js cleanValues: values.map(v => v.trim())), so an id
  // with blanks at either end travels in a `userId REGEX` constraint
  // (docs/unleash.md): " pad" is on, an unlisted "pad" is off.
  test('user ids with blanks at either end: the SDK agrees with vexil', async () => {
    const sdk = nodeSdk(env.clientToken);
    try {
      await synchronized(sdk);
      const bad = [];
      for (const u of [' pad', 'pad', 'tail ', 'tail', 'in side', 'inside', ' ', 'x']) {
        const mine = (await vexilFor(env.client, u))['u.blanks'];
        const theirs = sdk.isEnabled('u.blanks', { userId: u });
        if (mine !== theirs) bad.push(`u.blanks for ${JSON.stringify(u)}: SDK ${theirs}, vexil ${mine}`);
      }
      assert.deepEqual(bad, []);
    } finally {
      sdk.destroy();
    }
  });

  test('polling: an unchanged poll is a 304 (unchanged), a PATCH is seen on the next poll', async () => {
    const sdk = nodeSdk(env.clientToken, { refreshInterval: 500 });
    try {
      await synchronized(sdk);
      const n304 = await requests('/api/client/features', 304, 'GET');
      await nextEvent(sdk, 'unchanged', 3000);
      // The count moves once the request is complete, which may be a moment
      // after the SDK has the answer.
      assert.ok(await waitFor(async () => await requests('/api/client/features', 304, 'GET') > n304, 2000),
        'the SDK\'s unchanged poll was not a 304 from vexil');
      const before = sdk.isEnabled('u.flip', { userId: 'zed' });
      assert.equal(before, false);
      const changed = nextEvent(sdk, 'changed', 3000, () => sdk.isEnabled('u.flip', { userId: 'zed' }));
      const r = await env.admin.patch('/api/flags/u.flip', { enabled: true });
      assert.equal(r.status, 200, r.text);
      const t0 = performance.now();
      await changed;
      const ms = Math.max(0, performance.now() - t0);
      console.log(`# polling every 500 ms: a PATCH was seen by the SDK ${ms.toFixed(0)} ms after its answer`);
      assert.ok(ms < 1500, `seen after ${ms} ms with refreshInterval 500`);
      assert.equal(sdk.isEnabled('u.flip', {}), true);
      // And unchanged again afterwards.
      await nextEvent(sdk, 'unchanged', 3000);
      assert.deepEqual(sdk.errors.map(String), []);
    } finally {
      sdk.destroy();
    }
  });

  test('streaming mode: ready from the stream, no polling, each PATCH seen within 1 s', async () => {
    // The polling SDK of the test before may have had a poll in flight when
    // it was destroyed: count from when the route has been quiet a while.
    let polls = await requests('/api/client/features');
    for (let i = 0; i < 10; i++) {
      await sleep(700);
      const now = await requests('/api/client/features');
      if (now === polls) break;
      polls = now;
    }
    const held = await gauge('vexil_longpoll_held');
    const sdk = nodeSdk(env.clientToken, {
      experimentalMode: { type: 'streaming' }, refreshInterval: 3600000,
    });
    const modes = [];
    sdk.on('mode', (m) => modes.push(m));
    const seen = []; // {t, on} at every applied stream payload
    sdk.on('changed', () => seen.push({ t: performance.now(), on: sdk.isEnabled('u.flip', { userId: 'zed' }) }));
    try {
      await synchronized(sdk);
      assert.equal(await gauge('vexil_longpoll_held'), held + 1, 'the SDK holds one stream');
      assert.equal(sdk.isEnabled('u.p100', {}), true);
      assert.equal(sdk.isEnabled('u.listed', { userId: 'bob' }), true);
      assert.equal(sdk.isEnabled('u.listed', { userId: 'zed' }), false);
      const latencies = []; // from the PATCH's answer (negative: the SDK knew first)
      const fromSend = []; // from sending the PATCH
      let state = sdk.isEnabled('u.flip', { userId: 'zed' });
      for (let i = 0; i < 4; i++) {
        state = !state;
        const from = seen.length;
        const tSend = performance.now();
        const r = await env.admin.patch('/api/flags/u.flip', { enabled: state });
        assert.equal(r.status, 200, r.text);
        const t0 = performance.now();
        const ok = await waitFor(() => seen.slice(from).find((s) => s.on === state), 3000, 5);
        assert.ok(ok, `PATCH enabled=${state} not seen by the streaming SDK within 3 s`);
        latencies.push(ok.t - t0);
        fromSend.push(ok.t - tSend);
      }
      const f = (a) => a.map((x) => x.toFixed(1)).join(', ');
      console.log(`# streaming: PATCH answer -> SDK changed: ${f(latencies)} ms; PATCH sent -> changed: ${f(fromSend)} ms`);
      for (const ms of latencies) assert.ok(ms < 1000, `a change took ${ms} ms to reach the streaming SDK`);
      assert.equal(await requests('/api/client/features'), polls,
        'the streaming SDK polled /api/client/features');
      assert.deepEqual(modes, [], 'the SDK fell back to polling');
      assert.deepEqual(sdk.errors.map(String), []);
    } finally {
      sdk.destroy();
    }
  });

  test('the stream on the wire: unleash-connected with the state, unleash-updated on change', async () => {
    const s = await openStream(env.server.base + '/api/client/streaming',
      { Authorization: `Bearer ${env.clientToken}` });
    try {
      assert.equal(s.status, 200, s.text);
      assert.match(s.headers.get('content-type') || '', /^text\/event-stream/);
      const first = await s.next(() => true, 3000);
      assert.equal(first.event, 'unleash-connected');
      const body = (await raw('GET', '/api/client/features', { headers: { Authorization: env.clientToken } })).json;
      assert.deepEqual(first.json.features, body.features);
      const v = (await env.admin.get('/api/flags/u.flip')).json.enabled;
      assert.equal((await env.admin.patch('/api/flags/u.flip', { enabled: !v })).status, 200);
      const upd = await s.next(() => true, 3000);
      assert.equal(upd.event, 'unleash-updated');
      assert.equal(upd.json.features.find((f) => f.name === 'u.flip').enabled, !v);
    } finally {
      s.close();
    }
  });

  test('a revoked token\'s stream ends', async () => {
    const made = await env.admin.post('/api/tokens', { name: 'stream-revoked', role: 'client' });
    assert.equal(made.status, 201, made.text);
    const s = await openStream(env.server.base + '/api/client/streaming', { Authorization: made.json.token });
    try {
      assert.equal(s.status, 200, s.text);
      assert.equal((await s.next(() => true, 3000)).event, 'unleash-connected');
      assert.equal((await env.admin.del(`/api/tokens/${made.json.id}`)).status, 204);
      await s.closed(3000);
      const again = await streamStatus({ Authorization: made.json.token });
      assert.equal(again.status, 401);
    } finally {
      s.close();
    }
  });

  test('metrics: register and metrics 202; last_evaluated_at moves in the token\'s environment only', async () => {
    for (const [n, e] of [['u.listed', 'met-a'], ['u.zero', 'met-a'], ['u.p100', 'met-a'],
      ['u.listed', 'met-b'], ['u.zero', 'met-b']]) {
      assert.equal(await lastEvaluated(n, e), null, `${n} in ${e} before`);
    }
    // ('registered' and 'sent' are emitted on a 2xx only; the exact 202 is
    // checked on the wire under "bad input".)
    const sdk = nodeSdk(tok['met-a'].token, { disableMetrics: false, metricsInterval: 1000 });
    try {
      const registered = nextEvent(sdk, 'registered', 5000);
      await synchronized(sdk);
      await registered;
      const t0 = Date.now();
      assert.equal(sdk.isEnabled('u.listed', { userId: 'alice' }), true, 'met-a: u.listed is on for alice');
      assert.equal(sdk.isEnabled('u.listed', { userId: 'bob' }), false);
      assert.equal(sdk.isEnabled('u.zero', { userId: 'bob' }), false); // a "no" counts as well
      assert.equal(sdk.isEnabled('no.such.flag', { userId: 'bob' }), false); // sent, ignored
      await nextEvent(sdk, 'sent', 5000);
      let listed;
      let zero;
      const ok = await waitFor(async () => {
        listed = await lastEvaluated('u.listed', 'met-a');
        zero = await lastEvaluated('u.zero', 'met-a');
        return listed !== null && zero !== null;
      }, 5000, 100);
      assert.ok(ok, `met-a last_evaluated_at after the SDK's metrics: u.listed ${listed}, u.zero ${zero}`);
      for (const t of [listed, zero]) {
        assert.ok(Date.parse(t) >= t0 - 1000 && Date.parse(t) <= Date.now() + 1000, `last_evaluated_at ${t}`);
      }
      assert.equal(await lastEvaluated('u.p100', 'met-a'), null, 'u.p100 was not evaluated');
      assert.equal(await lastEvaluated('u.listed', 'met-b'), null, 'met-b was not evaluated');
      assert.equal(await lastEvaluated('u.zero', 'met-b'), null, 'met-b was not evaluated');
      assert.deepEqual(sdk.errors.map(String), []);
    } finally {
      sdk.destroy();
    }
  });
});

// ---------------------------------------------------------------- the frontend SDK

describe('unleash-proxy-client (frontend SDK) in Node', () => {
  const CONTEXTS = [
    { userId: 'carol' }, // in the segment
    { userId: 'bob' }, // listed
    { userId: 'x,y' }, // listed, with a comma
    { userId: 'alice' },
    {}, // anonymous
    ...generatedUsers().slice(0, 12).map((u) => ({ userId: u })), // in and out of the percentages
  ];
  const fe = () => env.server.client(tok.fe.token);

  /** A frontend SDK whose every request is recorded in .log ({method, url, status, inm}). */
  function frontendSdk(opts = {}) {
    const log = [];
    const recFetch = async (url, init = {}) => {
      const r = await fetch(url, init);
      log.push({ method: init.method || 'GET', url: String(url), status: r.status, inm: init.headers?.['if-none-match'] });
      return r;
    };
    const c = new UnleashClient({
      url: env.server.base + '/api/frontend',
      clientKey: tok.fe.token,
      appName: 'vexil-fe',
      refreshInterval: 1,
      disableMetrics: true,
      fetch: recFetch,
      ...opts,
    });
    c.log = log;
    c.errors = [];
    c.on('error', (e) => c.errors.push(e));
    sdks.push(c);
    return c;
  }

  async function compare(c, ctx) {
    const mine = ctx.userId ? await vexilFor(fe(), ctx.userId) : await vexilAnonymous(fe(), NAMES);
    const bad = [];
    for (const n of NAMES) {
      if (c.isEnabled(n) !== mine[n]) bad.push(`${n} for ${JSON.stringify(ctx)}: SDK ${c.isEnabled(n)}, vexil ${mine[n]}`);
    }
    return { bad, on: NAMES.filter((n) => mine[n]) };
  }

  for (const post of [false, true]) {
    test(`${post ? 'POST' : 'GET'} mode: isEnabled equals vexil for every context; a change seen on the next refresh; 304`, async () => {
      const c = frontendSdk({ usePOSTrequests: post, context: CONTEXTS[0] });
      try {
        await c.start();
        assert.ok(c.isReady(), `not ready: ${JSON.stringify(c.errors)}`);
        const bad = [];
        const onSets = new Set();
        for (const ctx of CONTEXTS) {
          await c.updateContext(ctx);
          const r = await compare(c, ctx);
          bad.push(...r.bad);
          onSets.add(r.on.join(','));
        }
        assert.deepEqual(bad, []);
        assert.ok(onSets.size >= 5, `the contexts should see several different sets of flags: ${[...onSets].join(' | ')}`);
        for (const l of c.log) {
          assert.equal(l.method, post ? 'POST' : 'GET');
          assert.equal(l.url.split('?')[0], env.server.base + '/api/frontend');
        }
        // An unchanged refresh is a 304 (If-None-Match sent).
        await c.updateContext({ userId: 'bob' });
        const from = c.log.length;
        assert.ok(await waitFor(() => c.log.slice(from).find((l) => l.status === 304 && l.inm), 3000, 20),
          `no 304 within 3 s: ${JSON.stringify(c.log.slice(from))}`);
        // A change is seen on the next refresh (every second).
        const state = !c.isEnabled('u.flip');
        const r = await env.admin.patch('/api/flags/u.flip', { enabled: state, percentage: 100 });
        assert.equal(r.status, 200, r.text);
        const t0 = performance.now();
        assert.ok(await waitFor(() => c.isEnabled('u.flip') === state, 2500, 10),
          'the frontend SDK did not see the change within 2.5 s');
        console.log(`# frontend SDK (${post ? 'POST' : 'GET'}, refresh 1 s): change seen after ${(performance.now() - t0).toFixed(0)} ms`);
        assert.deepEqual(c.errors, []);
      } finally {
        c.stop();
      }
    });
  }

  test('its metrics: POST /api/frontend/client/metrics is 202', async () => {
    const c = frontendSdk({ disableMetrics: false, metricsInterval: 1, metricsIntervalInitial: 1, refreshInterval: 30 });
    try {
      await c.start();
      c.isEnabled('u.p100');
      c.isEnabled('no.such.flag');
      assert.ok(await waitFor(() => c.log.find((l) => l.url.endsWith('/api/frontend/client/metrics')), 4000, 20),
        'no metrics sent within 4 s');
      const m = c.log.find((l) => l.url.endsWith('/api/frontend/client/metrics'));
      assert.equal(m.method, 'POST');
      assert.equal(m.status, 202);
    } finally {
      c.stop();
    }
  });

  test('GET/POST /api/frontend on the wire: body, ETag over the context, 304, client token too', async () => {
    const get = (user, h = {}) => raw('GET', `/api/frontend${user === null ? '' : `?userId=${q(user)}&sessionId=1&appName=x`}`,
      { headers: { Authorization: tok.fe.token, ...h } });
    const post = (ctx, h = {}) => raw('POST', '/api/frontend',
      { headers: { Authorization: tok.fe.token, 'Content-Type': 'application/json', ...h }, body: JSON.stringify({ context: ctx }) });
    const a = await get('alice');
    assert.equal(a.status, 200, a.text);
    const mine = await vexilFor(fe(), 'alice');
    assert.deepEqual(a.json, {
      toggles: NAMES.filter((n) => mine[n]).sort().map((name) => ({
        name, enabled: true, impressionData: false,
        variant: { name: 'disabled', enabled: false, feature_enabled: true },
      })),
    });
    const b = await get('bob');
    const anon = await get(null);
    const ea = a.headers.get('etag');
    assert.ok(ea, 'no ETag');
    assert.notEqual(b.headers.get('etag'), ea, 'the ETag must cover the user');
    assert.notEqual(anon.headers.get('etag'), ea);
    assert.equal((await get('alice', { 'If-None-Match': ea })).status, 304);
    assert.equal((await get('bob', { 'If-None-Match': ea })).status, 200);
    const pa = await post({ userId: 'alice', sessionId: '7' }, { 'If-None-Match': ea });
    assert.equal(pa.status, 304, pa.text);
    assert.equal((await post({ userId: 'bob' }, { 'If-None-Match': ea })).status, 200);
    assert.deepEqual((await post({ userId: 'alice' })).json, a.json);
    // Bearer works too, and a client token may ask.
    assert.deepEqual((await get('alice', { Authorization: `Bearer ${tok.fe.token}` })).json, a.json);
    assert.deepEqual((await get('alice', { Authorization: env.clientToken })).json, a.json);
    // A change moves the ETag.
    const v = (await env.admin.get('/api/flags/u.flip')).json.enabled;
    assert.equal((await env.admin.patch('/api/flags/u.flip', { enabled: !v })).status, 200);
    const after = await get('alice', { 'If-None-Match': ea });
    assert.equal(after.status, 200);
    assert.notEqual(after.headers.get('etag'), ea);
  });

  test('CORS: the preflight allows the Unleash SDK headers, answers expose ETag', async () => {
    const want = ['authorization', 'content-type', 'if-none-match', 'unleash-appname',
      'unleash-connection-id', 'unleash-sdk', 'unleash-instanceid'];
    for (const [p, m] of [['/api/frontend', 'GET'], ['/api/frontend', 'POST'],
      ['/api/frontend/client/metrics', 'POST']]) {
      const r = await raw('OPTIONS', p, {
        headers: { Origin: ORIGIN, 'Access-Control-Request-Method': m, 'Access-Control-Request-Headers': want.join(',') },
      });
      assert.ok(r.status === 204 || r.status === 200, `${m} ${p} preflight: ${r.status} ${r.text}`);
      assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN, p);
      assert.match(r.headers.get('access-control-allow-methods') || '', new RegExp(m), p);
      const allowed = (r.headers.get('access-control-allow-headers') || '').toLowerCase().split(/\s*,\s*/);
      for (const h of want) assert.ok(allowed.includes(h), `${p}: ${h} not in ${allowed}`);
    }
    const r = await raw('GET', '/api/frontend?userId=alice', { headers: { Authorization: tok.fe.token, Origin: ORIGIN } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(r.headers.get('access-control-expose-headers') || '', /(^|,\s*)etag(\s*,|$)/i);
    const other = await raw('GET', '/api/frontend?userId=alice', { headers: { Authorization: tok.fe.token, Origin: 'http://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });
});

// ---------------------------------------------------------------- bad input

describe('bad input', () => {
  const METRICS = JSON.stringify({ appName: 'x', instanceId: 'y', bucket: { start: new Date().toISOString(), stop: new Date().toISOString(), toggles: {} } });
  const ROUTES = [
    ['GET', '/api/client/features', 'client'],
    ['GET', '/api/client/streaming', 'client'],
    ['POST', '/api/client/register', 'client', JSON.stringify({ appName: 'x', instanceId: 'y', strategies: ['default'], started: new Date().toISOString(), interval: 1000 })],
    ['POST', '/api/client/metrics', 'client', METRICS],
    ['GET', '/api/frontend?userId=alice', 'frontend'],
    ['POST', '/api/frontend', 'frontend', JSON.stringify({ context: { userId: 'alice' } })],
    ['POST', '/api/frontend/client/metrics', 'frontend', METRICS],
    ['POST', '/api/frontend/client/register', 'frontend', JSON.stringify({ appName: 'x' })],
  ];
  const call = async (method, path, auth, body) => {
    const headers = auth === undefined ? {} : { Authorization: auth };
    if (path === '/api/client/streaming') return streamStatus(headers);
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return raw(method, path, { headers, body });
  };

  test('a missing, unknown or revoked token: 401 on every Unleash route', async () => {
    const made = await env.admin.post('/api/tokens', { name: 'revoked-401', role: 'client' });
    assert.equal(made.status, 201);
    assert.equal((await env.admin.del(`/api/tokens/${made.json.id}`)).status, 204);
    const unknown = 'vx_' + 'A'.repeat(43);
    for (const [method, path, , body] of ROUTES) {
      for (const auth of [undefined, '', unknown, `Bearer ${unknown}`, 'Bearer', made.json.token,
        `Bearer ${made.json.token}`, `${env.clientToken}x`, `Basic ${Buffer.from('a:b').toString('base64')}`]) {
        const r = await call(method, path, auth, body);
        assert.equal(r.status, 401, `${method} ${path} with Authorization ${JSON.stringify(auth)}: ${r.status} ${r.text ?? r.body}`);
        if (r.json) assertError(r, 401, 'unauthorized');
      }
    }
  });

  test('bare and Bearer tokens are both accepted on every Unleash route', async () => {
    for (const [method, path, role, body] of ROUTES) {
      const secret = role === 'client' ? env.clientToken : tok.fe.token;
      for (const auth of [secret, `Bearer ${secret}`, `bearer ${secret}`]) {
        const r = await call(method, path, auth, body);
        const want = method === 'GET' || path === '/api/frontend' ? 200 : 202;
        assert.equal(r.status, want, `${method} ${path} with ${auth.split(' ').length > 1 ? auth.split(' ')[0] : 'bare'}: ${r.text ?? r.body}`);
      }
    }
  });

  test('a frontend token on /api/client/features and /api/client/streaming: 403', async () => {
    for (const auth of [tok.fe.token, `Bearer ${tok.fe.token}`]) {
      const f = await raw('GET', '/api/client/features', { headers: { Authorization: auth } });
      assertError(f, 403, 'forbidden');
      const s = await streamStatus({ Authorization: auth });
      assert.equal(s.status, 403, s.body);
    }
  });

  test('malformed metrics bodies: 400, and nothing is stored', async () => {
    const t = (toggles) => JSON.stringify({ appName: 'x', bucket: { start: new Date().toISOString(), stop: new Date().toISOString(), toggles } });
    const BAD = [
      '{', 'nope', '', '[]', 'null', '"x"', '42',
      JSON.stringify({ appName: 'x' }), // no bucket
      JSON.stringify({ bucket: null }),
      JSON.stringify({ bucket: [] }),
      JSON.stringify({ bucket: { start: 'x' } }), // no toggles
      JSON.stringify({ bucket: { toggles: [] } }),
      JSON.stringify({ bucket: { toggles: 'u.listed' } }),
      JSON.stringify({ bucket: { toggles: null } }),
      t({ 'u.listed': { yes: -1, no: 0 } }),
      t({ 'u.listed': { yes: 1, no: -3 } }),
      t({ 'u.listed': { yes: 1.5, no: 0 } }),
      t({ 'u.listed': { yes: '1', no: 0 } }),
      t({ 'u.listed': { yes: 1, no: null } }),
      t({ 'u.listed': { yes: true, no: 0 } }),
      t({ 'u.listed': 3 }),
      t({ 'u.listed': [1, 0] }),
      // a good count next to a bad one: all or nothing
      t({ 'u.listed': { yes: 5, no: 0 }, 'u.zero': { yes: -1, no: 0 } }),
      t({ 'u.listed': { yes: 5, no: 0, variants: {} }, 'u.zero': { yes: 0, no: 2.5 } }),
    ];
    for (const [path, token] of [['/api/client/metrics', tok['bad-met'].token],
      ['/api/frontend/client/metrics', tok['bad-met-fe'].token]]) {
      for (const body of BAD) {
        const r = await raw('POST', path, { headers: { Authorization: token, 'Content-Type': 'application/json' }, body });
        assert.equal(r.status, 400, `POST ${path} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
        assertError(r, 400, ['invalid_value', 'invalid_json', 'bad_request']);
      }
    }
    // Unknown flags are ignored (202); good reports are the barrier: once
    // they show, everything sent before them has been written.
    const good = await raw('POST', '/api/client/metrics', {
      headers: { Authorization: tok['bad-met'].token, 'Content-Type': 'application/json' },
      body: t({ 'no.such.flag': { yes: 3, no: 1 }, 'u.p5': { yes: 0, no: 1 }, 'u.p99': { yes: 0, no: 0 } }),
    });
    assert.equal(good.status, 202, good.text);
    const goodFe = await raw('POST', '/api/frontend/client/metrics', {
      headers: { Authorization: tok['bad-met-fe'].token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ appName: 'x', instanceId: 'browser', impactMetrics: [],
        bucket: { start: new Date().toISOString(), stop: new Date().toISOString(),
          toggles: { 'u.p50': { yes: 2, no: 0, variants: { disabled: 1 } }, nope: { yes: 0, no: 1, variants: {} } } } }),
    });
    assert.equal(goodFe.status, 202, goodFe.text);
    let p5;
    let p50;
    const shown = await waitFor(async () => {
      p5 = await lastEvaluated('u.p5', 'bad-met');
      p50 = await lastEvaluated('u.p50', 'bad-met');
      return p5 !== null && p50 !== null;
    }, 5000, 100);
    assert.ok(shown, `valid reports did not show within 5 s: u.p5 ${p5} (client), u.p50 ${p50} (frontend)`);
    await sleep(1200); // one more --last-evaluated-interval
    for (const n of ['u.listed', 'u.zero', 'u.p99']) {
      assert.equal(await lastEvaluated(n, 'bad-met'), null, `${n} in bad-met after only refused reports (or a 0/0 count)`);
    }
    const r = await env.admin.get('/api/flags/no.such.flag');
    assert.equal(r.status, 404, 'a metrics report must not create a flag');
  });
});

// ---------------------------------------------------------------- keep-alives (last)

test('a stream on an environment nothing changes: one unleash-connected, then comments at least every 15 s', async () => {
  // Wait until 16.5 s have passed since the stream opened (bounded).
  await waitFor(() => quiet.comments.length >= 2 && Date.now() - quietOpened > 16500, 20000, 200);
  assert.ok(!quiet.ended, 'the quiet stream ended');
  assert.deepEqual(quiet.events.map((e) => e.event), ['unleash-connected'],
    'changes in other environments must not be pushed to this one');
  assert.ok(quiet.comments.length >= 2, `comments: ${JSON.stringify(quiet.comments)}`);
  const gaps = quiet.commentGaps;
  assert.ok(Math.max(...gaps) <= 16000, `silences before comments: ${gaps.join(', ')} ms`);
  console.log(`# quiet stream: ${quiet.comments.length} comments, silences ${gaps.join(', ')} ms`);
});
