// docs/api.md §3 flags (create, read, update, delete, If-Match), §1 field rules,
// docs/propagation.md one version step per change, docs/operations.md §3
// GET /api/stale.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, assertError, createFlag, currentVersion, historyTable, psql, sleep, startEnv,
} from './lib/harness.mjs';

let env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

const FLAG_KEYS = ['created_at', 'description', 'enabled', 'name', 'owner', 'percentage', 'revision',
  'rolled_out_at', 'updated_at', 'users'];

function pick(f, keys = FLAG_KEYS) {
  return Object.fromEntries(keys.map((k) => [k, f[k]]));
}

async function getFlag(name) {
  const r = await env.admin.get(`/api/flags/${encodeURIComponent(name)}`);
  assert.equal(r.status, 200, r.text);
  return r;
}

async function historyCount(name) {
  const r = await env.admin.get(`/api/flags/${encodeURIComponent(name)}/history`);
  assert.equal(r.status, 200, r.text);
  return r.json.events.length;
}

describe('POST /api/flags', () => {
  test('a name alone gets the defaults of docs/api.md §1', async () => {
    const before = Date.now();
    const r = await env.admin.post('/api/flags', { name: 'minimal' });
    assert.equal(r.status, 201, r.text);
    const f = r.json;
    assert.deepEqual(pick(f, ['name', 'description', 'owner', 'enabled', 'percentage', 'users', 'rolled_out_at', 'revision']), {
      name: 'minimal', description: '', owner: '', enabled: false, percentage: 0, users: [], rolled_out_at: null, revision: 1,
    });
    assert.match(f.created_at, RFC3339_MS);
    assert.equal(f.updated_at, f.created_at);
    const t = Date.parse(f.created_at);
    assert.ok(t >= before - 2000 && t <= Date.now() + 2000, `created_at ${f.created_at} is now`);
    for (const k of FLAG_KEYS) assert.ok(k in f, `response has ${k}`);
  });

  test('every field given is stored; users come back sorted (byte order)', async () => {
    const r = await env.admin.post('/api/flags', {
      name: 'full.flag-1_x', description: 'New checkout', owner: 'team-payments', enabled: true,
      percentage: 25, users: ['bob', 'Alice', 'ü', 'alice'],
    });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(pick(r.json, ['name', 'description', 'owner', 'enabled', 'percentage', 'users', 'rolled_out_at', 'revision']), {
      name: 'full.flag-1_x', description: 'New checkout', owner: 'team-payments', enabled: true,
      percentage: 25, users: ['Alice', 'alice', 'bob', 'ü'], rolled_out_at: null, revision: 1,
    });
    const g = await getFlag('full.flag-1_x');
    assert.deepEqual(pick(g.json), pick(r.json), 'GET returns what POST returned');
  });

  test('a flag created enabled at 100 % is rolled out at creation', async () => {
    const f = await createFlag(env.admin, { name: 'born_rolled_out', enabled: true, percentage: 100 });
    assert.match(f.rolled_out_at, RFC3339_MS);
    assert.ok(f.rolled_out_at >= f.created_at && Date.parse(f.rolled_out_at) <= Date.now() + 2000, f.rolled_out_at);
  });

  test('at 100 % but disabled is not rolled out', async () => {
    const f = await createFlag(env.admin, { name: 'disabled_full', enabled: false, percentage: 100 });
    assert.equal(f.rolled_out_at, null);
  });

  test('a taken name is 409 conflict and changes nothing', async () => {
    const v = await currentVersion(env.client);
    const r = await env.admin.post('/api/flags', { name: 'minimal', description: 'again' });
    assertError(r, 409, 'conflict');
    assert.equal((await getFlag('minimal')).json.description, '');
    assert.equal(await currentVersion(env.client), v);
  });

  test('names are case-sensitive: Minimal and minimal are two flags', async () => {
    const f = await createFlag(env.admin, { name: 'Minimal' });
    assert.equal(f.name, 'Minimal');
    assert.equal((await getFlag('minimal')).json.name, 'minimal');
  });

  test('name edges: one character, a digit first, 100 characters', async () => {
    for (const name of ['a', '7', '0.1-beta_2', 'x'.repeat(100)]) {
      const f = await createFlag(env.admin, { name });
      assert.equal(f.name, name);
    }
  });

  test('field edges: description 1000, owner 200, 10 000 users of 256 bytes, percentage 0 and 100', async () => {
    const users = Array.from({ length: 10000 }, (_, i) => String(i).padStart(5, '0'));
    users[0] = 'u'.repeat(256);
    const f = await createFlag(env.admin, {
      name: 'edges', description: 'd'.repeat(1000), owner: 'o'.repeat(200), users, percentage: 100,
    });
    assert.equal(f.description.length, 1000);
    assert.equal(f.owner.length, 200);
    assert.equal(f.users.length, 10000);
    assert.deepEqual(f.users, [...users].sort());
    const z = await createFlag(env.admin, { name: 'zero_pct', percentage: 0 });
    assert.equal(z.percentage, 0);
  });

  test('the Content-Type is not required to be JSON', async () => {
    const r = await env.admin.request('POST', '/api/flags', {
      raw: JSON.stringify({ name: 'text_plain_body' }), headers: { 'Content-Type': 'text/plain' },
    });
    assert.equal(r.status, 201, r.text);
  });
});

