// docs/api.md §6 environments (list, create, PATCH and the default, DELETE:
// its tokens revoked, its states gone, its history kept), §4 the request
// environment (?env= for an admin token, else the default; an unknown one is
// 404), §2 each environment's own version (ETag, long-poll: a change in one
// environment wakes no waiter of another, also across two instances as
// docs/propagation.md describes), §3 admin flag objects with `environments`,
// state fields per environment in POST and PATCH, `revision` and If-Match
// across environments, history events naming the environments whose state
// they changed and a revert that restores only those parts, §5 errors: an
// error writes nothing (seen through the API and in the database).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client, RFC3339_MS, assertError, createFlag, psql, sleep, startEnv, tableCounts, vexil,
} from './lib/harness.mjs';
import {
  assertWokeBy, hold, settledAt, startServers, timeWrite, waitFor, waitHeld,
} from './lib/cluster.mjs';

const WAIT_S = 5; // the long-poll that must NOT be woken is held this long

const ENV_KEYS = ['created_at', 'default', 'description', 'name', 'version'];
const STATE_KEYS = ['enabled', 'percentage', 'rolled_out_at', 'segments', 'users'];
const DISABLED = { enabled: false, percentage: 0, users: [], segments: [], rolled_out_at: null };

// This file is about environments; when flags were last evaluated
// (last_evaluated_at, in every admin state) is usage.test.mjs's, and moves
// on its own schedule: the admin answers here are compared without it.
const stripUsage = (v) => {
  if (Array.isArray(v)) v.forEach(stripUsage);
  else if (v && typeof v === 'object') {
    delete v.last_evaluated_at;
    Object.values(v).forEach(stripUsage);
  }
};
const clientRequest = Client.prototype.request;
Client.prototype.request = async function request(method, p, o) {
  const r = await clientRequest.call(this, method, p, o);
  if (p.startsWith('/api/') && r.json !== undefined) stripUsage(r.json);
  return r;
};

let env;

before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close(); // and the servers in env.extra
});

// ---------------------------------------------------------------- helpers

const q = encodeURIComponent;

async function envList() {
  const r = await env.admin.get('/api/environments');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['environments']);
  for (const e of r.json.environments) assert.deepEqual(Object.keys(e).sort(), ENV_KEYS, JSON.stringify(e));
  return r.json.environments;
}

/** {name: version} from the list, each checked against GET /flags?env=<name> (body and ETag). */
async function versions() {
  const out = {};
  for (const e of await envList()) {
    const r = await env.admin.get(`/flags?env=${q(e.name)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.version, e.version, `GET /flags?env=${e.name} answers the environment's version`);
    assert.equal(r.headers.get('etag'), `"${e.version}"`);
    out[e.name] = e.version;
  }
  return out;
}

/** versions() after minus before, for every environment in `after`. */
function moved(before, after) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
}

