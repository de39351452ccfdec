// docs/api.md §4 the frontend token role and the request environment of
// client and frontend tokens (their own environment, whatever ?env= says),
// §3 tokens (POST /api/tokens {name, role: "frontend", environment?} and
// `vexil token create --role frontend --environment ENV`; an unknown
// environment, or an admin token with one, is 400), §2 what a frontend token
// may read: GET /flags?user=, GET /flags/<name>, and docs/ofrep.md
// (evaluation, the change stream of its environment); GET /flags without a
// user and every /api/* route are 403, and no answer to a frontend token
// carries a user list, a segment, a description or an owner.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, SECRET, assertError, createFlag, psql, sleep, startEnv, tableCounts, vexil,
} from './lib/harness.mjs';
import { waitFor } from './lib/cluster.mjs';
import { openStream } from './lib/sse.mjs';

// Strings that only the admin API may show.
const HIDDEN = ['DESC-HIDDEN-1', 'OWNER-HIDDEN-1', 'listed-prod-hidden', 'listed-staging-hidden', 'vip_hidden_seg',
  'vip-user-hidden', 'DESC-HIDDEN-SEG'];

let env;
let fe; // frontend token of staging (API)
let feProd; // frontend token made without an environment (the default, production)
let clientStaging; // client token of staging
let feId;

before(async () => {
  env = await startEnv();
  let r = await env.admin.post('/api/environments', { name: 'staging' });
  assert.equal(r.status, 201, r.text);
  r = await env.admin.post('/api/segments', {
    name: 'vip_hidden_seg', description: 'DESC-HIDDEN-SEG', users: ['vip-member', 'vip-user-hidden'],
  });
  assert.equal(r.status, 201, r.text);
  await createFlag(env.admin, {
    name: 'fe_flag', description: 'DESC-HIDDEN-1', owner: 'OWNER-HIDDEN-1',
    enabled: true, percentage: 100, users: ['listed-prod-hidden'],
    environments: {
      staging: {
        enabled: true, percentage: 0, users: ['listed-staging-hidden', 'listed-probe'], segments: ['vip_hidden_seg'],
      },
    },
  });
  await createFlag(env.admin, { name: 'fe_off', description: 'DESC-HIDDEN-1', owner: 'OWNER-HIDDEN-1' });
  r = await env.admin.post('/api/tokens', { name: 'fe-staging', role: 'frontend', environment: 'staging' });
  assert.equal(r.status, 201, r.text);
  fe = env.server.client(r.json.token);
  feId = r.json.id;
  r = await env.admin.post('/api/tokens', { name: 'fe-default', role: 'frontend' });
  assert.equal(r.status, 201, r.text);
  feProd = env.server.client(r.json.token);
  r = await env.admin.post('/api/tokens', { name: 'client-staging', role: 'client', environment: 'staging' });
  assert.equal(r.status, 201, r.text);
  clientStaging = env.server.client(r.json.token);
});
after(async () => {
  await env?.close();
});

// ---------------------------------------------------------------- helpers

async function version(e) {
  const r = await env.admin.get(`/flags?env=${e}`);
  assert.equal(r.status, 200, r.text);
  return r.json.version;
}

async function tokenListed(name) {
  const r = await env.admin.get('/api/tokens');
  assert.equal(r.status, 200, r.text);
  return r.json.tokens.find((t) => t.name === name);
}

function ofrep(client, path, body) {
  return client.request('POST', path, {
    raw: body === undefined ? undefined : JSON.stringify(body), headers: { 'Content-Type': 'application/json' },
  });
}

/** Assert that an answer to a frontend token shows none of the hidden strings. */
function assertNothingHidden(r, what) {
  for (const s of HIDDEN) assert.ok(!r.text.includes(s), `${what} shows '${s}': ${r.text.slice(0, 400)}`);
}

async function everything() {
  return {
    counts: await tableCounts(env.db.url),
    tokens: await psql(env.db.url, 'SELECT id, name, role, environment, revoked_at IS NULL FROM tokens ORDER BY id'),
    states: await psql(env.db.url, 'SELECT * FROM flag_states ORDER BY flag, environment'),
    flags: await psql(env.db.url, 'SELECT name, description, owner, revision FROM flags ORDER BY name'),
    segments: await psql(env.db.url, 'SELECT name, description, users, revision FROM segments ORDER BY name'),
    envs: await psql(env.db.url, 'SELECT name, description, is_default, version FROM environments ORDER BY id'),
  };
}

