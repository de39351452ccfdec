// incremental.test.mjs -- an instance applies each change by reading only
// what changed (docs/propagation.md, "Incremental updates"), and must end up
// exactly where a fresh full load would: no change dropped, duplicated or
// applied out of order, whatever the writers and the network do.  The
// reference is always a third instance started after the writes (it loads
// everything), compared byte for byte.  Loopback only; every wait bounded.
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import {
  createDatabase, createFlag, createToken, migrate, PG_URL, psql, Server, sleep,
} from './lib/harness.mjs';
import { waitFor } from './lib/cluster.mjs';
import { TcpProxy } from './lib/proxy.mjs';

/** GET path with exactly these headers (no implicit Accept-Encoding):
 *  {status, headers, body: Buffer}. */
function rawGet(server, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(server.base + path, { headers, timeout: 20000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${path}`)));
    req.on('error', reject);
  });
}

let db, token;
const started = [];

async function serve(url = db.url) {
  const s = new Server(url);
  started.push(s);
  await s.start();
  return s;
}

const auth = () => ({ Authorization: `Bearer ${token}` });
// What a client of the default environment sees as the version.
const dbVersion = async () => Number(await psql(db.url, 'SELECT version FROM environments WHERE is_default'));
// The sequence number of all changes, which notifications carry.
const dbSequence = async () => Number(await psql(db.url, 'SELECT version FROM vexil_state'));

/** The plain GET /flags body of s. */
async function body(s) {
  const r = await rawGet(s, '/flags', auth());
  assert.equal(r.status, 200, r.body.toString());
  return r.body.toString();
}

/** Wait until every server serves the database's version. */
async function settle(servers) {
  const want = await dbVersion();
  for (const s of servers) {
    let last;
    const ok = await waitFor(async () => {
      last = JSON.parse(await body(s)).version;
      return last === want;
    }, 5000);
    assert.ok(ok, `${s.base} serves version ${last}, the database is at ${want}`);
  }
  return want;
}

/** Every server's body equals that of a fresh instance, byte for byte. */
async function assertLikeFreshLoad(servers) {
  const v = await settle(servers);
  const fresh = await serve();
  const want = await body(fresh);
  assert.equal(JSON.parse(want).version, v);
  for (const s of servers) assert.equal(await body(s), want, `${s.base} differs from a full load`);
  await fresh.stop();
  return want;
}

before(async () => {
  db = await createDatabase();
  await migrate(db.url);
  token = await createToken(db.url, 'it-admin', 'admin');
});

after(async () => {
  for (const s of started) await s.kill();
  await db?.drop();
});

describe('incremental updates agree with a full load', () => {
  let a, b;
  before(async () => {
    a = await serve();
    b = await serve();
  });

  test('many concurrent writers on two instances', async () => {
    const admins = [a.client(token), b.client(token)];
    for (let i = 0; i < 12; i++) {
      await createFlag(admins[i % 2], { name: `c${i}`, enabled: i % 3 === 0, percentage: i * 7,
        users: i % 4 === 0 ? [`u${i}`, `v${i}`] : [] });
    }
    // 8 writers, 4 through each instance, 20 writes each on the same 12
    // flags: updates, deletes and re-creates racing one another.
    const writer = async (w) => {
      const admin = admins[w % 2];
      for (let k = 0; k < 20; k++) {
        const name = `c${(w * 5 + k * 3) % 12}`;
        const op = (w + k) % 5;
        let r;
        if (op === 3) r = await admin.del(`/api/flags/${name}`);
        else if (op === 4) r = await admin.post('/api/flags', { name, percentage: k, users: [`w${w}`] });
        else r = await admin.patch(`/api/flags/${name}`, { percentage: (w * 13 + k) % 101, enabled: op === 1, users: op === 2 ? [`w${w}k${k}`] : [] });
        assert.ok([200, 201, 204, 404, 409].includes(r.status), `${r.status} ${r.text}`);
      }
    };
    await Promise.all([...Array(8).keys()].map(writer));
    await assertLikeFreshLoad([a, b]);
  });

  test('deleting and re-creating a flag', async () => {
    const admin = a.client(token);
    await createFlag(admin, { name: 'phoenix', enabled: true, percentage: 100, users: ['x'] });
    // Back to back, so that the other instance often sees both in one update.
    assert.equal((await admin.del('/api/flags/phoenix')).status, 204);
    await createFlag(admin, { name: 'phoenix', description: 'again', percentage: 5 });
    assert.equal((await admin.del('/api/flags/phoenix')).status, 204);
    const want = await assertLikeFreshLoad([a, b]);
    assert.ok(!JSON.parse(want).flags.some((f) => f.name === 'phoenix'));
    await createFlag(admin, { name: 'phoenix', description: 'third', percentage: 7 });
    const again = JSON.parse(await assertLikeFreshLoad([a, b]));
    assert.equal(again.flags.find((f) => f.name === 'phoenix').description, 'third');
  });

  test('a version the change log cannot explain makes a full load', async () => {
    // By hand: a flag edited and the version moved without a log row, then
    // a notification of the new version, as a writer would send it.  (A flag
    // of its own: the racing writers above may have deleted any c<i>.)
    await createFlag(a.client(token), { name: 'hand-edited' });
    await settle([a, b]);
    await psql(db.url, "UPDATE flags SET description = 'edited by hand' WHERE name = 'hand-edited'; " +
      'UPDATE vexil_state SET version = version + 1; UPDATE environments SET version = version + 1');
    const v = await dbSequence();
    await psql(db.url, `SELECT pg_notify('vexil', '${v}')`);
    const want = await assertLikeFreshLoad([a, b]);
    assert.equal(JSON.parse(want).flags.find((f) => f.name === 'hand-edited')?.description, 'edited by hand');
  });

  test('gzip answers decompress to the plain body', async () => {
    const plain = await rawGet(a, '/flags', auth());
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.match(plain.headers.vary ?? '', /Accept-Encoding/);
    // The compressed body is made in the background once a version is
    // served; until then the plain one is the answer.
    for (let i = 0; i < 100; i++) {
      const r = await rawGet(a, '/flags', { ...auth(), 'Accept-Encoding': 'gzip' });
      if (r.headers['content-encoding'] === 'gzip') break;
      assert.equal(r.body.toString(), plain.body.toString(), 'plain until the gzip body is made');
      await sleep(20);
    }
    for (const ae of ['gzip', 'br, gzip;q=0.5', 'x-gzip', '*']) {
      const gz = await rawGet(a, '/flags', { ...auth(), 'Accept-Encoding': ae });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip', ae);
      assert.match(gz.headers.vary ?? '', /Accept-Encoding/);
      assert.equal(gz.headers.etag, plain.headers.etag);
      assert.ok(gz.body.length < plain.body.length);
      assert.equal(gunzipSync(gz.body).toString(), plain.body.toString(), ae);
    }
    for (const ae of ['identity', 'gzip;q=0', 'br', '*;q=0', 'gzip;q=0, *']) {
      const r = await rawGet(a, '/flags', { ...auth(), 'Accept-Encoding': ae });
      assert.equal(r.headers['content-encoding'], undefined, ae);
      assert.equal(r.body.toString(), plain.body.toString(), ae);
    }
  });
});

describe('a change missed while the listener was disconnected', () => {
  let proxy, a, b;
  before(async () => {
    proxy = await new TcpProxy(Number(new URL(PG_URL).port)).start();
    a = await serve();
    b = await serve(proxy.url(db.name)); // B reaches the database through the proxy
  });
  after(async () => {
    await b?.kill();
    await proxy?.close();
  });

  test('is picked up by the full reload after the reconnect', async () => {
    const admin = a.client(token);
    // Flags of its own: which of the c<i> survive the racing writers above
    // is up to the race.
    await createFlag(admin, { name: 'away-edited', percentage: 1 });
    await createFlag(admin, { name: 'away-deleted', percentage: 2 });
    await settle([a, b]);
    proxy.hang();
    proxy.dropAll(); // B's connections die; new ones go nowhere
    await createFlag(admin, { name: 'while-away', percentage: 42 });
    assert.equal((await admin.patch('/api/flags/away-edited', { description: 'changed while away' })).status, 200);
    assert.equal((await admin.del('/api/flags/away-deleted')).status, 204);
    proxy.heal();
    await assertLikeFreshLoad([a, b]);
  });
});