async function getFlag(name, query = '') {
  const r = await env.admin.get(`/api/flags/${q(name)}${query}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const stateOf = (f) => Object.fromEntries(STATE_KEYS.map((k) => [k, f[k]]));

/** The state of flag `name` in environment e as GET /flags?env=e shows it. */
async function clientState(name, e) {
  const r = await env.admin.get(`/flags?env=${q(e)}`);
  assert.equal(r.status, 200, r.text);
  const f = r.json.flags.find((x) => x.name === name);
  assert.ok(f, `${name} in GET /flags?env=${e}`);
  return stateOf(f);
}

/** Everything an error must leave alone: row counts, every state row, the API's view. */
async function everything() {
  const flags = {};
  for (const e of await envList()) {
    const r = await env.admin.get(`/api/flags?env=${q(e.name)}`);
    assert.equal(r.status, 200, r.text);
    flags[e.name] = r.json;
  }
  return {
    counts: await tableCounts(env.db.url),
    envs: await envList(),
    flags,
    states: await psql(env.db.url, `SELECT flag, environment, enabled, percentage, users, segments,
      rolled_out_at FROM flag_states ORDER BY flag, environment`),
    envRows: await psql(env.db.url, 'SELECT name, description, is_default, version FROM environments ORDER BY id'),
    tokens: await psql(env.db.url, 'SELECT id, role, environment, revoked_at IS NULL FROM tokens ORDER BY id'),
  };
}

async function assertUnchanged(snap, what) {
  const now = await everything();
  for (const k of Object.keys(snap)) assert.deepEqual(now[k], snap[k], `${what}: ${k} changed`);
}

async function patchOk(name, body, query = '', headers = {}) {
  const r = await env.admin.patch(`/api/flags/${q(name)}${query}`, body, { headers });
  assert.equal(r.status, 200, `PATCH ${name}${query} ${JSON.stringify(body)}: ${r.text}`);
  return r.json;
}

async function newToken(name, role, environment) {
  const body = { name, role };
  if (environment !== undefined) body.environment = environment;
  const r = await env.admin.post('/api/tokens', body);
  assert.equal(r.status, 201, r.text);
  return r.json.token;
}

async function history(name) {
  const r = await env.admin.get(`/api/flags/${q(name)}/history`);
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}

/**
 * Make production the default again (after a test that moved it), so that a
 * failure there does not spread to the tests after it.  If PATCH {default:
 * true} is refused, rewriting production's row first (PATCH of its own
 * description) is tried once before giving up: the failure itself is
 * asserted where the default is moved, not here.
 */
async function restoreDefault() {
  const cur = (await envList()).find((e) => e.default);
  if (cur?.name === 'production') return;
  let r = await env.admin.patch('/api/environments/production', { default: true });
  if (r.status !== 200) {
    const p = (await envList()).find((e) => e.name === 'production');
    await env.admin.patch('/api/environments/production', { description: p.description });
    r = await env.admin.patch('/api/environments/production', { default: true });
  }
  assert.equal(r.status, 200, `could not make production the default again: ${r.text}`);
}

/** Assert p has not settled within ms (the request is really held). */
async function assertPending(p, ms, what) {
  const r = await Promise.race([p.then((v) => ({ settled: v })), sleep(ms).then(() => null)]);
  assert.equal(r, null, `${what} was answered (${r && r.settled.status}) instead of staying held`);
}

// ---------------------------------------------------------------- §6 the list, create

describe('environments: list and create', () => {
  test('a fresh database has one environment, production, the default', async () => {
    const list = await envList();
    assert.equal(list.length, 1, JSON.stringify(list));
    const [p] = list;
    assert.equal(p.name, 'production');
    assert.equal(p.default, true);
    assert.equal(p.description, '');
    assert.ok(Number.isInteger(p.version) && p.version >= 0, `version ${p.version}`);
    assert.match(p.created_at, RFC3339_MS);
    assert.equal(await psql(env.db.url, 'SELECT name, is_default FROM environments'), 'production|t');
    // The default is what an admin token reads without ?env=.
    const r = await env.admin.get('/flags');
    assert.equal(r.json.version, p.version);
    assert.equal(r.headers.get('etag'), `"${p.version}"`);
  });

  test('POST creates an environment (201) in which every existing flag starts disabled', async () => {
    const pre = await createFlag(env.admin, {
      name: 'pre', description: 'made before staging', owner: 'team-a', enabled: true, percentage: 100,
      users: ['ann'],
    });
    const t0 = Date.now();
    const r = await env.admin.post('/api/environments', { name: 'staging', description: 'pre-release' });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ENV_KEYS);
    assert.equal(r.json.name, 'staging');
    assert.equal(r.json.description, 'pre-release');
    assert.equal(r.json.default, false);
    assert.ok(Number.isInteger(r.json.version), `version ${r.json.version}`);
    assert.match(r.json.created_at, RFC3339_MS);
    assert.ok(Math.abs(Date.parse(r.json.created_at) - t0) < 5000, `created_at ${r.json.created_at} is now`);
    const list = await envList();
    assert.deepEqual(list.map((e) => e.name), ['production', 'staging'], 'creation order');
    assert.deepEqual(list[1], r.json, 'the list shows what POST answered');

    const f = await getFlag('pre');
    assert.deepEqual(Object.keys(f.environments).sort(), ['production', 'staging']);
    assert.deepEqual(f.environments.staging, DISABLED, 'disabled in the new environment');
    assert.deepEqual(f.environments.production, stateOf(pre), 'production untouched');
    assert.deepEqual(await clientState('pre', 'staging'), DISABLED);
    const u = await env.admin.get('/flags?env=staging&user=ann');
    assert.deepEqual(u.json.flags, { pre: false }, 'a listed user is off in the new environment');
    assert.deepEqual((await env.admin.get('/flags?user=ann')).json.flags, { pre: true }, 'and still on in production');
    assert.equal(await psql(env.db.url,
      `SELECT enabled, percentage, users FROM flag_states WHERE flag = 'pre' AND environment = 'staging'`), 'f|0|{}');
  });

  test('a name that is taken is 409 and changes nothing', async () => {
    const snap = await everything();
    for (const name of ['staging', 'production']) {
      assertError(await env.admin.post('/api/environments', { name, description: 'again' }), 409, 'conflict');
    }
    await assertUnchanged(snap, 'POST of a taken name');
  });

  test('names outside ^[a-z0-9][a-z0-9_-]{0,31}$ and other bad bodies are 400 and write nothing', async () => {
    const snap = await everything();
    const bad = [
      { name: '' }, { name: 'Staging' }, { name: 'QA' }, { name: '-lead' }, { name: '_lead' },
      { name: 'a'.repeat(33) }, { name: 'has space' }, { name: 'dot.ted' }, { name: 'ünï' }, { name: 'a/b' },
      { name: 'tab\t' }, { name: 42 }, { name: null }, { name: true }, { name: ['qa'] }, {},
      { description: 'no name' }, { name: 'qa', description: 5 }, { name: 'qa', description: 'x'.repeat(1001) },
    ];
    for (const body of bad) {
      const r = await env.admin.post('/api/environments', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assertError(r, 400, ['invalid_value', 'bad_request']);
    }
    assertError(await env.admin.post('/api/environments', { name: 'qa', default: true }), 400,
      ['unknown_field', 'invalid_value', 'bad_request']);
    assertError(await env.admin.post('/api/environments', { name: 'qa', colour: 'red' }), 400, 'unknown_field');
    assertError(await env.admin.request('POST', '/api/environments', { raw: '{"name":' }), 400, 'invalid_json');
    await assertUnchanged(snap, 'bad POST /api/environments');
  });

  test('the edges of the name rule are accepted: one character, 32 characters, digits, - and _', async () => {
    for (const name of ['0', 'e'.repeat(32), 'qa_1-x']) {
      const r = await env.admin.post('/api/environments', { name });
      assert.equal(r.status, 201, `${name}: ${r.text}`);
      assert.equal(r.json.name, name);
      assert.equal(r.json.description, '', 'description defaults to empty');
      assert.deepEqual((await getFlag('pre')).environments[name], DISABLED);
    }
    for (const name of ['0', 'e'.repeat(32), 'qa_1-x']) {
      const d = await env.admin.del(`/api/environments/${name}`);
      assert.equal(d.status, 204, d.text);
    }
    assert.deepEqual((await envList()).map((e) => e.name), ['production', 'staging']);
  });

  test('there is no GET of one environment (405 with Allow)', async () => {
    const r = await env.admin.get('/api/environments/staging');
    assertError(r, 405, 'method_not_allowed');
    assert.ok(!/\bGET\b/.test(r.headers.get('allow') || ''), `Allow: ${r.headers.get('allow')}`);
  });

  test('a client token cannot list or change environments (403)', async () => {
    assertError(await env.client.get('/api/environments'), 403, 'forbidden');
    assertError(await env.client.post('/api/environments', { name: 'nope' }), 403, 'forbidden');
    assertError(await env.client.patch('/api/environments/staging', { description: 'x' }), 403, 'forbidden');
    assertError(await env.client.del('/api/environments/staging'), 403, 'forbidden');
    assert.deepEqual((await envList()).map((e) => e.name), ['production', 'staging']);
  });
});

// ---------------------------------------------------------------- §6 PATCH and the default

describe('environments: PATCH and the default', () => {
  test('PATCH changes the description and answers the environment', async () => {
    const before = (await envList()).find((e) => e.name === 'staging');
    const r = await env.admin.patch('/api/environments/staging', { description: 'the last stop before production' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ...before, description: 'the last stop before production' });
    assert.deepEqual((await envList()).find((e) => e.name === 'staging'), r.json);
  });

  test('{default: true} moves the default: admin reads and new tokens follow it; then it moves back', async () => {
    try {
      const v = await versions();
      const r = await env.admin.patch('/api/environments/staging', { default: true });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.default, true);
      const list = await envList();
      assert.deepEqual(list.map((e) => [e.name, e.default]), [['production', false], ['staging', true]],
        'exactly one default');
      assert.equal(await psql(env.db.url, 'SELECT name FROM environments WHERE is_default'), 'staging');

      // An admin token without ?env= now reads staging.
      const g = await env.admin.get('/flags');
      assert.equal(g.json.version, v.staging);
      assert.equal(g.headers.get('etag'), `"${v.staging}"`);
      assert.equal(g.json.flags.find((f) => f.name === 'pre').enabled, false, 'staging state');
      const a = await env.admin.get('/api/flags');
      assert.equal(a.json.version, v.staging);
      assert.deepEqual(stateOf(a.json.flags.find((f) => f.name === 'pre')), DISABLED);
      // A client token made without an environment belongs to the default.
      const tok = await newToken('follows-default', 'client');
      const listed = (await env.admin.get('/api/tokens')).json.tokens.find((t) => t.name === 'follows-default');
      assert.equal(listed.environment, 'staging');
      const c = env.server.client(tok);
      assert.equal((await c.get('/flags')).json.version, v.staging);
      // Top-level state fields of a PATCH without ?env= go to the default too.
      const p = await patchOk('pre', { percentage: 7 });
      assert.equal(p.environments.staging.percentage, 7);
      assert.equal(p.environments.production.percentage, 100, 'production untouched');
      assert.deepEqual(moved(v, await versions()), { production: 0, staging: 1 });

      // And back: production was the default before, staging is now.
      const back = await env.admin.patch('/api/environments/production', { default: true });
      assert.equal(back.status, 200, `PATCH /api/environments/production {"default":true}: ${back.status} ${back.text}`);
      assert.equal(back.json.default, true);
      assert.deepEqual((await envList()).map((e) => [e.name, e.default]), [['production', true], ['staging', false]]);
      assert.equal((await env.admin.get('/flags')).json.version, (await versions()).production);
      // The token keeps its environment: it was bound at creation.
      assert.equal((await c.get('/flags')).json.flags.find((f) => f.name === 'pre').percentage, 7);
    } finally {
      await restoreDefault();
      await patchOk('pre', { environments: { staging: { percentage: 0 } } });
    }
  });

  test('{default: false} and other bad bodies are 400 and change nothing', async () => {
    const snap = await everything();
    for (const [name, body, code] of [
      ['production', { default: false }, 'invalid_value'],
      ['staging', { default: false }, 'invalid_value'],
      ['staging', { default: 'yes' }, 'invalid_value'],
      ['staging', { default: null }, 'invalid_value'],
      ['staging', { description: 7 }, 'invalid_value'],
      ['staging', { name: 'renamed' }, 'unknown_field'],
      ['staging', { version: 1 }, 'unknown_field'],
    ]) {
      assertError(await env.admin.patch(`/api/environments/${name}`, body), 400, [code, 'bad_request']);
    }
    await assertUnchanged(snap, 'bad PATCH /api/environments');
  });

  test('PATCH or DELETE of an unknown environment is 404; DELETE of the default is 409', async () => {
    const snap = await everything();
    for (const p of ['/api/environments/nope', '/api/environments/Staging', '/api/environments/a%20b']) {
      assertError(await env.admin.patch(p, { description: 'x' }), 404, 'not_found');
      assertError(await env.admin.del(p), 404, 'not_found');
    }
    assertError(await env.admin.patch('/api/environments/nope', { default: true }), 404, 'not_found');
    const def = (await envList()).find((e) => e.default).name;
    assert.equal(def, 'production');
    assertError(await env.admin.del(`/api/environments/${def}`), 409, 'conflict');
    await assertUnchanged(snap, 'PATCH/DELETE refused');
  });
});

// ---------------------------------------------------------------- §6 DELETE

describe('environments: DELETE', () => {
  let toks; // {client, frontend, cli, stagingClient}: secrets
  let eventId;

  before(async () => {
    const r = await env.admin.post('/api/environments', { name: 'doomed' });
    assert.equal(r.status, 201, r.text);
    const p = await patchOk('pre', { environments: { doomed: { enabled: true, percentage: 100, users: ['dora'] } } });
    assert.equal(p.environments.doomed.enabled, true);
    eventId = (await history('pre'))[0].id;
    const cli = await vexil(['token', 'create', '--name', 'doomed-cli', '--role', 'client', '--environment', 'doomed',
      '--database', env.db.url]);
    assert.equal(cli.code, 0, cli.stderr);
    toks = {
      client: await newToken('doomed-client', 'client', 'doomed'),
      frontend: await newToken('doomed-frontend', 'frontend', 'doomed'),
      cli: cli.stdout.trim(),
      stagingClient: await newToken('staging-client', 'client', 'staging'),
    };
  });

  test('204; its client and frontend tokens get 401 within a second; other tokens keep working', async () => {
    const c = env.server.client(toks.client);
    const fe = env.server.client(toks.frontend);
    const cli = env.server.client(toks.cli);
    await waitFor(async () => (await cli.get('/flags')).status === 200, 1000);
    assert.deepEqual((await c.get('/flags?user=dora')).json.flags, { pre: true }, 'the doomed state, before');
    assert.equal((await fe.get('/flags?user=dora')).status, 200);
    assert.equal((await cli.get('/flags')).status, 200);

    // Requests held on the environment are answered 401 when it goes (docs/api.md §2).
    const vd = (await c.get('/flags')).json.version;
    const heldClient = hold(c, '/flags?wait=10', { 'If-None-Match': `"${vd}"` });
    const heldAdmin = hold(env.admin, '/flags?env=doomed&wait=10', { 'If-None-Match': `"${vd}"` });
    for (const h of [heldClient, heldAdmin]) h.catch(() => {});
    await waitHeld(env.server, 2);

    const d = await env.admin.del('/api/environments/doomed');
    assert.equal(d.status, 204, d.text);
    assert.equal(d.text, '');
    const t0 = Date.now();
    for (const [what, client, p] of [['client', c, '/flags'], ['frontend', fe, '/flags?user=dora'],
      ['CLI-made client', cli, '/flags']]) {
      const ok = await waitFor(async () => (await client.get(p)).status === 401, 1000 - (Date.now() - t0), 20);
      const r = await client.get(p);
      assert.ok(ok, `the ${what} token of a deleted environment still answers ${r.status} after a second`);
      assertError(r, 401, 'unauthorized');
    }
    // The client token is revoked with its environment (401); the admin
    // token lives on, and the environment it waited on is gone (404).
    for (const [what, h, want] of [['the doomed client token', heldClient, 401],
      ['an admin token on ?env=doomed', heldAdmin, 404]]) {
      const r = await h;
      assert.equal(r.status, want, `a long-poll of ${what} held when its environment went: ${r.status} after ${r.ms.toFixed(0)} ms ${r.text}`);
      assert.ok(r.ms < 3000, `answered ${r.ms.toFixed(0)} ms after it was sent, not at the end of wait=10`);
    }
    assert.equal((await env.server.client(toks.stagingClient).get('/flags')).status, 200, 'a staging token');
    assert.equal((await env.client.get('/flags')).status, 200, 'a production token');
    assert.equal(await psql(env.db.url,
      `SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) || '/' || count(*) FROM tokens WHERE environment = 'doomed'`),
    '3/3', 'all three tokens revoked in the database');
  });

  test('its states are gone; its history stays', async () => {
    assert.deepEqual((await envList()).map((e) => e.name), ['production', 'staging']);
    const f = await getFlag('pre');
    assert.deepEqual(Object.keys(f.environments).sort(), ['production', 'staging']);
    assert.equal(await psql(env.db.url, `SELECT count(*) FROM flag_states WHERE environment = 'doomed'`), '0');
    const ev = (await history('pre')).find((e) => e.id === eventId);
    assert.ok(ev, 'the event that changed the doomed state is still in the history');
    assert.deepEqual(ev.environments, ['doomed']);
    assert.equal(ev.after.environments.doomed.enabled, true);
    for (const p of ['/flags?env=doomed', '/api/flags?env=doomed', '/api/flags/pre?env=doomed']) {
      const r = await env.admin.get(p);
      assertError(r, 404, 'not_found');
      assert.match(r.json.error.message, /doomed/, 'the message names the environment');
    }
    assertError(await env.admin.del('/api/environments/doomed'), 404, 'not_found');
  });

  test('a new environment of the same name starts disabled again; the old tokens stay revoked', async () => {
    const r = await env.admin.post('/api/environments', { name: 'doomed' });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual((await getFlag('pre')).environments.doomed, DISABLED, 'no state came back');
    await sleep(200);
    for (const s of [toks.client, toks.frontend, toks.cli]) {
      assertError(await env.server.client(s).get('/flags?user=dora'), 401, 'unauthorized');
    }
    assert.equal((await env.admin.del('/api/environments/doomed')).status, 204);
  });
});

// ---------------------------------------------------------------- §4 the request environment, §5 errors

describe('the request environment and its errors', () => {
  before(async () => {
    await createFlag(env.admin, { name: 'req', enabled: true, percentage: 100 });
  });

  test('an unknown ?env= is 404 naming it on every client and admin flag route, and writes nothing', async () => {
    const snap = await everything();
    const routes = [
      ['GET', '/flags?env=nope'], ['GET', '/flags?env=nope&user=u'], ['GET', '/flags/req?env=nope'],
      ['GET', '/flags/req?env=nope&user=u'], ['GET', '/api/flags?env=nope'], ['GET', '/api/flags/req?env=nope'],
      ['PATCH', '/api/flags/req?env=nope', { enabled: false }],
      ['POST', '/api/flags?env=nope', { name: 'made_in_nope', enabled: true }],
    ];
    for (const [m, p, body] of routes) {
      const r = await env.admin.request(m, p, { body });
      assertError(r, 404, 'not_found');
      assert.match(r.json.error.message, /nope/, `${m} ${p}: the message names the environment`);
    }
    assertError(await env.admin.get('/api/flags/made_in_nope'), 404, 'not_found');
    await assertUnchanged(snap, 'unknown ?env=');
  });

  test('an unknown environment in a body\'s `environments` is 400 invalid_value naming it; nothing written', async () => {
    const snap = await everything();
    for (const [m, p, body] of [
      ['POST', '/api/flags', { name: 'body_env', environments: { nowhere: { enabled: true } } }],
      ['POST', '/api/flags', { name: 'body_env', enabled: true, environments: { staging: { enabled: true }, nowhere: {} } }],
      ['PATCH', '/api/flags/req', { environments: { nowhere: { enabled: false } } }],
      ['PATCH', '/api/flags/req', { description: 'x', environments: { staging: { enabled: true }, nowhere: { enabled: false } } }],
    ]) {
      const r = await env.admin.request(m, p, { body });
      assertError(r, 400, 'invalid_value');
      assert.match(r.json.error.message, /nowhere/, `${m} ${JSON.stringify(body)}: names the environment`);
    }
    await assertUnchanged(snap, 'unknown environment in a body');
  });

  test('the request environment addressed twice (top level and environments.<it>) is 400 bad_request', async () => {
    const snap = await everything();
    // Twice means both: top-level state fields and the same environment in `environments`.
    for (const [m, p, body] of [
      ['PATCH', '/api/flags/req', { enabled: false, environments: { production: { percentage: 5 } } }],
      ['PATCH', '/api/flags/req?env=production', { percentage: 1, environments: { production: { percentage: 5 } } }],
      ['PATCH', '/api/flags/req?env=staging', { enabled: true, environments: { staging: { percentage: 5 } } }],
      ['POST', '/api/flags', { name: 'twice', enabled: true, environments: { production: { enabled: false } } }],
      ['POST', '/api/flags?env=staging', { name: 'twice', percentage: 5, environments: { staging: { enabled: true } } }],
    ]) {
      const r = await env.admin.request(m, p, { body });
      assert.equal(r.status, 400, `${m} ${p} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assertError(r, 400, 'bad_request');
    }
    await assertUnchanged(snap, 'request environment twice');
  });

  test('bad names and values inside `environments` are 400; nothing written', async () => {
    const snap = await everything();
    for (const [body, code] of [
      [{ environments: { 'Bad Name': { enabled: true } } }, 'invalid_value'],
      [{ environments: { 'QA!': { enabled: true } } }, 'invalid_value'],
      [{ environments: { '': { enabled: true } } }, 'invalid_value'],
      [{ environments: { staging: { enabled: 'yes' } } }, 'invalid_value'],
      [{ environments: { staging: { percentage: 101 } } }, 'invalid_value'],
      [{ environments: { staging: { description: 'not a state field' } } }, 'unknown_field'],
      [{ environments: { staging: { rolled_out_at: null } } }, 'unknown_field'],
      [{ environments: { staging: true } }, ['invalid_value', 'bad_request']],
      [{ environments: ['staging'] }, ['invalid_value', 'bad_request']],
      [{ environments: null }, ['invalid_value', 'bad_request']],
    ]) {
      const r = await env.admin.patch('/api/flags/req', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assertError(r, 400, code);
      if (code === 'unknown_field') assert.match(r.json.error.message, /environments\.staging\./, 'named environments.<env>.<field>');
    }
    await assertUnchanged(snap, 'bad environments values');
  });

  test('OFREP with an admin token and ?env=: evaluated there, and its stream URL keeps that env=', async () => {
    await env.admin.patch('/api/flags/req?env=staging', { enabled: false });
    const ctx = { context: { targetingKey: 'u1' } };
    const prod = await env.admin.post('/ofrep/v1/evaluate/flags/req', ctx);
    const stag = await env.admin.post('/ofrep/v1/evaluate/flags/req?env=staging', ctx);
    assert.equal(prod.status, 200, prod.text);
    assert.equal(stag.status, 200, stag.text);
    assert.deepEqual([prod.json.value, stag.json.value], [true, false], 'each environment\'s state');
    const bulk = await env.admin.post('/ofrep/v1/evaluate/flags?env=staging', ctx);
    assert.equal(bulk.status, 200, bulk.text);
    assert.match(bulk.json.eventStreams[0].endpoint.requestUri, /[?&]env=staging(&|$)/);
    const plain = await env.admin.post('/ofrep/v1/evaluate/flags', ctx);
    assert.doesNotMatch(plain.json.eventStreams[0].endpoint.requestUri, /env=/, 'the default: no env=');
  });

  test('an unknown environment for a token is 400 and creates none', async () => {
    const snap = await everything();
    assertError(await env.admin.post('/api/tokens', { name: 't', role: 'client', environment: 'nope' }), 400,
      ['invalid_value', 'bad_request']);
    await assertUnchanged(snap, 'token in an unknown environment');
  });
});

