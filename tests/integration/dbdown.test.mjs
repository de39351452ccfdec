// docs/api.md §5 and §4: PostgreSQL goes away while vexil serves.  Reads and
// long-polls keep being answered from the snapshot, writes answer 503
// `unavailable` with Retry-After and write nothing, /readyz and /metrics say
// the database is down; when PostgreSQL is back, vexil notices by itself
// (no restart), and a write succeeds and reaches a request held across the
// outage.
//
// This file stops PostgreSQL, so it runs a private cluster of its own
// (tests/lib/pg.sh through cluster.mjs) and never touches the shared one.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Server, assertError, createToken, dbUrl, migrate, psql, sleep, tableCounts,
} from './lib/harness.mjs';
import { hold, privateCluster, waitFor, waitHeld } from './lib/cluster.mjs';

let cluster;
let url; // the vexil database on the private cluster
let server;
let second;
let admin;
let client;
let adminToken;
let clientToken;
const DBNAME = 'vexil_dbdown';

// State captured just before PostgreSQL is stopped.
let before_ = {};
// A long-poll started while the database is down, answered after it is back.
let heldAcross;
// When /readyz first said the database is up again.
let upAt;

async function readyz() {
  const r = await server.client(null).get('/readyz');
  return r;
}

async function metric(name) {
  const r = await server.client(null).get('/metrics');
  assert.equal(r.status, 200);
  const m = r.text.match(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm'));
  assert.ok(m, `/metrics has no ${name}`);
  return Number(m[1]);
}

before(async () => {
  cluster = await privateCluster();
  await psql(cluster.url, `CREATE DATABASE ${DBNAME}`);
  url = dbUrl(DBNAME, cluster.url);
  await migrate(url);
  adminToken = await createToken(url, 'dbdown-admin', 'admin');
  clientToken = await createToken(url, 'dbdown-client', 'client');
  server = new Server(url);
  await server.start();
  admin = server.client(adminToken);
  client = server.client(clientToken);
  for (const f of [
    { name: 'dbd_kill', enabled: true, percentage: 100, owner: 'ops' },
    { name: 'dbd_half', enabled: true, percentage: 50, users: ['alice'] },
  ]) {
    const r = await admin.post('/api/flags', f);
    assert.equal(r.status, 201, r.text);
  }
  const p = await admin.patch('/api/flags/dbd_half', { description: 'before the outage' });
  assert.equal(p.status, 200, p.text);
  // A second instance, to be stopped while the database is down.
  second = new Server(url);
  await second.start();
});

after(async () => {
  try {
    if (server && !server.exit) await server.stop();
  } finally {
    await server?.kill();
    await second?.kill();
    await cluster?.destroy();
  }
});

describe('PostgreSQL stops while vexil serves', () => {
  test('before: ready, database up', async () => {
    const r = await readyz();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: 'ready', database: 'up', version: 3 });
    assert.equal(await metric('vexil_database_up'), 1);
    const spare = await admin.post('/api/tokens', { name: 'dbdown-spare', role: 'client' });
    assert.equal(spare.status, 201, spare.text);
    before_ = {
      spareToken: spare.json.id,
      flags: (await client.get('/flags')).json,
      user: (await client.get('/flags?user=alice')).json,
      adminFlags: (await admin.get('/api/flags')).json.flags.map(({ age_days, stale, ...f }) => f),
      counts: await tableCounts(url),
      history: (await admin.get('/api/flags/dbd_half/history')).json,
    };
    assert.equal(before_.flags.version, 3);
    before_.lastEvent = before_.history.events[0].id;
    assert.equal(before_.history.events[0].action, 'update');
    await cluster.stop();
    assert.equal(await cluster.running(), false, 'the cluster is down');
  });

  test('/readyz says "database":"down" within 3 s, still 200 ready with the snapshot version', async () => {
    const r = await waitFor(async () => {
      const x = await readyz();
      return x.json?.database === 'down' ? x : false;
    }, 3000);
    assert.ok(r, `/readyz still says ${JSON.stringify((await readyz()).json)} 3 s after PostgreSQL stopped`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ready', database: 'down', version: 3 });
    assert.equal((await server.client(null).get('/healthz')).status, 200, '/healthz');
  });

  test('/metrics: vexil_database_up 0, version and flags from the snapshot', async () => {
    assert.equal(await metric('vexil_database_up'), 0);
    assert.equal(await metric('vexil_version'), 3);
    assert.equal(await metric('vexil_flags'), 2);
  });

  test('reads are answered from the snapshot, unchanged', async () => {
    const t0 = performance.now();
    const f = await client.get('/flags');
    assert.equal(f.status, 200, f.text);
    assert.deepEqual(f.json, before_.flags);
    assert.equal(f.headers.get('etag'), '"3"');
    const u = await client.get('/flags?user=alice');
    assert.deepEqual(u.json, before_.user);
    const one = await client.get('/flags/dbd_kill?user=bob');
    assert.deepEqual(one.json, { name: 'dbd_kill', on: true, version: 3 });
    assert.equal((await client.get('/flags', { headers: { 'If-None-Match': '"3"' } })).status, 304);
    const a = await admin.get('/api/flags');
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.json.flags.map(({ age_days, stale, ...x }) => x), before_.adminFlags);
    assert.equal((await admin.get('/api/flags/dbd_kill')).status, 200);
    assert.equal((await admin.get('/api/stale?days=0')).status, 200);
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `reads took ${ms.toFixed(0)} ms in all: the read path waits on the database`);
  });

  test('tokens still work from the snapshot: valid ones pass, others get 401', async () => {
    assert.equal((await server.client('vx_' + 'A'.repeat(43)).get('/flags')).status, 401);
    assert.equal((await server.client(null).get('/flags')).status, 401);
    assert.equal((await client.get('/api/flags')).status, 403);
  });

  test('a long-poll times out with 304 from the snapshot', async () => {
    const r = await hold(client, '/flags?wait=1', { 'If-None-Match': '"3"' });
    assert.equal(r.status, 304, r.text);
    assert.equal(r.headers.get('etag'), '"3"');
    assert.ok(r.ms >= 950 && r.ms < 3000, `answered after ${r.ms.toFixed(0)} ms`);
  });

  test('a long-poll without a matching version is answered at once', async () => {
    const r = await hold(client, '/flags?wait=30', { 'If-None-Match': '"2"' });
    assert.equal(r.status, 200);
    assert.ok(r.ms < 1000, `took ${r.ms.toFixed(0)} ms`);
  });

  test('writes answer 503 unavailable with Retry-After, promptly', async () => {
    // Held across the outage; the write after the restart must reach it.
    heldAcross = hold(client, '/flags/dbd_kill?user=bob&wait=30', { 'If-None-Match': '"3"' });
    heldAcross.catch(() => {});
    await waitHeld(server, 1);
    const writes = [
      ['POST', '/api/flags', { name: 'dbd_new', enabled: true }],
      ['PATCH', '/api/flags/dbd_kill', { enabled: false }],
      ['PATCH', '/api/flags/dbd_half', { percentage: 100, owner: 'x' }],
      ['DELETE', '/api/flags/dbd_half', undefined],
      ['POST', '/api/flags/dbd_half/revert', { event: before_.lastEvent }],
      ['POST', '/api/tokens', { name: 'during-outage', role: 'client' }],
      ['DELETE', `/api/tokens/${before_.spareToken}`, undefined],
    ];
    for (let round = 0; round < 2; round++) { // twice: the second try must not hang either
      for (const [method, p, body] of writes) {
        const t0 = performance.now();
        const r = await admin.request(method, p, { body });
        const ms = performance.now() - t0;
        assertError(r, 503, 'unavailable');
        const ra = r.headers.get('retry-after');
        assert.match(ra || '', /^\d+$/, `${method} ${p}: Retry-After ${ra}`);
        assert.ok(Number(ra) >= 1 && Number(ra) <= 120, `Retry-After ${ra}`);
        assert.ok(ms < 5000, `${method} ${p} took ${ms.toFixed(0)} ms to answer 503`);
      }
    }
  });

  test('validation still comes first: a bad write is 400, not 503', async () => {
    const r = await admin.post('/api/flags', { name: 'bad name!' });
    assertError(r, 400, 'invalid_value');
  });

  test('SIGTERM while the database is down: held requests answered, exit 0 within 5 s', async () => {
    const c2 = second.client(clientToken);
    const h = hold(c2, '/flags?wait=60', { 'If-None-Match': '"3"' });
    h.catch(() => {});
    await waitHeld(second, 1);
    await second.stop(); // asserts exit 0 in time, no sanitizer report
    const r = await h;
    assert.equal(r.status, 304, `held request at shutdown: ${r.status} ${r.text}`);
  });

  test('the snapshot did not change: same version, same flags', async () => {
    const f = await client.get('/flags');
    assert.deepEqual(f.json, before_.flags);
    assert.equal(await metric('vexil_longpoll_held'), 1, 'the held request is still held');
  });
});

