// docs/api.md §3 history and revert.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, assertError, createFlag, currentVersion, sleep, startEnv, tableCounts,
} from './lib/harness.mjs';

let env;
let ops; // a second admin token, named ops-admin
before(async () => {
  env = await startEnv();
  const t = await env.admin.post('/api/tokens', { name: 'ops-admin', role: 'admin' });
  assert.equal(t.status, 201, t.text);
  ops = env.server.client(t.json.token);
});
after(async () => {
  await env?.close();
});

const FLAG_KEYS = ['created_at', 'description', 'enabled', 'name', 'owner', 'percentage', 'revision',
  'rolled_out_at', 'updated_at', 'users'];
const pick = (f) => Object.fromEntries(FLAG_KEYS.map((k) => [k, f[k]]));

async function history(name) {
  const r = await env.admin.get(`/api/flags/${encodeURIComponent(name)}/history`);
  assert.equal(r.status, 200, r.text);
  // Paginated (docs/api.md §3): the first page of 50, and where the next begins.
  assert.deepEqual(Object.keys(r.json), ['events', 'next']);
  if (r.json.events.length < 50) assert.equal(r.json.next, null);
  return r.json.events;
}

function assertEventShape(e) {
  assert.deepEqual(Object.keys(e).sort(), ['action', 'actor', 'after', 'at', 'before', 'environments', 'id']);
  assert.ok(Array.isArray(e.environments), 'the environments whose state the event changed');
  assert.ok(['create', 'update', 'delete', 'revert'].includes(e.action), e.action);
  assert.match(e.at, RFC3339_MS);
  assert.equal(typeof e.actor, 'string');
  for (const side of ['before', 'after']) {
    if (e[side] !== null) {
      for (const k of FLAG_KEYS) assert.ok(k in e[side], `${side}.${k} in a whole flag object`);
    }
  }
}

async function revert(name, event, client = env.admin) {
  return client.post(`/api/flags/${encodeURIComponent(name)}/revert`, { event });
}

describe('history', () => {
  let created;
  let updated;
  let beforeDelete;
  before(async () => {
    created = await createFlag(env.admin, { name: 'h1', description: 'first', owner: 'team-h' });
    await sleep(3);
    const p = await ops.patch('/api/flags/h1', { percentage: 10, enabled: true });
    assert.equal(p.status, 200, p.text);
    updated = p.json;
    beforeDelete = (await env.admin.get('/api/flags/h1')).json;
    await sleep(3);
    const d = await env.admin.del('/api/flags/h1');
    assert.equal(d.status, 204, d.text);
  });

  test('newest first, with the actor = the name of the token that made the change', async () => {
    const ev = await history('h1');
    assert.equal(ev.length, 3);
    ev.forEach(assertEventShape);
    assert.deepEqual(ev.map((e) => e.action), ['delete', 'update', 'create']);
    assert.deepEqual(ev.map((e) => e.actor), ['it-admin', 'ops-admin', 'it-admin']);
    assert.equal(new Set(ev.map((e) => String(e.id))).size, 3, 'distinct ids');
    for (let i = 1; i < ev.length; i++) assert.ok(ev[i - 1].at >= ev[i].at, 'newest first');
  });

  test('before and after are the whole flag states (null where none)', async () => {
    const [del, upd, cre] = await history('h1');
    assert.equal(cre.before, null);
    assert.deepEqual(pick(cre.after), pick(created));
    assert.deepEqual(pick(upd.before), pick(created));
    assert.deepEqual(pick(upd.after), pick(updated));
    assert.deepEqual(pick(del.before), pick(beforeDelete));
    assert.equal(del.after, null);
  });

  test('history is kept after delete and continues when the name is created again', async () => {
    const f = await createFlag(env.admin, { name: 'h1_reuse' });
    await env.admin.del('/api/flags/h1_reuse');
    const again = await createFlag(env.admin, { name: 'h1_reuse', owner: 'new' });
    assert.equal(again.revision, 1);
    const ev = await history('h1_reuse');
    assert.deepEqual(ev.map((e) => e.action), ['create', 'delete', 'create']);
    assert.equal(ev[0].after.owner, 'new');
    assert.equal(ev[2].after.created_at, f.created_at);
  });

  test('history of an existing flag that was never changed has its create event', async () => {
    await createFlag(env.admin, { name: 'h_lonely' });
    const ev = await history('h_lonely');
    assert.equal(ev.length, 1);
    assert.equal(ev[0].action, 'create');
    assert.equal(ev[0].after.revision, 1);
  });

  test('a client token cannot read history', async () => {
    assertError(await env.client.get('/api/flags/h1/history'), 403, 'forbidden');
  });
});