// ---------------------------------------------------------------- §3 flag state per environment

describe('flag state per environment', () => {
  test('every admin flag object carries `environments` with every environment; top level = the request environment', async () => {
    const r = await env.admin.get('/api/flags');
    assert.equal(r.status, 200);
    for (const f of r.json.flags) {
      assert.deepEqual(Object.keys(f.environments).sort(), ['production', 'staging'], f.name);
      for (const [e, s] of Object.entries(f.environments)) {
        assert.deepEqual(Object.keys(s).sort(), STATE_KEYS, `${f.name}.${e}`);
      }
      assert.deepEqual(stateOf(f), f.environments.production, `${f.name}: top level is production's state`);
    }
    await patchOk('req', { environments: { staging: { enabled: true, percentage: 33, users: ['sam'] } } });
    const s = await env.admin.get('/api/flags?env=staging');
    const v = await versions();
    assert.equal(s.json.version, v.staging, '?env=staging answers staging\'s version');
    assert.equal(s.headers.get('etag'), `"${v.staging}"`);
    const f = s.json.flags.find((x) => x.name === 'req');
    assert.deepEqual(stateOf(f), f.environments.staging);
    assert.equal(f.percentage, 33);
    assert.deepEqual(f.users, ['sam']);
    assert.equal(f.environments.production.percentage, 100);
    const one = await getFlag('req', '?env=staging');
    assert.deepEqual(stateOf(one), one.environments.staging);
    assert.deepEqual(one.environments, f.environments);
  });

  test('POST: top-level state fields set the request environment, `environments` the others, the rest start disabled', async () => {
    assert.equal((await env.admin.post('/api/environments', { name: 'qa' })).status, 201);
    const f = await createFlag(env.admin, {
      name: 'split_env', enabled: true, percentage: 100, users: ['pam'],
      environments: { staging: { enabled: true, percentage: 0, users: ['sue'] } },
    });
    assert.deepEqual({ ...f.environments.production, rolled_out_at: null },
      { enabled: true, percentage: 100, users: ['pam'], segments: [], rolled_out_at: null });
    assert.match(f.environments.production.rolled_out_at, RFC3339_MS);
    assert.deepEqual(f.environments.staging, { enabled: true, percentage: 0, users: ['sue'], segments: [], rolled_out_at: null });
    assert.deepEqual(f.environments.qa, DISABLED);
    assert.deepEqual((await getFlag('split_env')).environments, f.environments, 'GET shows what POST answered');
    assert.deepEqual((await env.admin.get('/flags?user=sue')).json.flags.split_env, true, 'production is at 100 %');
    assert.deepEqual((await env.admin.get('/flags?env=staging&user=sue')).json.flags.split_env, true, 'listed in staging');
    assert.deepEqual((await env.admin.get('/flags?env=staging&user=pam')).json.flags.split_env, false, 'not listed in staging');
    assert.deepEqual((await env.admin.get('/flags?env=qa&user=pam')).json.flags.split_env, false, 'disabled in qa');

    const g = await createFlag(env.admin, { name: 'staging_only', enabled: true, percentage: 100 });
    assert.equal(g.environments.production.enabled, true);
    const r = await env.admin.post('/api/flags?env=staging', { name: 'made_for_staging', enabled: true, percentage: 50 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.enabled, true, 'the answer shows the request environment at top level');
    assert.deepEqual(stateOf(r.json), r.json.environments.staging);
    assert.deepEqual(r.json.environments.production, DISABLED);
    assert.deepEqual(r.json.environments.qa, DISABLED);
    assert.equal((await env.admin.del('/api/environments/qa')).status, 204);
  });

  test('PATCH: top-level fields go to the request environment, `environments` to the named ones, nothing else moves', async () => {
    const before = await getFlag('split_env');
    const p = await patchOk('split_env', { percentage: 40, environments: { staging: { users: ['sue', 'sid'] } } });
    assert.equal(p.environments.production.percentage, 40);
    assert.equal(p.environments.production.enabled, true);
    assert.deepEqual(p.environments.production.users, ['pam']);
    assert.deepEqual(p.environments.staging, { ...before.environments.staging, users: ['sid', 'sue'] });
    const s = await patchOk('split_env', { enabled: false }, '?env=staging');
    assert.equal(s.environments.staging.enabled, false);
    assert.equal(s.environments.production.enabled, true, 'production untouched by ?env=staging');
    assert.deepEqual(stateOf(s), s.environments.staging, 'the answer shows the request environment');
    assert.deepEqual(await clientState('split_env', 'staging'), s.environments.staging);
    assert.deepEqual(await clientState('split_env', 'production'), s.environments.production);
  });

  test('`revision` is the newest: after a staging change, an If-Match PATCH on production needs the new revision', async () => {
    const r0 = (await getFlag('split_env')).revision;
    const s = await patchOk('split_env', { environments: { staging: { percentage: 12 } } });
    assert.equal(s.revision, r0 + 1, 'a staging change is a new revision of the flag');
    const g = await env.admin.get('/api/flags/split_env');
    assert.equal(g.json.revision, r0 + 1);
    assert.equal(g.headers.get('etag'), `"${r0 + 1}"`, 'GET /api/flags/<name> ETag is the revision');
    const snap = await everything();
    assertError(await env.admin.patch('/api/flags/split_env', { percentage: 60 }, { headers: { 'If-Match': `"${r0}"` } }),
      412, 'precondition_failed');
    await assertUnchanged(snap, 'a stale If-Match');
    const ok = await patchOk('split_env', { percentage: 60 }, '', { 'If-Match': `"${r0 + 1}"` });
    assert.equal(ok.percentage, 60);
    assert.equal(ok.revision, r0 + 2);
    // ?env= does not change what revision means: one per flag.
    const gs = await env.admin.get('/api/flags/split_env?env=staging');
    assert.equal(gs.json.revision, r0 + 2);
    assert.equal((await env.admin.patch('/api/flags/split_env?env=staging', { percentage: 13 },
      { headers: { 'If-Match': `"${r0 + 2}"` } })).status, 200);
  });
});

// ---------------------------------------------------------------- §2 one version per environment

describe('each environment has its own version', () => {
  let stagingClient;
  before(async () => {
    assert.equal((await env.admin.post('/api/environments', { name: 'qa' })).status, 201);
    await createFlag(env.admin, { name: 'ver', enabled: true, percentage: 10, environments: { staging: { enabled: true } } });
    stagingClient = env.server.client(await newToken('ver-staging', 'client', 'staging'));
  });

  test('a state change in staging moves staging\'s version by one and no other', async () => {
    const v = await versions();
    const prodBody = (await env.client.get('/flags')).text;
    await patchOk('ver', { environments: { staging: { percentage: 50 } } });
    assert.deepEqual(moved(v, await versions()), { production: 0, staging: 1, qa: 0 });
    assert.equal((await env.client.get('/flags')).text, prodBody, 'production\'s clients see exactly what they saw');
    await patchOk('ver', { users: ['x1'] }, '?env=staging');
    assert.deepEqual(moved(v, await versions()), { production: 0, staging: 2, qa: 0 });
  });

  test('a state change in production moves production\'s version only', async () => {
    const v = await versions();
    await patchOk('ver', { percentage: 11 });
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 0, qa: 0 });
  });

  test('one PATCH changing two environments moves each of them once', async () => {
    const v = await versions();
    await patchOk('ver', { percentage: 12, environments: { staging: { percentage: 51 } } });
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 1, qa: 0 });
  });

  test('a definition change (description, owner), a create and a delete move every environment once', async () => {
    let v = await versions();
    await patchOk('ver', { description: 'now described' });
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 1, qa: 1 });
    v = await versions();
    await patchOk('ver', { owner: 'team-v' });
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 1, qa: 1 });
    v = await versions();
    await createFlag(env.admin, { name: 'ver_tmp' });
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 1, qa: 1 });
    v = await versions();
    assert.equal((await env.admin.del('/api/flags/ver_tmp')).status, 204);
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 1, qa: 1 });
  });

  test('a staging client token reads staging: its version, ETag and states', async () => {
    const r = await stagingClient.get('/flags');
    assert.equal(r.status, 200, r.text);
    const a = await env.admin.get('/flags?env=staging');
    assert.deepEqual(r.json, a.json, 'the same answer as an admin with ?env=staging');
    assert.equal(r.headers.get('etag'), a.headers.get('etag'));
    assert.notEqual(r.json.version, (await env.client.get('/flags')).json.version, 'not production\'s version');
    assert.equal(r.json.flags.find((f) => f.name === 'ver').percentage, 51);
    assert.equal((await env.client.get('/flags')).json.flags.find((f) => f.name === 'ver').percentage, 12);
    // A conditional request uses the environment's own version.
    const inm = await stagingClient.get('/flags', { headers: { 'If-None-Match': r.headers.get('etag') } });
    assert.equal(inm.status, 304);
    const f = await stagingClient.get('/flags/ver?user=u');
    assert.equal(f.json.version, r.json.version);
  });
});

