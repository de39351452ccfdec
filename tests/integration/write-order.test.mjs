// write-order.test.mjs -- writes of every kind, racing one another on two
// instances, never deadlock and never fail for it.  Every write that changes
// what is served locks the sequence row first and only then the rows of what
// it changes (server/store.c, store_write_transaction), so no two of them
// can wait on each other in a cycle.  Without that order a flag create (which
// needs the sequence row first) and a delete of the same name, or a create
// naming a segment and an update of that segment, deadlock: PostgreSQL breaks
// the cycle only after its deadlock_timeout, the others queue behind it past
// the lock timeout, and a write answers 503.  The proof is PostgreSQL's own
// count of deadlocks in the test's database, read after the instances exited
// (a backend reports its statistics at exit), plus every answer's status.
// Loopback only; every request bounded.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createDatabase, createFlag, createToken, migrate, psql, Server } from './lib/harness.mjs';

let db, token;
const servers = [];

before(async () => {
  db = await createDatabase();
  await migrate(db.url);
  token = await createToken(db.url, 'it-admin', 'admin');
});

after(async () => {
  for (const s of servers) await s.kill();
  await db?.drop();
});

/** A small seeded PRNG: numbers in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const deadlocks = async () =>
  Number(await psql(db.url, 'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()'));

test('flag, segment, environment and plan writers racing on two instances: no deadlock, no 503', { timeout: 120000 }, async () => {
  for (let i = 0; i < 2; i++) {
    const s = new Server(db.url);
    servers.push(s);
    await s.start();
  }
  const admins = servers.map((s) => s.client(token));
  const N_FLAGS = 4, N_SEGS = 3;
  assert.equal((await admins[0].post('/api/environments', { name: 'staging' })).status, 201);
  for (let i = 0; i < N_SEGS; i++) {
    const r = await admins[0].post('/api/segments', { name: `s${i}`, users: [`u${i}`] });
    assert.equal(r.status, 201, r.text);
  }
  for (let i = 0; i < N_FLAGS; i++) await createFlag(admins[i % 2], { name: `f${i}`, segments: [`s${i % N_SEGS}`] });
  const before = await deadlocks();

  const plan = { steps: [{ percentage: 5, hold_seconds: 3600 }, { percentage: 100 }] };
  const statuses = {};
  const bad = [];
  // 8 writers, 4 through each instance, 24 writes each on the same few rows:
  // creates and deletes of the same names, updates naming the segments that
  // other writers update, plans started, advanced and aborted, environments
  // created and deleted -- every lock a write takes, in every interleaving.
  const writer = async (w) => {
    const admin = admins[w % 2];
    const rand = mulberry32(w + 1); // the same mix on every run
    for (let k = 0; k < 24; k++) {
      const f = `f${Math.floor(rand() * N_FLAGS)}`;
      const seg = `s${Math.floor(rand() * N_SEGS)}`;
      const planPath = `/api/flags/${f}/plan`;
      let r;
      switch (Math.floor(rand() * 8)) {
        case 0: r = await admin.del(`/api/flags/${f}`); break;
        case 1: case 6: r = await admin.post('/api/flags', { name: f, percentage: k, segments: [seg] }); break;
        case 2:
          r = k % 2 ? await admin.patch(`/api/flags/${f}`, { percentage: (w * 13 + k) % 101, enabled: true, segments: [seg] })
            : await admin.patch(`/api/flags/${f}?env=staging`, { enabled: false });
          break;
        case 3: r = await admin.patch(`/api/segments/${seg}`, { users: [`w${w}k${k}`, `u${k}`] }); break;
        case 4: r = await admin.request('PUT', `${planPath}?env=staging`, { body: plan }); break;
        case 5: r = await admin.post(`${planPath}/${k % 2 ? 'advance' : 'abort'}?env=staging`); break;
        default:
          r = k % 2 ? await admin.post('/api/environments', { name: `e${w}` }) : await admin.del(`/api/environments/e${w}`);
      }
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (![200, 201, 204, 404, 409].includes(r.status)) bad.push(`${r.status} ${r.text}`);
    }
  };
  await Promise.all([...Array(8).keys()].map(writer));
  assert.deepEqual(bad, [], `answers other than 200/201/204/404/409 (all: ${JSON.stringify(statuses)})`);
  assert.ok((statuses[200] ?? 0) + (statuses[201] ?? 0) + (statuses[204] ?? 0) >= 8 * 24 / 3,
    `most writes took effect: ${JSON.stringify(statuses)}`);

  // Each backend reports its statistics when it exits.
  for (const s of servers) await s.stop();
  let n = await deadlocks();
  for (let i = 0; i < 20 && n === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    n = await deadlocks();
  }
  assert.equal(n - before, 0, `deadlocks PostgreSQL broke among the writers (answers: ${JSON.stringify(statuses)})`);
});
