// reliability.test.mjs -- the kill switch gets through on a bad day
// (docs/api.md §4, §5; docs/propagation.md): no memory is spent on requests
// that will be refused, an instance without a snapshot says "try again"
// rather than "your token is wrong", and a long-lived stream does not keep
// old snapshots alive.  Every count and wait is bounded; only loopback.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  assertError, createDatabase, createFlag, createToken, migrate, PG_URL, psql, Server, sleep, startEnv,
} from './lib/harness.mjs';
import { WAKE_TOTAL_MS, assertWokeBy, settledAt, timeWrite } from './lib/cluster.mjs';
import { TcpProxy } from './lib/proxy.mjs';

const MiB = 1024 * 1024;

/** Resident memory of a process, in bytes (Linux /proc). */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/** One gauge or counter from the /metrics text. */
async function metric(server, name) {
  const r = await fetch(server.base + '/metrics');
  const text = await r.text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

/**
 * Open a connection, send `head` and `bodyBytes` bytes of a larger declared
 * body, and resolve with the status line of the answer (or 0 when none came
 * within `ms`).  The socket is kept open until close() so that the server
 * would still be holding the body if it buffered it.
 */
function partialUpload(port, head, bodyBytes, ms) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (status) => {
      clearTimeout(timer);
      resolve({ status, close: () => sock.destroy() });
    };
    const timer = setTimeout(() => done(0), ms);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) done(Number(m[1]));
    });
    sock.on('connect', () => {
      sock.write(head);
      if (bodyBytes > 0) sock.write(Buffer.alloc(bodyBytes, 'x'));
    });
  });
}