async function assertUnchanged(snap, what) {
  const now = await everything();
  for (const k of Object.keys(snap)) assert.deepEqual(now[k], snap[k], `${what}: ${k} changed`);
}


// ---------------------------------------------------------------- §3 making frontend tokens

describe('making frontend tokens', () => {
  // docs/api.md §3: the answer says the token's environment and when it was
  // made, besides the secret shown only here.
  test('POST /api/tokens {role: "frontend", environment}: 201 {id, name, role, environment, token, created_at}', async () => {
    const t0 = Date.now();
    const r = await env.admin.post('/api/tokens', { name: 'fe-shape', role: 'frontend', environment: 'staging' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.role, 'frontend');
    assert.match(r.json.token, SECRET);
    assert.deepEqual(Object.keys(r.json).sort(), ['created_at', 'environment', 'id', 'name', 'role', 'token'],
      `POST /api/tokens answered ${r.text.replace(/vx_[A-Za-z0-9_-]+/, 'vx_…')}`);
    assert.equal(r.json.environment, 'staging');
    assert.match(r.json.created_at, RFC3339_MS);
    assert.ok(Math.abs(Date.parse(r.json.created_at) - t0) < 5000);
  });

  test('the token list shows each token\'s role and environment; without one, a frontend token gets the default', async () => {
    const a = await tokenListed('fe-staging');
    assert.equal(a.role, 'frontend');
    assert.equal(a.environment, 'staging');
    const d = await tokenListed('fe-default');
    assert.equal(d.role, 'frontend');
    assert.equal(d.environment, 'production');
    assert.equal((await tokenListed('client-staging')).environment, 'staging');
    assert.equal(await psql(env.db.url, `SELECT role || '/' || environment FROM tokens WHERE name = 'fe-staging'`),
      'frontend/staging');
  });

  test('vexil token create --role frontend --environment staging prints a secret that reads staging', async () => {
    const r = await vexil(['token', 'create', '--name', 'fe-cli', '--role', 'frontend', '--environment', 'staging',
      '--database', env.db.url]);
    assert.equal(r.code, 0, r.stderr);
    const secret = r.stdout.trim();
    assert.match(secret, SECRET, 'the secret alone on stdout');
    const listed = await tokenListed('fe-cli');
    assert.equal(listed.role, 'frontend');
    assert.equal(listed.environment, 'staging');
    const c = env.server.client(secret);
    assert.ok(await waitFor(async () => (await c.get('/flags?user=u')).status === 200, 1000),
      'a token made by the CLI works within a second');
    const g = await c.get('/flags?user=listed-probe');
    assert.deepEqual(g.json, { version: await version('staging'), user: 'listed-probe', flags: { fe_flag: true, fe_off: false } });
    assertError(await c.get('/flags'), 403, 'forbidden');
    assertError(await c.get('/api/flags'), 403, 'forbidden');
  });

  test('the CLI refuses an admin token with an environment, and an unknown environment; nothing is made', async () => {
    const snap = await everything();
    for (const args of [['--role', 'admin', '--environment', 'staging'], ['--role', 'frontend', '--environment', 'nope'],
      ['--role', 'client', '--environment', 'nope'], ['--role', 'frontend', '--environment', 'Bad Name']]) {
      const r = await vexil(['token', 'create', '--name', 'cli-refused', ...args, '--database', env.db.url]);
      assert.notEqual(r.code, 0, `${args.join(' ')}: exit 0, stdout ${r.stdout}`);
      assert.equal(r.stdout, '', 'no secret printed');
      assert.ok(r.stderr.length > 0, 'a message on stderr');
    }
    await assertUnchanged(snap, 'CLI refusals');
  });

  test('POST /api/tokens: an unknown environment is 400, an admin token with an environment is 400; nothing is made', async () => {
    const snap = await everything();
    for (const body of [
      { name: 'x', role: 'frontend', environment: 'nope' },
      { name: 'x', role: 'client', environment: 'nope' },
      { name: 'x', role: 'admin', environment: 'staging' },
      { name: 'x', role: 'admin', environment: 'production' },
      { name: 'x', role: 'frontend', environment: 5 },
      { name: 'x', role: 'frontend', environment: '' },
    ]) {
      const r = await env.admin.post('/api/tokens', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assertError(r, 400, ['invalid_value', 'bad_request']);
    }
    await assertUnchanged(snap, 'refused token creates');
  });

  test('an admin token with environment null is made, and has no environment', async () => {
    const r = await env.admin.post('/api/tokens', { name: 'admin-null-env', role: 'admin', environment: null });
    assert.equal(r.status, 201, r.text);
    assert.equal(await psql(env.db.url, `SELECT environment IS NULL FROM tokens WHERE name = 'admin-null-env'`), 't');
    assert.equal((await env.server.client(r.json.token).get('/api/flags')).status, 200);
  });
});

// ---------------------------------------------------------------- §2 what a frontend token may read

describe('a frontend token evaluates in its own environment', () => {
  test('GET /flags?user=U: {version, user, flags} of its environment, with the ETag', async () => {
    const vs = await version('staging');
    for (const [user, on] of [['listed-probe', true], ['vip-member', true], ['someone', false]]) {
      const r = await fe.get(`/flags?user=${user}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { version: vs, user, flags: { fe_flag: on, fe_off: false } });
      assert.equal(r.headers.get('etag'), `"${vs}"`);
      assertNothingHidden(r, `GET /flags?user=${user}`);
    }
    const vp = await version('production');
    const p = await feProd.get('/flags?user=someone');
    assert.deepEqual(p.json, { version: vp, user: 'someone', flags: { fe_flag: true, fe_off: false } },
      'the production token reads production (100 %)');
    const c = await fe.get('/flags?user=someone', { headers: { 'If-None-Match': `"${vs}"` } });
    assert.equal(c.status, 304);
  });

  test('GET /flags/<name>, with and without a user: {name, on, version}', async () => {
    const vs = await version('staging');
    for (const [p, on] of [['/flags/fe_flag?user=vip-member', true], ['/flags/fe_flag?user=x', false],
      ['/flags/fe_flag', false], ['/flags/fe_off?user=listed-probe', false]]) {
      const r = await fe.get(p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.deepEqual(r.json, { name: p.split('/')[2].split('?')[0], on, version: vs }, p);
      assertNothingHidden(r, p);
    }
    assert.deepEqual((await feProd.get('/flags/fe_flag')).json.on, true, 'anonymous at 100 % in production');
    assertError(await fe.get('/flags/no_such_flag?user=x'), 404, 'not_found');
  });

  test('OFREP: single and bulk evaluation in its environment, segment members TARGETING_MATCH', async () => {
    const vs = await version('staging');
    const one = async (key, user) => {
      const r = await ofrep(fe, `/ofrep/v1/evaluate/flags/${key}`, user ? { context: { targetingKey: user } } : {});
      assert.equal(r.status, 200, r.text);
      assertNothingHidden(r, `OFREP ${key} ${user}`);
      return r.json;
    };
    assert.deepEqual(await one('fe_flag', 'vip-member'),
      { key: 'fe_flag', value: true, reason: 'TARGETING_MATCH', variant: 'on', metadata: { version: vs } });
    assert.deepEqual(await one('fe_flag', 'listed-probe'),
      { key: 'fe_flag', value: true, reason: 'TARGETING_MATCH', variant: 'on', metadata: { version: vs } });
    assert.deepEqual(await one('fe_flag', 'someone'),
      { key: 'fe_flag', value: false, reason: 'SPLIT', variant: 'off', metadata: { version: vs } });
    assert.deepEqual(await one('fe_off', 'vip-member'),
      { key: 'fe_off', value: false, reason: 'DISABLED', variant: 'off', metadata: { version: vs } });
    const b = await ofrep(fe, '/ofrep/v1/evaluate/flags', { context: { targetingKey: 'vip-member' } });
    assert.equal(b.status, 200, b.text);
    assertNothingHidden(b, 'OFREP bulk');
    assert.deepEqual(b.json.flags.map((f) => [f.key, f.value, f.reason]),
      [['fe_flag', true, 'TARGETING_MATCH'], ['fe_off', false, 'DISABLED']]);
    for (const f of b.json.flags) {
      assert.deepEqual(Object.keys(f).sort(), ['key', 'metadata', 'reason', 'value', 'variant'], JSON.stringify(f));
    }
    assert.deepEqual(b.json.metadata, { version: vs });
    // The production frontend token: STATIC at 100 %.
    const p = await ofrep(feProd, '/ofrep/v1/evaluate/flags/fe_flag', { context: { targetingKey: 'vip-member' } });
    assert.deepEqual([p.json.value, p.json.reason], [true, 'STATIC']);
  });

  test('?env= does not move a client or frontend token out of its environment (not even an unknown one)', async () => {
    const vs = await version('staging');
    const own = (await fe.get('/flags?user=someone')).json;
    for (const q of ['env=production', 'env=nope']) {
      const r = await fe.get(`/flags?user=someone&${q}`);
      assert.equal(r.status, 200, `${q}: ${r.text}`);
      assert.deepEqual(r.json, own, `frontend ?${q} reads staging`);
      const f = await fe.get(`/flags/fe_flag?${q}`);
      assert.deepEqual(f.json, { name: 'fe_flag', on: false, version: vs }, `frontend /flags/<name>?${q}`);
      const o = await ofrep(fe, `/ofrep/v1/evaluate/flags/fe_flag?${q}`, { context: { targetingKey: 'someone' } });
      assert.deepEqual([o.status, o.json.value, o.json.metadata.version], [200, false, vs], `OFREP ?${q}`);
      const c = await clientStaging.get(`/flags?${q}`);
      assert.equal(c.status, 200, `client ?${q}: ${c.text}`);
      assert.equal(c.json.version, vs, `client ?${q} reads staging's version`);
      assert.equal(c.headers.get('etag'), `"${vs}"`);
      const s = c.json.flags.find((x) => x.name === 'fe_flag');
      assert.deepEqual([s.enabled, s.percentage], [true, 0], `client ?${q} reads staging's state`);
    }
    // Segment users are in no client answer either (docs/api.md §7).
    const cl = await clientStaging.get('/flags');
    assert.ok(cl.text.includes('vip_hidden_seg'), 'a client token sees the segment names');
    assert.ok(!cl.text.includes('vip-user-hidden') && !cl.text.includes('vip-member'), 'but not their users');
    const prod = (await env.client.get('/flags?env=staging')).json;
    assert.equal(prod.version, await version('production'), 'and the production client token stays in production');
  });

  test('the change stream: its own environment\'s version; a production change sends nothing, a staging change an event', async () => {
    const b = await ofrep(fe, '/ofrep/v1/evaluate/flags', {});
    assert.equal(b.status, 200, b.text);
    const url = b.json.eventStreams?.[0]?.url;
    assert.ok(url, `an event stream in the bulk answer: ${b.text}`);
    const streams = [await openStream(url), await openStream(`${env.server.base}/ofrep/v1/events`,
      { Authorization: `Bearer ${fe.token}` })];
    try {
      for (const s of streams) assert.equal(s.status, 200, s.text);
      const vs = await version('staging');
      for (const s of streams) assert.equal((await s.next(() => true, 2000)).id, String(vs), 'the first event is staging\'s version');
      const pv = await version('production');
      assert.equal((await env.admin.patch('/api/flags/fe_flag', { users: ['listed-prod-hidden', 'p2'] })).status, 200);
      assert.equal(await version('production'), pv + 1);
      await sleep(700);
      for (const s of streams) {
        assert.deepEqual(s.events.filter((e) => !e.taken).map((e) => e.id), [], 'no event for a production change');
      }
      assert.equal((await env.admin.patch('/api/flags/fe_flag', { environments: { staging: { percentage: 1 } } })).status, 200);
      for (const s of streams) {
        const e = await s.next(() => true, 1500);
        assert.equal(e.id, String(vs + 1));
        assert.equal(e.json.type, 'refetchEvaluation');
        assert.ok(!e.data.includes('HIDDEN') && !e.data.includes('hidden'));
      }
    } finally {
      for (const s of streams) s.close();
      await env.admin.patch('/api/flags/fe_flag', { environments: { staging: { percentage: 0 } } });
    }
  });
});

// ---------------------------------------------------------------- §4 what a frontend token may not do

describe('a frontend token may do nothing else', () => {
  test('GET /flags without a user is 403', async () => {
    for (const [c, p] of [[fe, '/flags'], [fe, '/flags?env=staging'], [fe, '/flags?env=production'],
      [feProd, '/flags'], [fe, '/flags?wait=5']]) {
      const r = await c.get(p);
      assertError(r, 403, 'forbidden');
      assertNothingHidden(r, p);
    }
  });

  test('GET /flags without a user is 403 with If-None-Match of the current version too (not 304)', async () => {
    const vs = await version('staging');
    const r = await fe.get('/flags', { headers: { 'If-None-Match': `"${vs}"` } });
    assert.equal(r.status, 403, `GET /flags with If-None-Match: "${vs}" answered ${r.status} ${r.text}`);
    assertError(r, 403, 'forbidden');
  });

  test('GET /flags?wait=2 without a user is 403 at once, not held', async () => {
    const vs = await version('staging');
    const t0 = performance.now();
    const r = await fe.get('/flags?wait=2', { headers: { 'If-None-Match': `"${vs}"` } });
    const ms = performance.now() - t0;
    assert.equal(r.status, 403, `GET /flags?wait=2 with If-None-Match: "${vs}" answered ${r.status} after ${ms.toFixed(0)} ms`);
    assert.ok(ms < 1000, `answered after ${ms.toFixed(0)} ms`);
  });

  test('every /api/* route is 403 and changes nothing', async () => {
    const snap = await everything();
    const routes = [
      ['GET', '/api/flags'], ['POST', '/api/flags', { name: 'by_frontend' }], ['GET', '/api/flags/fe_flag'],
      ['PATCH', '/api/flags/fe_flag', { enabled: false }], ['DELETE', '/api/flags/fe_flag'],
      ['GET', '/api/flags/fe_flag/history'], ['POST', '/api/flags/fe_flag/revert', { event: 1 }],
      ['GET', '/api/stale'],
      ['GET', '/api/environments'], ['POST', '/api/environments', { name: 'by-frontend' }],
      ['PATCH', '/api/environments/staging', { default: true }], ['DELETE', '/api/environments/staging'],
      ['GET', '/api/segments'], ['POST', '/api/segments', { name: 'by_frontend' }],
      ['GET', '/api/segments/vip_hidden_seg'], ['PATCH', '/api/segments/vip_hidden_seg', { users: [] }],
      ['DELETE', '/api/segments/vip_hidden_seg'], ['GET', '/api/segments/vip_hidden_seg/history'],
      ['GET', '/api/tokens'], ['POST', '/api/tokens', { name: 'by-frontend', role: 'admin' }],
      ['DELETE', `/api/tokens/${feId}`],
    ];
    for (const client of [fe, feProd]) {
      for (const [m, p, body] of routes) {
        const r = await client.request(m, p, { body });
        assert.equal(r.status, 403, `${m} ${p}: ${r.status} ${r.text.slice(0, 200)}`);
        assertError(r, 403, 'forbidden');
        for (const s of HIDDEN.filter((h) => !p.includes(h))) {
          assert.ok(!r.text.includes(s), `${m} ${p} shows '${s}'`);
        }
      }
    }
    await assertUnchanged(snap, 'frontend on the admin API');
    assert.equal((await fe.get('/flags?user=u')).status, 200, 'and it still works');
  });

  test('a revoked frontend token gets 401 within a second', async () => {
    const r = await env.admin.post('/api/tokens', { name: 'fe-revoked', role: 'frontend', environment: 'staging' });
    assert.equal(r.status, 201, r.text);
    const c = env.server.client(r.json.token);
    assert.equal((await c.get('/flags?user=u')).status, 200);
    assert.equal((await env.admin.del(`/api/tokens/${r.json.id}`)).status, 204);
    assert.ok(await waitFor(async () => (await c.get('/flags?user=u')).status === 401, 1000));
    assertError(await c.get('/flags/fe_flag'), 401, 'unauthorized');
    assert.equal((await ofrep(c, '/ofrep/v1/evaluate/flags/fe_flag', {})).status, 401);
  });
});