describe('revert', () => {
  test('reverting a delete brings the flag back with its created_at and the next revision', async () => {
    const [del] = await history('h1');
    assert.equal(del.action, 'delete');
    const v = await currentVersion(env.client);
    const r = await revert('h1', del.id, ops);
    assert.equal(r.status, 200, r.text);
    const f = r.json;
    assert.equal(f.name, 'h1');
    assert.equal(f.created_at, del.before.created_at, 'created_at restored');
    assert.equal(f.revision, del.before.revision + 1, 'revision continues');
    assert.equal(f.percentage, 10);
    assert.equal(f.enabled, true);
    assert.equal(f.description, 'first');
    assert.equal(f.owner, 'team-h');
    assert.equal(await currentVersion(env.client), v + 1, 'one version step');
    const g = await env.admin.get('/api/flags/h1');
    assert.equal(g.status, 200);
    assert.deepEqual(pick(g.json), pick(f));
    const c = await env.client.get('/flags/h1?user=someone');
    assert.equal(c.status, 200, 'back on the client API');
  });

  test('the revert is recorded as a new event by the reverting token', async () => {
    const ev = await history('h1');
    assert.equal(ev.length, 4);
    const [rev, del] = ev;
    assertEventShape(rev);
    assert.equal(rev.action, 'revert');
    assert.equal(rev.actor, 'ops-admin');
    assert.equal(rev.before, null, 'the flag did not exist before the revert');
    assert.deepEqual(pick(rev.after), pick((await env.admin.get('/api/flags/h1')).json));
    assert.equal(del.action, 'delete');
  });

  test('reverting an update restores its before state', async () => {
    const ev = await history('h1');
    const upd = ev.find((e) => e.action === 'update');
    const cur = (await env.admin.get('/api/flags/h1')).json;
    const r = await revert('h1', upd.id);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.percentage, upd.before.percentage);
    assert.equal(r.json.enabled, upd.before.enabled);
    assert.equal(r.json.description, upd.before.description);
    assert.deepEqual(r.json.users, upd.before.users);
    assert.equal(r.json.revision, cur.revision + 1);
    assert.equal(r.json.created_at, cur.created_at);
    const [rev] = await history('h1');
    assert.equal(rev.action, 'revert');
    assert.equal(rev.actor, 'it-admin');
    assert.deepEqual(pick(rev.before), pick(cur));
    assert.deepEqual(pick(rev.after), pick(r.json));
  });

  test('reverting an event whose before is null (a create) is 409 and changes nothing', async () => {
    const ev = await history('h1');
    const cre = ev.find((e) => e.action === 'create');
    const v = await currentVersion(env.client);
    const counts = await tableCounts(env.db.url);
    assertError(await revert('h1', cre.id), 409, 'conflict');
    assert.equal(await currentVersion(env.client), v);
    assert.deepEqual(await tableCounts(env.db.url), counts);
    assert.equal((await history('h1')).length, ev.length);
  });

  test('reverting the revert of a delete (before null) is 409 too', async () => {
    const ev = await history('h1');
    const revOfDelete = ev.filter((e) => e.action === 'revert').find((e) => e.before === null);
    assert.ok(revOfDelete);
    assertError(await revert('h1', revOfDelete.id), 409, 'conflict');
  });

  test('reverting to a rolled-out state sets rolled_out_at anew', async () => {
    const f0 = await createFlag(env.admin, { name: 'h_rollout', enabled: true, percentage: 100 });
    await sleep(5);
    const p = await env.admin.patch('/api/flags/h_rollout', { percentage: 50 });
    assert.equal(p.json.rolled_out_at, null);
    await sleep(5);
    const [upd] = await history('h_rollout');
    const r = await revert('h_rollout', upd.id);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.percentage, 100);
    assert.match(r.json.rolled_out_at, RFC3339_MS);
    assert.ok(r.json.rolled_out_at > f0.rolled_out_at, 'set to the time of the revert');
  });

  test('an unknown event id, or an event of another flag, is refused', async () => {
    await createFlag(env.admin, { name: 'h_other' });
    const [other] = await history('h_other');
    const cur = (await env.admin.get('/api/flags/h1')).json;
    for (const id of [999999999, other.id]) {
      const r = await revert('h1', id);
      assert.ok([400, 404].includes(r.status), `event ${id}: ${r.status} ${r.text}`);
      assertError(r, r.status, r.status === 404 ? 'not_found' : 'invalid_value');
    }
    assert.equal((await env.admin.get('/api/flags/h1')).json.revision, cur.revision);
  });

  test('revert on a flag that never existed is 404', async () => {
    assertError(await revert('never_existed', 1), 404, 'not_found');
  });

  test('bad revert bodies are 400 and change nothing', async () => {
    const counts = await tableCounts(env.db.url);
    const [latest] = await history('h1');
    const cases = [
      [{}, ['invalid_value', 'bad_request']],
      [{ event: null }, 'invalid_value'],
      [{ event: 1.5 }, 'invalid_value'],
      [{ event: true }, 'invalid_value'],
      [{ event: [latest.id] }, 'invalid_value'],
      [{ event: latest.id, extra: 1 }, 'unknown_field'],
    ];
    // Event ids are numbers in every implementation we expect; a string is then a wrong type.
    if (typeof latest.id === 'number') cases.push([{ event: 'abc' }, 'invalid_value'], [{ event: String(latest.id) }, 'invalid_value']);
    for (const [body, code] of cases) {
      const r = await env.admin.post('/api/flags/h1/revert', body);
      assertError(r, 400, code);
    }
    const raw = await env.admin.request('POST', '/api/flags/h1/revert', { raw: '{"event":' });
    assertError(raw, 400, 'invalid_json');
    assert.deepEqual(await tableCounts(env.db.url), counts);
  });
});

