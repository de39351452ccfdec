// docs/api.md §5: while the database is unreachable, reads keep being served from
// the snapshot, writes answer 503 unavailable with Retry-After, and nothing
// is half-written.  The outage is made for this file's database only: it stops
// accepting connections and its sessions are terminated.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  PG_URL, assertError, createFlag, currentVersion, psql, sleep, startEnv,
} from './lib/harness.mjs';

let env;
before(async () => {
  env = await startEnv();
  await createFlag(env.admin, { name: 'survivor', enabled: true, percentage: 100 });
  await createFlag(env.admin, { name: 'partial', enabled: true, percentage: 50 });
});
after(async () => {
  if (env) await psql(PG_URL, `ALTER DATABASE "${env.db.name}" ALLOW_CONNECTIONS true`).catch(() => {});
  await env?.close();
});

async function cutDatabase() {
  await psql(PG_URL, `ALTER DATABASE "${env.db.name}" ALLOW_CONNECTIONS false`);
  await psql(PG_URL, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                       WHERE datname = '${env.db.name}' AND pid <> pg_backend_pid()`);
}

async function restoreDatabase() {
  await psql(PG_URL, `ALTER DATABASE "${env.db.name}" ALLOW_CONNECTIONS true`);
}

async function poll(fn, ms, what) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await fn();
    if (last.ok) return last;
    await sleep(100);
  }
  assert.fail(`${what} within ${ms} ms; last: ${JSON.stringify(last)}`);
}

describe('database outage', () => {
  let version;
  let flagsBefore;
  before(async () => {
    version = await currentVersion(env.client);
    flagsBefore = (await env.client.get('/flags')).text;
    await cutDatabase();
  });

  test('/readyz reports the database down but stays 200 with the snapshot', async () => {
    const r = await poll(async () => {
      const x = await env.anon.get('/readyz');
      return { ok: x.json?.database === 'down', status: x.status, json: x.json };
    }, 10000, '/readyz database down');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ready', database: 'down', version });
  });

  test('/metrics says vexil_database_up 0', async () => {
    const r = await env.anon.get('/metrics');
    assert.match(r.text, /^vexil_database_up 0$/m);
  });

  test('reads are still served from the snapshot, with the tokens known before', async () => {
    const r = await env.client.get('/flags');
    assert.equal(r.status, 200);
    assert.equal(r.text, flagsBefore);
    const u = await env.client.get('/flags/survivor?user=x');
    assert.deepEqual(u.json, { name: 'survivor', on: true, version });
    const a = await env.admin.get('/api/flags');
    assert.equal(a.status, 200, 'admin reads come from the snapshot too');
    const v = await env.client.get('/flags', { headers: { 'If-None-Match': `"${version}"` } });
    assert.equal(v.status, 304);
  });

  test('writes answer 503 unavailable with Retry-After', async () => {
    const writes = [
      () => env.admin.post('/api/flags', { name: 'during_outage' }),
      () => env.admin.patch('/api/flags/partial', { percentage: 60 }),
      () => env.admin.del('/api/flags/survivor'),
      () => env.admin.post('/api/tokens', { name: 'during-outage', role: 'client' }),
    ];
    for (const w of writes) {
      const t0 = Date.now();
      const r = await w();
      assertError(r, 503, 'unavailable');
      const ra = r.headers.get('retry-after');
      assert.ok(ra && /^\d+$/.test(ra), `Retry-After: ${ra}`);
      assert.ok(Date.now() - t0 < 15000, 'answered in reasonable time');
    }
    assert.equal(await currentVersion(env.client), version, 'no version step');
  });

  test('after the database is back, writes work again and nothing was half-written', async () => {
    await restoreDatabase();
    const r = await poll(async () => {
      const x = await env.admin.post('/api/flags', { name: 'after_outage' });
      return { ok: x.status === 201, status: x.status, text: x.text };
    }, 40000, 'a write succeeds after the outage');
    assert.equal(r.status, 201);
    await poll(async () => {
      const x = await env.anon.get('/readyz');
      return { ok: x.json?.database === 'up', json: x.json };
    }, 40000, '/readyz database up');
    const names = (await env.client.get('/flags')).json.flags.map((f) => f.name);
    assert.deepEqual(names, ['after_outage', 'partial', 'survivor']);
    const partial = (await env.admin.get('/api/flags/partial')).json;
    assert.equal(partial.percentage, 50);
    assert.equal(partial.revision, 1);
    assert.equal(await currentVersion(env.client), version + 1);
    const tokens = (await env.admin.get('/api/tokens')).json.tokens;
    assert.ok(!tokens.some((t) => t.name === 'during-outage'));
    for (const n of ['partial', 'survivor']) {
      const h = await env.admin.get(`/api/flags/${n}/history`);
      assert.equal(h.status, 200);
      assert.deepEqual(h.json.events.map((e) => e.action), ['create'], `${n}: only its create`);
    }
    const none = await env.admin.get('/api/flags/during_outage/history');
    assert.ok(none.status === 404 || (none.status === 200 && none.json.events.length === 0),
      `no history for a flag whose create failed: ${none.status} ${none.text}`);
  });
});