describe('PostgreSQL comes back', () => {
  test('vexil reconnects by itself: /readyz says up within a few seconds', async (t) => {
    await cluster.start();
    const t0 = performance.now();
    const r = await waitFor(async () => {
      const x = await readyz();
      return x.json?.database === 'up' ? x : false;
    }, 6000, 50);
    const ms = performance.now() - t0;
    assert.ok(r, `/readyz still says ${JSON.stringify((await readyz()).json)} 6 s after PostgreSQL came back`);
    assert.deepEqual(r.json, { status: 'ready', database: 'up', version: 3 });
    assert.equal(await metric('vexil_database_up'), 1);
    assert.ok(server.exit === null, 'vexil did not restart or exit');
    t.diagnostic(`/readyz said up ${ms.toFixed(0)} ms after pg_start returned`);
    upAt = performance.now();
  });

  test('nothing of the refused writes was written, not even in part', async () => {
    const counts = await tableCounts(url);
    assert.deepEqual(counts, before_.counts, 'row counts of every table');
    assert.equal(await psql(url, 'SELECT version FROM vexil_state'), '3');
    assert.equal(await psql(url, "SELECT count(*) FROM flags WHERE name = 'dbd_new'"), '0');
    assert.equal(await psql(url, "SELECT count(*) FROM flag_events WHERE flag_name = 'dbd_new'"), '0');
    assert.equal(await psql(url, "SELECT count(*) FROM tokens WHERE name = 'during-outage'"), '0');
    assert.equal(await psql(url, `SELECT count(*) FROM tokens WHERE id = '${before_.spareToken}' AND revoked_at IS NULL`), '1',
      'the token whose revocation was refused is not revoked');
    assert.equal(await psql(url, "SELECT enabled || '|' || percentage || '|' || revision FROM flags JOIN flag_states ON flag = name " +
      "WHERE name = 'dbd_kill' AND environment = 'production'"),
      'true|100|1');
    assert.equal(await psql(url, "SELECT percentage || '|' || owner || '|' || revision FROM flags JOIN flag_states ON flag = name " +
      "WHERE name = 'dbd_half' AND environment = 'production'"),
      '50||2');
    const h = await admin.get('/api/flags/dbd_half/history');
    // history reads go to the database: allow the first one to race the reconnect
    const hist = h.status === 200 ? h : await waitFor(async () => {
      const x = await admin.get('/api/flags/dbd_half/history');
      return x.status === 200 ? x : false;
    }, 3000);
    assert.ok(hist, 'history readable again');
    assert.deepEqual(hist.json, before_.history, 'no event was recorded for the refused writes');
  });

  test('a write succeeds (honouring Retry-After) and reaches the request held across the outage', async (t) => {
    let r;
    let tries = 0;
    const t0 = performance.now();
    for (;;) {
      tries++;
      r = await admin.patch('/api/flags/dbd_kill', { enabled: false });
      if (r.status !== 503 || performance.now() - t0 > 5000) break;
      await sleep(Math.min(1000, 1000 * Number(r.headers.get('retry-after') || 1)));
    }
    assert.equal(r.status, 200, `write after the database came back: ${r.status} ${r.text}`);
    t.diagnostic(`first successful write after ${tries} tries, ${(performance.now() - upAt).toFixed(0)} ms after /readyz said up`);
    assert.equal(r.json.enabled, false);
    assert.equal(r.json.revision, 2);
    const wrote = performance.now();
    const h = await heldAcross;
    assert.ok(performance.now() - wrote < 1000, 'the held request was woken by the write, not by its deadline');
    assert.equal(h.status, 200, `the held request: ${h.status} ${h.text}`);
    assert.deepEqual(h.json, { name: 'dbd_kill', on: false, version: 4 });
    assert.equal(h.headers.get('etag'), '"4"');
    assert.equal(await psql(url, 'SELECT version FROM vexil_state'), '4');
    const f = await client.get('/flags');
    assert.equal(f.json.version, 4);
    assert.equal((await readyz()).json.version, 4);
  });

  test('once Retry-After has passed, every write succeeds (no worker left with a dead connection)', async () => {
    // Writes land on any worker thread; each must have found its way back
    // to the database by now (Retry-After was at most 2 s).
    const wait = 2500 - (performance.now() - upAt);
    if (wait > 0) await sleep(wait);
    for (let i = 0; i < 8; i++) {
      const r = await admin.patch('/api/flags/dbd_half', { description: `after the outage ${i}` });
      assert.equal(r.status, 200, `write ${i} after recovery: ${r.status} ${r.text}`);
      const h = await admin.get('/api/flags/dbd_half/history');
      assert.equal(h.status, 200, `history read ${i} after recovery: ${h.status} ${h.text}`);
    }
    const tk = await admin.post('/api/tokens', { name: 'after-outage', role: 'client' });
    assert.equal(tk.status, 201, tk.text);
    assert.equal((await server.client(tk.json.token).get('/flags')).status, 200);
    assert.equal(await psql(url, "SELECT revision FROM flags WHERE name = 'dbd_half'"), '10');
  });
});