describe('GET /api/flags and /api/flags/<name>', () => {
  test('GET /api/flags lists every flag with age_days 0 and no stale reason', async () => {
    const r = await env.admin.get('/api/flags');
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json.flags), 'flags is a list');
    for (const k of Object.keys(r.json)) assert.ok(['flags', 'version'].includes(k), `unexpected key ${k}`);
    if ('version' in r.json) assert.equal(r.json.version, await currentVersion(env.client));
    const names = r.json.flags.map((f) => f.name);
    for (const n of ['minimal', 'Minimal', 'full.flag-1_x', 'born_rolled_out', 'edges']) assert.ok(names.includes(n), n);
    for (const f of r.json.flags) {
      for (const k of FLAG_KEYS) assert.ok(k in f, `${f.name} has ${k}`);
      assert.equal(f.age_days, 0, `${f.name}.age_days`);
      assert.deepEqual(f.stale, [], `${f.name}.stale`);
    }
    const fromClient = await env.client.get('/flags');
    assert.equal(r.json.flags.length, fromClient.json.flags.length);
  });

  test('GET /api/flags/<name> answers the flag with ETag "<revision>"', async () => {
    const r = await getFlag('full.flag-1_x');
    assert.equal(r.json.name, 'full.flag-1_x');
    assert.equal(r.json.revision, 1);
    assert.equal(r.headers.get('etag'), '"1"');
  });

  test('an unknown flag is 404 not_found', async () => {
    assertError(await env.admin.get('/api/flags/nope'), 404, 'not_found');
  });
});