describe('history pages', () => {
  before(async () => {
    assert.equal((await env.admin.post('/api/flags', { name: 'paged' })).status, 201);
    for (let i = 1; i <= 7; i++) {
      assert.equal((await env.admin.patch('/api/flags/paged', { percentage: i })).status, 200);
    }
  });

  test('limit and before walk the whole history, newest first, each event once', async () => {
    const all = (await env.admin.get('/api/flags/paged/history')).json;
    assert.equal(all.events.length, 8);
    assert.equal(all.next, null);
    const seen = [];
    let before = null;
    for (let page = 0; page < 10; page++) {
      const q = before === null ? '?limit=3' : `?limit=3&before=${before}`;
      const r = await env.admin.get(`/api/flags/paged/history${q}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.events.length <= 3);
      seen.push(...r.json.events.map((e) => e.id));
      if (r.json.next === null) break;
      assert.equal(r.json.next, r.json.events.at(-1).id, 'next is the id the following page is below');
      before = r.json.next;
    }
    assert.deepEqual(seen, all.events.map((e) => e.id));
  });

  test('a page past the end is empty, and limit/before out of range are 400', async () => {
    const all = (await env.admin.get('/api/flags/paged/history')).json;
    const oldest = all.events.at(-1).id;
    const r = await env.admin.get(`/api/flags/paged/history?before=${oldest}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { events: [], next: null });
    for (const q of ['limit=0', 'limit=501', 'limit=x', 'before=0', 'before=-1', 'before=1.5']) {
      assertError(await env.admin.get(`/api/flags/paged/history?${q}`), 400, 'invalid_value');
    }
    assert.equal((await env.admin.get('/api/flags/paged/history?limit=500')).json.events.length, 8);
  });
});