// ---------------------------------------------------------------- §2 long-poll per environment

describe('a long-poll waits on its own environment', () => {
  let stagingClient;
  before(async () => {
    stagingClient = env.server.client(await newToken('lp-staging', 'client', 'staging'));
  });

  async function holdAll(list) {
    const held = list.map(([c, p, v]) => {
      const h = hold(c, p, { 'If-None-Match': `"${v}"` });
      h.catch(() => {});
      return h;
    });
    await waitHeld(env.server, list.length);
    return held;
  }

  test(`a staging change wakes staging's waiters at once and none of production's (304 after wait=${WAIT_S})`, async () => {
    const v = await versions();
    const w = `wait=${WAIT_S}`;
    const [sAdmin, sClient, pAdmin, pAdminEnv, pClient] = await holdAll([
      [env.admin, `/flags?env=staging&${w}`, v.staging],
      [stagingClient, `/flags?user=sue&${w}`, v.staging],
      [env.admin, `/flags?${w}`, v.production],
      [env.admin, `/flags/ver?env=production&${w}`, v.production],
      [env.client, `/flags?${w}`, v.production],
    ]);
    const woke = settledAt(Promise.all([sAdmin, sClient]));
    const write = await timeWrite(() => patchOk('ver', { environments: { staging: { percentage: 52 } } }));
    const { r: [a, b], at } = await woke;
    assertWokeBy(write, at, 'staging\'s waiters');
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.version, v.staging + 1);
    assert.equal(a.headers.get('etag'), `"${v.staging + 1}"`);
    assert.equal(a.json.flags.find((f) => f.name === 'ver').percentage, 52, 'the new body carries the change');
    assert.equal(b.status, 200, b.text);
    assert.equal(b.json.version, v.staging + 1);
    for (const [what, p] of [['admin', pAdmin], ['admin ?env=production', pAdminEnv], ['production client', pClient]]) {
      await assertPending(p, 10, `the production waiter (${what})`);
    }
    for (const [what, p] of [['admin', pAdmin], ['admin ?env=production', pAdminEnv], ['production client', pClient]]) {
      const r = await p;
      assert.equal(r.status, 304, `production waiter (${what}) answered ${r.status} after ${r.ms.toFixed(0)} ms: ${r.text}`);
      assert.equal(r.headers.get('etag'), `"${v.production}"`);
      assert.ok(r.ms >= WAIT_S * 1000 - 50, `${what}: held only ${r.ms.toFixed(0)} ms of ${WAIT_S} s`);
      assert.ok(r.ms < WAIT_S * 1000 + 1500, `${what}: held ${r.ms.toFixed(0)} ms`);
    }
    assert.deepEqual(moved(v, await versions()), { production: 0, staging: 1, qa: 0 });
  });

  test(`a production change wakes production's waiters at once and none of staging's (304 after wait=${WAIT_S})`, async () => {
    const v = await versions();
    const w = `wait=${WAIT_S}`;
    const [pAdmin, pClient, sAdmin, sClient, sFlag] = await holdAll([
      [env.admin, `/flags?${w}`, v.production],
      [env.client, `/flags/ver?user=x&${w}`, v.production],
      [env.admin, `/flags?env=staging&${w}`, v.staging],
      [stagingClient, `/flags?${w}`, v.staging],
      [stagingClient, `/flags/ver?user=x&${w}`, v.staging],
    ]);
    const woke = settledAt(Promise.all([pAdmin, pClient]));
    const write = await timeWrite(() => patchOk('ver', { percentage: 13 }));
    const { r: [a, b], at } = await woke;
    assertWokeBy(write, at, 'production\'s waiters');
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.version, v.production + 1);
    assert.equal(a.json.flags.find((f) => f.name === 'ver').percentage, 13);
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(Object.keys(b.json).sort(), ['name', 'on', 'version']);
    assert.equal(b.json.version, v.production + 1);
    for (const [what, p] of [['admin ?env=staging', sAdmin], ['staging client', sClient], ['staging client, one flag', sFlag]]) {
      const r = await p;
      assert.equal(r.status, 304, `staging waiter (${what}) answered ${r.status} after ${r.ms.toFixed(0)} ms: ${r.text}`);
      assert.equal(r.headers.get('etag'), `"${v.staging}"`);
      assert.ok(r.ms >= WAIT_S * 1000 - 50, `${what}: held only ${r.ms.toFixed(0)} ms of ${WAIT_S} s`);
    }
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 0, qa: 0 });
  });

  test('a definition change wakes the waiters of every environment', async () => {
    const v = await versions();
    const held = await holdAll([
      [env.admin, '/flags?wait=10', v.production],
      [stagingClient, '/flags?wait=10', v.staging],
      [env.admin, '/flags?env=qa&wait=10', v.qa],
    ]);
    const woke = settledAt(Promise.all(held));
    const write = await timeWrite(() => patchOk('ver', { description: 'wakes all' }));
    const { r: rs, at } = await woke;
    assertWokeBy(write, at, 'the waiters of every environment');
    assert.deepEqual(rs.map((r) => [r.status, r.json.version]),
      [[200, v.production + 1], [200, v.staging + 1], [200, v.qa + 1]]);
    await waitHeld(env.server, 0);
  });
});