describe('a request that will be refused costs no body memory', () => {
  let env;
  before(async () => { env = await startEnv(); });
  after(async () => { await env?.close(); });

  test('200 unauthenticated uploads declaring 1 MiB: 401 from the headers, RSS flat', async () => {
    const pid = env.server.proc.pid;
    const before = rss(pid);
    const head = 'POST /api/flags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${MiB}\r\n\r\n`;
    // Each sends a quarter of its body and stops: a server that buffers
    // bodies before authenticating has nothing to answer yet.
    const ups = await Promise.all(Array.from({ length: 200 },
      () => partialUpload(env.server.port, head, 256 * 1024, 5000)));
    const grown = rss(pid) - before;
    for (const u of ups) u.close();
    const statuses = ups.map((u) => u.status);
    assert.deepEqual([...new Set(statuses)], [401], `answers: ${statuses.join(',')}`);
    // 200 x 256 KiB = 50 MiB sent; buffering it would show.  Allow for the
    // connections themselves (a 16 KiB pool each) and the allocator.
    assert.ok(grown < 24 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.equal((await env.anon.get('/healthz')).status, 200);
  });

  test('a wrong role, an unknown route and a wrong method are refused from the headers too', async () => {
    const cases = [
      [`POST /api/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.clientToken}\r\n`, 403],
      [`POST /api/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.adminToken}\r\n`, 404],
      [`PUT /api/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.adminToken}\r\n`, 405],
    ];
    for (const [h, want] of cases) {
      const u = await partialUpload(env.server.port, h + `Content-Length: ${MiB}\r\n\r\n`, 1024, 3000);
      u.close();
      assert.equal(u.status, want, h.split('\r\n')[0]);
    }
  });

  test('a body sent to a route that reads none is not kept either', async () => {
    const pid = env.server.proc.pid;
    const before = rss(pid);
    const head = `GET /flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.clientToken}\r\n` +
      `Content-Length: ${MiB}\r\n\r\n`;
    // Admitted (a valid token), so nothing is answered before the body ends.
    const ups = await Promise.all(Array.from({ length: 200 },
      () => partialUpload(env.server.port, head, 256 * 1024, 1500)));
    const grown = rss(pid) - before;
    for (const u of ups) u.close();
    assert.ok(grown < 24 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.equal((await env.client.get('/flags')).status, 200);
  });

  test('an admitted upload is still read whole and answered', async () => {
    const r = await env.admin.post('/api/flags', { name: 'after-refusals', description: 'x'.repeat(900) });
    assert.equal(r.status, 201, r.text);
  });
});

describe('before the first snapshot', () => {
  let db;
  let proxy;
  let server;
  let token;
  before(async () => {
    db = await createDatabase();
    await migrate(db.url);
    token = await createToken(db.url, 'early', 'admin');
    // The database answers the start-up migration, then hangs (a failover
    // under way): the instance serves, but has no snapshot to serve from.
    proxy = await new TcpProxy(Number(new URL(PG_URL).port)).start();
    proxy.policy = (n) => (n === 1 ? 'forward' : 'blackhole');
    server = new Server(proxy.url(db.name));
    await server.start();
  });
  after(async () => {
    try {
      await server?.stop();
    } finally { // a failed stop must not leave the proxy open: node would wait for it forever
      await server?.kill();
      await proxy?.close();
      await db?.drop();
    }
  });

  test('a request that needs a token is 503 with Retry-After, never 401', async () => {
    const c = server.client(token);
    for (const p of ['/flags', '/flags/x?user=u', '/api/flags', '/api/stale']) {
      const r = await c.get(p);
      assertError(r, 503, 'unavailable');
      assert.equal(r.headers.get('retry-after'), '1', p);
    }
    for (const p of ['/ofrep/v1/evaluate/flags', '/ofrep/v1/evaluate/flags/x']) {
      const r = await c.post(p, {});
      assert.equal(r.status, 503, p);
    }
    // Even without a token: the instance cannot tell, so it must not say 401.
    assert.equal((await server.client(null).get('/flags')).status, 503);
    assert.equal((await server.client(null).get('/ofrep/v1/events')).status, 503);
  });

  test('the public routes still answer', async () => {
    assert.equal((await server.client(null).get('/healthz')).status, 200);
    assert.equal((await server.client(null).get('/readyz')).status, 503);
  });
});

describe('an OFREP change stream holds no snapshot', () => {
  let env;
  before(async () => {
    env = await startEnv();
    await createFlag(env.admin, { name: 'pinned', enabled: true });
  });
  after(async () => { await env?.close(); });

  test('after changes, only the served snapshot is in memory while a stream is open', async () => {
    const ctl = new AbortController();
    const res = await fetch(env.server.base + '/ofrep/v1/events', {
      headers: { Authorization: `Bearer ${env.clientToken}` }, signal: ctl.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    await reader.read(); // the stream has started
    for (let i = 1; i <= 3; i++) {
      assert.equal((await env.admin.patch('/api/flags/pinned', { percentage: i })).status, 200);
    }
    let live = 0;
    for (let i = 0; i < 40; i++) {
      live = await metric(env.server, 'vexil_snapshots_live');
      if (live === 1) break;
      await sleep(50);
    }
    ctl.abort();
    assert.equal(live, 1, 'snapshots in memory with one stream open after three changes');
  });
});

describe('revocations reach every instance', () => {
  let env;
  let b; // a second instance on the same database
  before(async () => {
    env = await startEnv();
    b = await new Server(env.db.url).start();
  });
  after(async () => {
    await b?.stop();
    await env?.close();
  });

  test('three tokens revoked back-to-back on A are all refused on B within a second', async () => {
    const made = [];
    for (let i = 0; i < 3; i++) {
      const r = await env.admin.post('/api/tokens', { name: `doomed-${i}`, role: 'client' });
      assert.equal(r.status, 201, r.text);
      made.push(r.json);
    }
    for (const t of made) {
      for (let i = 0; i < 40 && (await b.client(t.token).get('/flags')).status !== 200; i++) await sleep(25);
      assert.equal((await b.client(t.token).get('/flags')).status, 200, 'works on B first');
    }
    // Busy B's listener while the revocations arrive: tokens used on B
    // give it last-use stamps to write before its next reload, queries
    // during which libpq queues the notifications that come meanwhile.
    const busy = [];
    for (let i = 0; i < 40; i++) {
      const r = await env.admin.post('/api/tokens', { name: `busy-${i}`, role: 'client' });
      busy.push(r.json.token);
    }
    await sleep(300);
    await Promise.all(busy.map((t) => b.client(t).get('/flags')));
    const t0 = Date.now();
    for (const t of made) assert.equal((await env.admin.del(`/api/tokens/${t.id}`)).status, 204);
    const left = new Set(made.map((t) => t.token));
    while (left.size > 0 && Date.now() - t0 < 1000) {
      for (const s of [...left]) if ((await b.client(s).get('/flags')).status === 401) left.delete(s);
      await sleep(20);
    }
    assert.equal(left.size, 0, `${left.size} revoked token(s) still accepted on B after 1 s`);
  });
});

/** GET with a timeout; resolves {status, ms} (status 0 when it failed). */
async function timedGet(url, headers = {}, ms = 15000) {
  const t0 = Date.now();
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(ms) });
    await r.arrayBuffer();
    return { status: r.status, ms: Date.now() - t0, headers: r.headers };
  } catch {
    return { status: 0, ms: Date.now() - t0 };
  }
}

describe('a database that hangs', () => {
  let db;
  let proxy;
  let a; // through the proxy, whose database connections will hang
  let b; // straight to the database
  let admin;
  let client;
  before(async () => {
    db = await createDatabase();
    await migrate(db.url);
    admin = await createToken(db.url, 'hang-admin', 'admin');
    client = await createToken(db.url, 'hang-client', 'client');
    proxy = await new TcpProxy(Number(new URL(PG_URL).port)).start();
    a = await new Server(proxy.url(db.name), {
      args: ['--db-statement-timeout', '1000', '--db-lock-timeout', '500', '--db-connect-timeout', '1',
        '--threads', '2', '--check-interval', '1'],
    }).start();
    b = await new Server(db.url).start();
    await createFlag(b.client(admin), { name: 'hung', enabled: true, percentage: 10 });
    await createFlag(b.client(admin), { name: 'free', enabled: true });
    // One write through A, so that a database thread of A holds a
    // connection; then every connection of A hangs but its listener's (the
    // one that sent LISTEN: other threads connect at start too, in no
    // fixed order).
    assert.equal((await a.client(admin).patch('/api/flags/hung', { percentage: 11 })).status, 200);
    proxy.hang((p) => !p.listens);
  });
  after(async () => {
    try {
      await a?.kill();
      await b?.stop();
    } finally { // a failed stop must not leave the proxy open: node would wait for it forever
      await b?.kill();
      await proxy?.close();
      await db?.drop();
    }
  });

  test('writes answer 503 in bounded time; reads on every worker keep their speed; a long-poll still wakes', async () => {
    const before = (await b.client(admin).get('/api/flags/hung')).json;
    const historyBefore = (await b.client(admin).get('/api/flags/hung/history')).json.events.length;
    const v = (await a.client(client).get('/flags')).json.version;
    const held = timedGet(`${a.base}/flags?wait=20`, { Authorization: `Bearer ${client}`, 'If-None-Match': `"${v}"` });
    // More writes than A has database and HTTP threads together.
    const t0 = Date.now();
    const writes = Array.from({ length: 8 }, (_, i) => a.client(admin).patch('/api/flags/hung', { percentage: 20 + i })
      .then((r) => ({ ...r, ms: Date.now() - t0 })));
    let slowest = 0;
    let reads = 0;
    while (Date.now() - t0 < 2500) {
      const batch = await Promise.all(Array.from({ length: 20 },
        (_, i) => timedGet(`${a.base}/flags?user=u${reads + i}`, { Authorization: `Bearer ${client}` }, 5000)));
      for (const r of batch) {
        assert.equal(r.status, 200);
        slowest = Math.max(slowest, r.ms);
      }
      reads += batch.length;
    }
    // A write on the other instance reaches the request held on this one.
    const woke = settledAt(held);
    const w = await timeWrite(async () => {
      assert.equal((await b.client(admin).patch('/api/flags/free', { enabled: false })).status, 200);
    });
    const { r: h, at } = await woke;
    assert.equal(h.status, 200, 'the held long-poll answered with the change');
    assertWokeBy(w, at, 'the request held on A, after a write on B,');
    for (const w of await Promise.all(writes)) {
      assertError(w, 503, 'unavailable');
      assert.ok(w.headers.get('retry-after'), 'Retry-After on a refused write');
      assert.ok(w.ms < 9000, `a write answered after ${w.ms} ms`);
    }
    assert.ok(slowest < 1000, `${reads} reads during the hang; the slowest took ${slowest} ms`);
    // Nothing half-written.
    const after = (await b.client(admin).get('/api/flags/hung')).json;
    assert.equal(after.revision, before.revision);
    assert.equal(after.percentage, before.percentage);
    assert.equal((await b.client(admin).get('/api/flags/hung/history')).json.events.length, historyBefore);
  });

  test('the listener notices its own connection hang: /readyz says the database is down', async () => {
    const up = await (await fetch(`${a.base}/readyz`)).json();
    assert.equal(up.database, 'up');
    proxy.hang(); // the listener's connection too
    const t0 = Date.now();
    let r;
    for (;;) {
      r = await fetch(`${a.base}/readyz`);
      const j = await r.json();
      if (j.database === 'down' || Date.now() - t0 > 8000) break;
      await sleep(100);
    }
    assert.equal(r.status, 200, 'still ready: reads are served from the snapshot');
    assert.ok(Date.now() - t0 <= 8000, `database still "up" ${Date.now() - t0} ms after the hang`);
    const read = await timedGet(`${a.base}/flags?user=x`, { Authorization: `Bearer ${client}` });
    assert.equal(read.status, 200);
  });

  test('SIGTERM while writes wait on the hung database: exit 0 within 5 s', async () => {
    const w = a.client(admin).patch('/api/flags/hung', { percentage: 33 }).catch(() => ({ status: 0 }));
    await sleep(200);
    await a.stop(); // asserts exit status 0 within 5 s, no sanitizer report
    const r = await w;
    assert.ok([0, 503].includes(r.status), `the waiting write got ${r.status}`);
  });
});

describe('a row lock held by another session', () => {
  let env;
  before(async () => {
    env = await startEnv({ args: ['--db-lock-timeout', '1500'] });
    await createFlag(env.admin, { name: 'locked', enabled: true });
    await createFlag(env.admin, { name: 'unlocked', enabled: true });
  });
  after(async () => { await env?.close(); });

  test('a write to the locked flag is 503 after the lock timeout; other writes and reads go on', async () => {
    // A forgotten session holds the row for 4 s.
    const holder = psql(env.db.url,
      "BEGIN; SELECT 1 FROM flags WHERE name = 'locked' FOR UPDATE; SELECT pg_sleep(4); COMMIT;");
    await sleep(400);
    const t0 = Date.now();
    let stuckDone = false;
    const stuck = env.admin.patch('/api/flags/locked', { enabled: false }).then((r) => {
      stuckDone = true;
      return { ...r, ms: Date.now() - t0 };
    });
    await sleep(100); // the stuck write is waiting for the row
    // Every write locks the sequence row first; holding it, the stuck one
    // waits for the row only briefly, then lets the others go.
    const other = await env.admin.patch('/api/flags/unlocked', { percentage: 5 });
    assert.equal(other.status, 200, other.text);
    assert.equal(stuckDone, false, 'a write to another flag is not held up: it was answered before the stuck one');
    const created = await env.admin.post('/api/flags', { name: 'created-meanwhile' });
    assert.equal(created.status, 201, created.text);
    assert.equal(stuckDone, false, 'nor is a create');
    const read = await timedGet(`${env.server.base}/flags?user=x`, { Authorization: `Bearer ${env.clientToken}` });
    assert.equal(read.status, 200);
    assert.ok(read.ms < 500, `read took ${read.ms} ms`);
    const r = await stuck;
    assertError(r, 503, 'unavailable');
    assert.ok(r.ms < 3000, `the locked write answered after ${r.ms} ms`);
    assert.equal((await env.admin.get('/api/flags/locked')).json.enabled, true, 'nothing written');
    await holder;
    assert.equal((await env.admin.patch('/api/flags/locked', { enabled: false })).status, 200, 'works once the lock is gone');
  });
});

describe('a revoked token loses what it holds open', () => {
  let env;
  let b;
  before(async () => {
    env = await startEnv();
    b = await new Server(env.db.url).start();
    await createFlag(env.admin, { name: 'held', enabled: true });
  });
  after(async () => {
    await b?.stop();
    await env?.close();
  });

  test('a long-poll and an OFREP stream held on B end at once on a revocation on A', async () => {
    const made = (await env.admin.post('/api/tokens', { name: 'leaver', role: 'client' })).json;
    const auth = { Authorization: `Bearer ${made.token}` };
    let v = 0;
    for (let i = 0; i < 40; i++) {
      const r = await b.client(made.token).get('/flags');
      if (r.status === 200) { v = r.json.version; break; }
      await sleep(25);
    }
    assert.ok(v > 0, 'the new token works on B');
    const held = timedGet(`${b.base}/flags?wait=30`, { ...auth, 'If-None-Match': `"${v}"` });
    const ctl = new AbortController();
    const stream = await fetch(`${b.base}/ofrep/v1/events`, { headers: auth, signal: ctl.signal });
    assert.equal(stream.status, 200);
    const reader = stream.body.getReader();
    await reader.read(); // started
    const ended = (async () => {
      try {
        for (;;) if ((await reader.read()).done) return performance.now();
      } catch {
        return performance.now();
      }
    })();
    await sleep(300); // both are held now
    const woke = settledAt(held);
    const w = await timeWrite(async () => {
      assert.equal((await env.admin.del(`/api/tokens/${made.id}`)).status, 204);
    });
    const { r: h, at } = await woke;
    assert.equal(h.status, 401, 'the held long-poll is answered 401');
    assertWokeBy(w, at, 'the held long-poll');
    const endAt = await Promise.race([ended, sleep(WAKE_TOTAL_MS).then(() => 0)]);
    ctl.abort();
    assert.ok(endAt > 0, `the stream did not end within ${WAKE_TOTAL_MS} ms of the revocation`);
    assertWokeBy(w, endAt, 'the OFREP stream\'s end');
    // Requests of other tokens held at the same time are not touched.
    assert.equal((await b.client(env.clientToken).get('/flags')).status, 200);
  });
});

describe('a rollback gets through a full connection table', () => {
  let env;
  before(async () => {
    // The waiting cap defaults to 9/10 of the connection cap.
    env = await startEnv({ args: ['--max-connections', '100', '--idle-timeout', '30'] });
    await createFlag(env.admin, { name: 'rollback', enabled: true });
  });
  after(async () => { await env?.close(); });

  test('100 clients holding long-polls: PATCH enabled=false succeeds and wakes every held one', async () => {
    const v = (await env.client.get('/flags')).json.version;
    const head = `GET /flags?wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.clientToken}\r\n` +
      `If-None-Match: "${v}"\r\n\r\n`;
    const socks = [];
    const answers = [];
    for (let i = 0; i < 100; i++) {
      const s = net.connect(env.server.port, '127.0.0.1');
      s.on('error', () => {});
      let got = '';
      answers.push(new Promise((resolve) => {
        s.on('data', (d) => {
          got += d.toString('latin1');
          const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
          if (m && got.includes('\r\n\r\n')) resolve({ status: Number(m[1]), at: performance.now() });
        });
        s.on('close', () => resolve({ status: 0, at: performance.now() }));
      }));
      s.on('connect', () => s.write(head));
      socks.push(s);
    }
    await sleep(1000);
    const early = (await Promise.race([Promise.all(answers), sleep(10).then(() => null)])) ?? [];
    // The rollback comes on a connection of its own, as an operator's would.
    const body = '{"enabled":false}';
    const w = await timeWrite(() => partialUpload(env.server.port,
      `PATCH /api/flags/rollback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.adminToken}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, 0, 5000));
    const r = w.value;
    r.close();
    assert.equal(r.status, 200, 'the rollback was let in');
    const got = await Promise.race([Promise.all(answers), sleep(WAKE_TOTAL_MS).then(() => null)]);
    for (const s of socks) s.destroy();
    assert.ok(got, 'every held client was answered');
    const woken = got.filter((a) => a.status === 200);
    const refused = got.filter((a) => a.status === 503 || a.status === 0);
    assert.equal(woken.length + refused.length, 100);
    assert.ok(woken.length >= 80, `${woken.length} held long-polls woke (the rest were refused at the cap)`);
    for (const a of woken) assertWokeBy(w, a.at, 'a held request');
    assert.equal(early.length, 0);
  });
});