describe('PATCH /api/flags/<name>', () => {
  let created;
  before(async () => {
    created = await createFlag(env.admin, { name: 'patchme', description: 'd0', owner: 'o0' });
  });

  test('changes only the fields given and bumps revision and updated_at', async () => {
    await sleep(5);
    const r = await env.admin.patch('/api/flags/patchme', { percentage: 30 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.percentage, 30);
    assert.equal(r.json.revision, 2);
    assert.equal(r.json.description, 'd0');
    assert.equal(r.json.owner, 'o0');
    assert.equal(r.json.enabled, false);
    assert.equal(r.json.created_at, created.created_at);
    assert.ok(r.json.updated_at > created.updated_at, 'updated_at moves on');
    const g = await getFlag('patchme');
    assert.deepEqual(pick(g.json), pick(r.json));
    assert.equal(g.headers.get('etag'), '"2"');
  });

  test('every patchable field at once', async () => {
    const r = await env.admin.patch('/api/flags/patchme', {
      description: 'd1', owner: 'o1', enabled: true, percentage: 40, users: ['z', 'a'],
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(pick(r.json, ['description', 'owner', 'enabled', 'percentage', 'users', 'revision']), {
      description: 'd1', owner: 'o1', enabled: true, percentage: 40, users: ['a', 'z'], revision: 3,
    });
  });

  test('If-Match with the current revision succeeds', async () => {
    const r = await env.admin.patch('/api/flags/patchme', { description: 'd2' }, { headers: { 'If-Match': '"3"' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.revision, 4);
  });

  test('If-Match with an old revision is 412 and changes nothing', async () => {
    const v = await currentVersion(env.client);
    const n = await historyCount('patchme');
    const r = await env.admin.patch('/api/flags/patchme', { description: 'lost update' }, { headers: { 'If-Match': '"3"' } });
    assertError(r, 412, 'precondition_failed');
    const g = await getFlag('patchme');
    assert.equal(g.json.description, 'd2');
    assert.equal(g.json.revision, 4);
    assert.equal(await currentVersion(env.client), v);
    assert.equal(await historyCount('patchme'), n);
  });

  test('If-Match * matches an existing flag', async () => {
    const r = await env.admin.patch('/api/flags/patchme', { description: 'd3' }, { headers: { 'If-Match': '*' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.revision, 5);
  });

  test('a weak or unparsable If-Match is 400 bad_request', async () => {
    for (const h of ['W/"5"', 'abc', '"5']) {
      const r = await env.admin.patch('/api/flags/patchme', { description: 'no' }, { headers: { 'If-Match': h } });
      assertError(r, 400, 'bad_request');
    }
    assert.equal((await getFlag('patchme')).json.description, 'd3');
  });

  test('a PATCH that changes nothing: 200, same revision, no event, no version step', async () => {
    const g = await getFlag('patchme');
    const v = await currentVersion(env.client);
    const n = await historyCount('patchme');
    for (const body of [{}, { description: 'd3' }, { enabled: true, percentage: 40 }, { users: ['z', 'a'] }]) {
      const r = await env.admin.patch('/api/flags/patchme', body);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(pick(r.json), pick(g.json), `no-op ${JSON.stringify(body)}`);
    }
    assert.equal(await currentVersion(env.client), v, 'version unchanged');
    assert.equal(await historyCount('patchme'), n, 'no event');
  });

  test('an unknown flag is 404 not_found', async () => {
    assertError(await env.admin.patch('/api/flags/nope', { percentage: 1 }), 404, 'not_found');
  });

  test('the name cannot be changed', async () => {
    const r = await env.admin.patch('/api/flags/patchme', { name: 'renamed' });
    assertError(r, 400, ['unknown_field', 'invalid_value']);
    assertError(await env.admin.get('/api/flags/renamed'), 404, 'not_found');
  });
});

describe('rolled_out_at', () => {
  test('follows "enabled and 100 %" on every update', async () => {
    const f0 = await createFlag(env.admin, { name: 'rollout', enabled: true, percentage: 50 });
    assert.equal(f0.rolled_out_at, null);
    await sleep(5);
    const f1 = (await env.admin.patch('/api/flags/rollout', { percentage: 100 })).json;
    assert.match(f1.rolled_out_at, RFC3339_MS, 'set when it becomes rolled out');
    assert.ok(f1.rolled_out_at > f0.updated_at, 'set at the time of the change');
    await sleep(5);
    const f2 = (await env.admin.patch('/api/flags/rollout', { description: 'still out' })).json;
    assert.equal(f2.rolled_out_at, f1.rolled_out_at, 'kept while it stays rolled out');
    const f3 = (await env.admin.patch('/api/flags/rollout', { percentage: 99 })).json;
    assert.equal(f3.rolled_out_at, null, 'cleared below 100 %');
    await sleep(5);
    const f4 = (await env.admin.patch('/api/flags/rollout', { percentage: 100 })).json;
    assert.ok(f4.rolled_out_at > f1.rolled_out_at, 'set anew, not the old time');
    const f5 = (await env.admin.patch('/api/flags/rollout', { enabled: false })).json;
    assert.equal(f5.rolled_out_at, null, 'cleared when disabled');
    await sleep(5);
    const f6 = (await env.admin.patch('/api/flags/rollout', { enabled: true })).json;
    assert.match(f6.rolled_out_at, RFC3339_MS);
    assert.ok(f6.rolled_out_at > f4.rolled_out_at);
  });
});

describe('DELETE /api/flags/<name>', () => {
  test('204 with no body; the flag is gone everywhere', async () => {
    await createFlag(env.admin, { name: 'doomed', enabled: true, percentage: 100 });
    const v = await currentVersion(env.client);
    const r = await env.admin.del('/api/flags/doomed');
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
    assertError(await env.admin.get('/api/flags/doomed'), 404, 'not_found');
    assertError(await env.client.get('/flags/doomed?user=a'), 404, 'not_found');
    const all = await env.client.get('/flags');
    assert.ok(!all.json.flags.some((f) => f.name === 'doomed'));
    assert.equal(all.json.version, v + 1);
    assert.ok(!('doomed' in (await env.client.get('/flags?user=a')).json.flags));
  });

  test('deleting again, or an unknown flag, is 404', async () => {
    assertError(await env.admin.del('/api/flags/doomed'), 404, 'not_found');
    assertError(await env.admin.del('/api/flags/never_was'), 404, 'not_found');
  });

  test('If-Match on DELETE: an old revision is 412, the current one deletes', async () => {
    await createFlag(env.admin, { name: 'guarded' });
    await env.admin.patch('/api/flags/guarded', { percentage: 5 });
    assertError(await env.admin.del('/api/flags/guarded', { headers: { 'If-Match': '"1"' } }), 412, 'precondition_failed');
    assert.equal((await getFlag('guarded')).json.revision, 2);
    const r = await env.admin.del('/api/flags/guarded', { headers: { 'If-Match': '"2"' } });
    assert.equal(r.status, 204, r.text);
  });

  test('a deleted name is free again and starts at revision 1', async () => {
    const f = await createFlag(env.admin, { name: 'doomed', description: 'second life' });
    assert.equal(f.revision, 1);
    assert.equal(f.description, 'second life');
    assert.equal(f.enabled, false);
  });
});

describe('the global version steps once per change', () => {
  test('create, update, delete: +1 each; failures and no-ops: +0', async () => {
    let v = await currentVersion(env.client);
    const step = async (what, delta, fn) => {
      await fn();
      const now = await currentVersion(env.client);
      assert.equal(now, v + delta, `${what}: version ${v} → ${now}`);
      const ready = await env.anon.get('/readyz');
      assert.equal(ready.json.version, now, `/readyz agrees after ${what}`);
      v = now;
    };
    await step('create', 1, () => createFlag(env.admin, { name: 'versioned' }));
    await step('update', 1, () => env.admin.patch('/api/flags/versioned', { enabled: true }));
    await step('no-op update', 0, () => env.admin.patch('/api/flags/versioned', { enabled: true }));
    await step('update of 3 fields', 1, () => env.admin.patch('/api/flags/versioned', { percentage: 3, owner: 'x', description: 'y' }));
    await step('conflicting create', 0, () => env.admin.post('/api/flags', { name: 'versioned' }));
    await step('invalid update', 0, () => env.admin.patch('/api/flags/versioned', { percentage: 101 }));
    await step('stale If-Match', 0, () => env.admin.patch('/api/flags/versioned', { percentage: 4 }, { headers: { 'If-Match': '"1"' } }));
    await step('token create', 0, () => env.admin.post('/api/tokens', { name: 'v-token', role: 'client' }));
    await step('delete', 1, () => env.admin.del('/api/flags/versioned'));
    await step('delete of a missing flag', 0, () => env.admin.del('/api/flags/versioned'));
  });

  test('the version is stored in the database, and history has one row per change', async () => {
    const table = await historyTable(env.db.url);
    const rows = Number(await psql(env.db.url, `SELECT count(*) FROM "${table}"`));
    const api = await env.admin.get('/api/flags');
    let events = 0;
    const names = new Set(api.json.flags.map((f) => f.name));
    for (const n of ['doomed', 'guarded', 'versioned']) names.add(n);
    for (const n of names) events += await historyCount(n);
    assert.equal(rows, events, 'history rows = events over all flags');
  });
});

describe('GET /api/stale', () => {
  test('with the defaults nothing fresh is stale', async () => {
    const r = await env.admin.get('/api/stale');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { flags: [] });
  });

  test('days=0: every flag is older than 0 days', async () => {
    await sleep(5);
    const r = await env.admin.get('/api/stale?days=0');
    assert.equal(r.status, 200, r.text);
    const all = await env.admin.get('/api/flags');
    assert.deepEqual(r.json.flags.map((f) => f.name).sort(), all.json.flags.map((f) => f.name).sort());
    for (const f of r.json.flags) {
      assert.ok(f.stale.includes('older_than_0_days'), `${f.name}: ${JSON.stringify(f.stale)}`);
      assert.equal(f.age_days, 0);
      for (const k of FLAG_KEYS) assert.ok(k in f, `${f.name} has ${k}`);
    }
  });

  test('rolled_out_days=0: only flags rolled out (enabled at 100 %) are stale', async () => {
    const r = await env.admin.get('/api/stale?rolled_out_days=0');
    assert.equal(r.status, 200, r.text);
    const all = (await env.admin.get('/api/flags')).json.flags;
    const rolled = all.filter((f) => f.enabled && f.percentage === 100).map((f) => f.name).sort();
    assert.ok(rolled.includes('born_rolled_out'));
    assert.deepEqual(r.json.flags.map((f) => f.name).sort(), rolled);
    for (const f of r.json.flags) assert.deepEqual(f.stale, ['rolled_out_0_days'], f.name);
  });

  test('both reasons at once', async () => {
    const r = await env.admin.get('/api/stale?days=0&rolled_out_days=0');
    const f = r.json.flags.find((x) => x.name === 'born_rolled_out');
    assert.deepEqual([...f.stale].sort(), ['older_than_0_days', 'rolled_out_0_days']);
  });

  for (const q of ['days=-1', 'days=abc', 'rolled_out_days=-1', 'rolled_out_days=1.5', 'days=']) {
    test(`${q} is 400`, async () => {
      assertError(await env.admin.get(`/api/stale?${q}`), 400, ['bad_request', 'invalid_value']);
    });
  }
});