// ---------------------------------------------------------------- docs/propagation.md two instances

describe('two instances on one database', () => {
  let b;
  let stagingToken;
  before(async () => {
    stagingToken = await newToken('b-staging', 'client', 'staging');
    [b] = await startServers(env.db.url, 1);
    env.extra.push(b);
  });

  test(`a staging change through A reaches B's staging clients at once and wakes none of B's production waiters`, async () => {
    const bs = b.client(stagingToken);
    const bp = b.client(env.clientToken);
    const ba = b.client(env.adminToken);
    assert.ok(await waitFor(async () => (await bs.get('/flags')).status === 200, 1000), 'B knows the new token');
    const v = await versions();
    assert.equal((await bs.get('/flags')).json.version, v.staging, 'B serves staging\'s version');
    assert.equal((await bp.get('/flags')).json.version, v.production, 'B serves production\'s version');
    const w = `wait=${WAIT_S}`;
    const held = [
      hold(bs, `/flags?${w}`, { 'If-None-Match': `"${v.staging}"` }),
      hold(bs, `/flags/ver?user=x&${w}`, { 'If-None-Match': `"${v.staging}"` }),
      hold(bp, `/flags?${w}`, { 'If-None-Match': `"${v.production}"` }),
      hold(ba, `/flags?env=production&${w}`, { 'If-None-Match': `"${v.production}"` }),
      hold(ba, `/flags?env=qa&${w}`, { 'If-None-Match': `"${v.qa}"` }),
    ];
    for (const h of held) h.catch(() => {});
    await waitHeld(b, 5);
    const woke = settledAt(Promise.all(held.slice(0, 2)));
    const write = await timeWrite(() => patchOk('ver', { environments: { staging: { percentage: 77 } } }));
    const { r: [s1, s2], at } = await woke;
    assertWokeBy(write, at, 'A → B: B\'s staging waiters');
    assert.equal(s1.status, 200, s1.text);
    assert.equal(s1.json.version, v.staging + 1);
    assert.equal(s1.headers.get('etag'), `"${v.staging + 1}"`);
    assert.equal(s1.json.flags.find((f) => f.name === 'ver').percentage, 77, 'B\'s answer carries the change');
    assert.equal(s2.status, 200, s2.text);
    assert.equal(s2.json.version, v.staging + 1);
    for (const [what, p, ver] of [['production client', held[2], v.production],
      ['admin ?env=production', held[3], v.production], ['admin ?env=qa', held[4], v.qa]]) {
      const r = await p;
      assert.equal(r.status, 304, `B's ${what} waiter answered ${r.status} after ${r.ms.toFixed(0)} ms: ${r.text}`);
      assert.equal(r.headers.get('etag'), `"${ver}"`);
      assert.ok(r.ms >= WAIT_S * 1000 - 50, `B's ${what} waiter held only ${r.ms.toFixed(0)} ms`);
    }
    const vb = await b.client(env.adminToken).get('/api/environments');
    assert.deepEqual(vb.json.environments, await envList(), 'B lists the same environments and versions');
  });

  test('an environment created and deleted through A is known and forgotten on B', async () => {
    const ba = b.client(env.adminToken);
    assert.equal((await env.admin.post('/api/environments', { name: 'ephemeral' })).status, 201);
    assert.ok(await waitFor(async () => (await ba.get('/flags?env=ephemeral')).status === 200, 1000),
      'B serves the new environment within a second');
    const tok = await newToken('eph', 'client', 'ephemeral');
    const bc = b.client(tok);
    assert.ok(await waitFor(async () => (await bc.get('/flags')).status === 200, 1000));
    assert.equal((await env.admin.del('/api/environments/ephemeral')).status, 204);
    assert.ok(await waitFor(async () => (await bc.get('/flags')).status === 401, 1000),
      'the deleted environment\'s token is refused on B within a second');
    assertError(await ba.get('/flags?env=ephemeral'), 404, 'not_found');
  });
});

// ---------------------------------------------------------------- §3 history and revert per part

describe('history names environments; revert restores only what the event changed', () => {
  const ev = {}; // the events, by what they did
  before(async () => {
    await createFlag(env.admin, {
      name: 'rv', description: 'orig', owner: 'team-a', enabled: true, percentage: 20,
      environments: { staging: { enabled: true, percentage: 50 } },
    });
    await patchOk('rv', { percentage: 40 });
    [ev.prod] = await history('rv');
    await patchOk('rv', { environments: { staging: { percentage: 70 } } });
    [ev.staging] = await history('rv');
    await patchOk('rv', { description: 'changed', owner: 'team-b' });
    [ev.definition] = await history('rv');
  });

  test('each event lists the environments whose state it changed ([] for a definition-only change)', async () => {
    const events = await history('rv');
    for (const e of events) {
      assert.deepEqual(Object.keys(e).sort(), ['action', 'actor', 'after', 'at', 'before', 'environments', 'id']);
      assert.ok(Array.isArray(e.environments));
    }
    assert.deepEqual(events.map((e) => e.action), ['update', 'update', 'update', 'create']);
    assert.deepEqual([...events[3].environments].sort(), ['production', 'qa', 'staging'], 'a create names every environment');
    assert.deepEqual(ev.prod.environments, ['production']);
    assert.deepEqual(ev.staging.environments, ['staging']);
    assert.deepEqual(ev.definition.environments, []);
    assert.equal(ev.prod.before.environments.production.percentage, 20);
    assert.equal(ev.prod.after.environments.production.percentage, 40);
    assert.equal(ev.staging.after.environments.staging.percentage, 70);
    assert.equal(ev.definition.after.description, 'changed');
    // A change of two environments names both.
    const r = await env.admin.patch('/api/flags/rv?env=qa', { enabled: true, environments: { staging: { users: ['u'] } } });
    assert.equal(r.status, 200, r.text);
    const [both] = await history('rv');
    assert.deepEqual([...both.environments].sort(), ['qa', 'staging']);
    const undo = await env.admin.patch('/api/flags/rv?env=qa', { enabled: false, environments: { staging: { users: [] } } });
    assert.equal(undo.status, 200, undo.text);
  });

  test('reverting the earlier production change leaves the later staging and definition changes in place', async () => {
    const v = await versions();
    const r = await env.admin.post('/api/flags/rv/revert', { event: ev.prod.id });
    assert.equal(r.status, 200, r.text);
    const f = await getFlag('rv');
    assert.equal(f.environments.production.percentage, 20, 'production back to before that event');
    assert.equal(f.environments.production.enabled, true);
    assert.equal(f.environments.staging.percentage, 70, 'the later staging change stays');
    assert.equal(f.description, 'changed', 'the later definition change stays');
    assert.equal(f.owner, 'team-b');
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 0, qa: 0 },
      'a revert of a production change moves production only');
    const [rev] = await history('rv');
    assert.equal(rev.action, 'revert');
    assert.deepEqual(rev.environments, ['production']);
    assert.equal((await env.client.get('/flags')).json.flags.find((x) => x.name === 'rv').percentage, 20);
  });

  test('reverting a description-only change leaves every environment\'s state', async () => {
    const before = await getFlag('rv');
    const v = await versions();
    const r = await env.admin.post('/api/flags/rv/revert', { event: ev.definition.id });
    assert.equal(r.status, 200, r.text);
    const f = await getFlag('rv');
    assert.equal(f.description, 'orig');
    assert.equal(f.owner, 'team-a');
    assert.deepEqual(f.environments, before.environments, 'no state moved');
    assert.deepEqual(moved(v, await versions()), { production: 1, staging: 1, qa: 1 }, 'a definition change');
    const [rev] = await history('rv');
    assert.deepEqual(rev.environments, []);
  });

  test('reverting the staging change restores staging only', async () => {
    const before = await getFlag('rv');
    const v = await versions();
    const r = await env.admin.post('/api/flags/rv/revert', { event: ev.staging.id });
    assert.equal(r.status, 200, r.text);
    const f = await getFlag('rv');
    assert.deepEqual(f.environments.staging, { ...before.environments.staging, percentage: 50 });
    assert.deepEqual(f.environments.production, before.environments.production);
    assert.equal(f.description, 'orig');
    assert.deepEqual(moved(v, await versions()), { production: 0, staging: 1, qa: 0 });
    const [rev] = await history('rv');
    assert.deepEqual(rev.environments, ['staging']);
  });
});
