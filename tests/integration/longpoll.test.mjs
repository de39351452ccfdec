// docs/api.md §2 long-poll (wait=S with If-None-Match), docs/propagation.md
// change propagation between instances, docs/api.md §3 token revocation
// across instances, §5 the cap on held requests, docs/operations.md §1
// SIGTERM with held requests.  Issue "Rollback in under a second": a held
// request learns of a change through the notification, at once (the
// figures under load: tests/bench/propagation.sh).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  SANITIZED, STOP_TIMEOUT_MS, assertError, createFlag, currentVersion, sleep, startEnv,
} from './lib/harness.mjs';
import {
  assertWokeBy, hold, settledAt, startServers, timeWrite, waitFor, waitHeld,
} from './lib/cluster.mjs';

// An answer that must not be held at all.
const AT_ONCE_MS = SANITIZED ? 800 : 400;

let env;

before(async () => {
  env = await startEnv();
  await createFlag(env.admin, { name: 'lp_flag', enabled: true, percentage: 100, owner: 'team-a' });
  await createFlag(env.admin, { name: 'lp_other', enabled: false });
});
after(async () => {
  await env?.close(); // and the servers in env.extra
});

/** Assert p has not settled within ms (the request is really held). */
async function assertPending(p, ms, what) {
  const r = await Promise.race([p.then((v) => ({ settled: v })), sleep(ms).then(() => null)]);
  assert.equal(r, null, `${what} was answered at once (${r && r.settled.status}) instead of held`);
}

/** PATCH through client `admin`; resolves timeWrite()'s {sent, answered}. */
function patchFlag(admin, name, body) {
  return timeWrite(async () => {
    const r = await admin.patch(`/api/flags/${name}`, body);
    assert.equal(r.status, 200, `PATCH ${name}: ${r.text}`);
  });
}

/**
 * Hold `p` on `server` (through client c) and wait until the server counts
 * it as held.  Resolves {held: the pending answer} (wrapped, so that awaiting
 * this does not await the answer too).
 */
async function holdAndWait(server, c, p, etag, held = 1) {
  const pr = hold(c, p, { 'If-None-Match': `"${etag}"` });
  pr.catch(() => {}); // asserted by the caller
  await waitHeld(server, held);
  await assertPending(pr, 100, `GET ${p}`);
  return { held: pr };
}

describe('a held request wakes on a change on the same instance', () => {
  test('GET /flags?wait=10: the rollback (enabled false) reaches the held client through the notification', async (t) => {
    const v = await currentVersion(env.client);
    const { held } = await holdAndWait(env.server, env.client, '/flags?wait=10', v);
    const woke = settledAt(held);
    const w = await patchFlag(env.admin, 'lp_flag', { enabled: false });
    const { r, at } = await woke;
    assertWokeBy(w, at, 'the held request', t);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.version, v + 1, 'the new version');
    assert.equal(r.headers.get('etag'), `"${v + 1}"`);
    const f = r.json.flags.find((x) => x.name === 'lp_flag');
    assert.equal(f.enabled, false, 'the new body carries the change');
    assert.deepEqual(r.json, (await env.client.get('/flags')).json, 'same body as a plain GET');
  });

  test('GET /flags?user=U&wait=10 wakes with the new evaluation', async (t) => {
    const v = await currentVersion(env.client);
    const { held } = await holdAndWait(env.server, env.client, '/flags?user=alice&wait=10', v);
    const woke = settledAt(held);
    const w = await patchFlag(env.admin, 'lp_flag', { enabled: true });
    const { r, at } = await woke;
    assertWokeBy(w, at, 'the held request', t);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('etag'), `"${v + 1}"`);
    assert.deepEqual(r.json, { version: v + 1, user: 'alice', flags: { lp_flag: true, lp_other: false } });
  });

  test('GET /flags/<name>?user=U&wait=10 wakes with the new answer', async (t) => {
    const v = await currentVersion(env.client);
    const { held } = await holdAndWait(env.server, env.client, '/flags/lp_flag?user=bob&wait=10', v);
    const woke = settledAt(held);
    const w = await patchFlag(env.admin, 'lp_flag', { enabled: false });
    const { r, at } = await woke;
    assertWokeBy(w, at, 'the held request', t);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { name: 'lp_flag', on: false, version: v + 1 });
    assert.equal(r.headers.get('etag'), `"${v + 1}"`);
  });

  test('every held request wakes, and a change of another flag wakes /flags/<name> too (one global version)', async (t) => {
    const v = await currentVersion(env.client);
    const a = hold(env.client, '/flags?wait=10', { 'If-None-Match': `"${v}"` });
    const b = hold(env.client, '/flags?user=x&wait=10', { 'If-None-Match': `"${v}"` });
    const c = hold(env.client, '/flags/lp_flag?wait=10', { 'If-None-Match': `"${v}"` });
    await waitHeld(env.server, 3);
    const woke = settledAt(Promise.all([a, b, c]));
    const w = await patchFlag(env.admin, 'lp_other', { description: 'touched' });
    const { r: rs, at } = await woke;
    assertWokeBy(w, at, 'the last of the three', t);
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('etag'), `"${v + 1}"`);
      assert.equal(r.json.version, v + 1);
    }
    await waitHeld(env.server, 0);
  });
});

describe('a held request times out with 304', () => {
  for (const p of ['/flags?wait=1', '/flags?user=alice&wait=1', '/flags/lp_flag?user=alice&wait=1']) {
    test(`GET ${p} with the current version: 304 with the ETag after about a second`, async () => {
      const v = await currentVersion(env.client);
      const r = await hold(env.client, p, { 'If-None-Match': `"${v}"` });
      assert.equal(r.status, 304, r.text);
      assert.equal(r.text, '', '304 has no body');
      assert.equal(r.headers.get('etag'), `"${v}"`);
      assert.ok(r.ms >= 950, `answered after ${r.ms.toFixed(0)} ms, before wait=1 passed`);
      assert.ok(r.ms < 2500, `answered after ${r.ms.toFixed(0)} ms, long after wait=1`);
    });
  }

  test('wait=2 holds for two seconds, not one', async () => {
    const v = await currentVersion(env.client);
    const r = await hold(env.client, '/flags?wait=2', { 'If-None-Match': `"${v}"` });
    assert.equal(r.status, 304);
    assert.ok(r.ms >= 1950 && r.ms < 3500, `wait=2 answered after ${r.ms.toFixed(0)} ms`);
    await waitHeld(env.server, 0);
  });
});

describe('wait values and conditions', () => {
  for (const w of ['0', '61', '-1', '1.5', 'abc', '', '1e1', '99999999999999999999', '0x10']) {
    test(`wait=${JSON.stringify(w)} → 400, at once (with and without If-None-Match)`, async () => {
      const v = await currentVersion(env.client);
      for (const p of [`/flags?wait=${encodeURIComponent(w)}`, `/flags/lp_flag?wait=${encodeURIComponent(w)}`,
        `/flags?user=u&wait=${encodeURIComponent(w)}`]) {
        for (const headers of [{ 'If-None-Match': `"${v}"` }, {}]) {
          const r = await hold(env.client, p, headers);
          assertError(r, 400, ['bad_request', 'invalid_value']);
          assert.ok(r.ms < AT_ONCE_MS, `400 took ${r.ms.toFixed(0)} ms`);
        }
      }
    });
  }

  test('wait=60 is accepted: held (not 400) until a change', async () => {
    const v = await currentVersion(env.client);
    const { held } = await holdAndWait(env.server, env.client, '/flags?wait=60', v);
    const { sent } = await patchFlag(env.admin, 'lp_other', { description: 'wait=60' });
    const r = await held;
    assert.ok(performance.now() - sent < 5000, 'woken by the change, not by the 60 s deadline');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.version, v + 1);
  });

  test('wait without a matching If-None-Match answers at once with 200', async () => {
    const v = await currentVersion(env.client);
    const cases = [
      ['no If-None-Match', {}],
      ['an older version', { 'If-None-Match': `"${v - 1}"` }],
      ['a version from the future', { 'If-None-Match': `"${v + 1000}"` }],
    ];
    for (const p of ['/flags?wait=60', '/flags?user=alice&wait=60', '/flags/lp_flag?wait=60']) {
      for (const [what, headers] of cases) {
        const r = await hold(env.client, p, headers);
        assert.equal(r.status, 200, `${p} with ${what}: ${r.text}`);
        assert.equal(r.headers.get('etag'), `"${v}"`);
        assert.ok(r.ms < AT_ONCE_MS, `${p} with ${what} took ${r.ms.toFixed(0)} ms`);
      }
    }
  });

  test('If-None-Match listing the current version among others is held too', async () => {
    const v = await currentVersion(env.client);
    const r = await hold(env.client, '/flags?wait=1', { 'If-None-Match': `"${v - 1}", "${v}"` });
    assert.equal(r.status, 304);
    assert.ok(r.ms >= 950, `answered after ${r.ms.toFixed(0)} ms`);
  });

  test('an unknown flag: 404 at once, with or without wait', async () => {
    for (const p of ['/flags/no_such_flag', '/flags/no_such_flag?wait=2', '/flags/no_such_flag?user=u&wait=30']) {
      const r = await hold(env.client, p);
      assertError(r, 404, 'not_found');
      assert.ok(r.ms < AT_ONCE_MS, `GET ${p} took ${r.ms.toFixed(0)} ms`);
    }
  });

  test('an unknown flag with the current version and wait: 404 at once, or held until the flag set changes', async () => {
    // The contract is silent on the mix: answering 404 (RFC 9110 §13.1.2: no
    // representation, so the condition holds) and holding on the global
    // version (the flag may be created) are both reasonable; a hold must
    // then end with the flag once it exists.
    const v = await currentVersion(env.client);
    const pr = hold(env.client, '/flags/lp_late?user=u&wait=30', { 'If-None-Match': `"${v}"` });
    pr.catch(() => {});
    const early = await Promise.race([pr, sleep(AT_ONCE_MS).then(() => null)]);
    if (early) {
      assertError(early, 404, 'not_found');
      return;
    }
    await waitHeld(env.server, 1);
    const sent = performance.now();
    await createFlag(env.admin, { name: 'lp_late', enabled: true, percentage: 100 });
    const wrote = performance.now() - sent;
    const r = await pr;
    const ms = performance.now() - sent;
    // Only "the change, not the 30 s deadline" matters here: the wake
    // itself is asserted above.
    assert.ok(ms < 5000, `woken ${ms.toFixed(0)} ms after the create (which took ${wrote.toFixed(0)} ms)`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { name: 'lp_late', on: true, version: v + 1 });
  });

  test('without a token a long-poll is refused (401), not held', async () => {
    const v = await currentVersion(env.client);
    const r = await hold(env.anon, '/flags?wait=30', { 'If-None-Match': `"${v}"` });
    assert.equal(r.status, 401);
    assert.ok(r.ms < AT_ONCE_MS);
  });
});

describe('two instances on one database', () => {
  let b;
  before(async () => {
    [b] = await startServers(env.db.url, 1);
    env.extra.push(b);
  });

  test('both serve the same version and ETag', async () => {
    const ra = await env.client.get('/flags');
    const rb = await b.client(env.clientToken).get('/flags');
    assert.equal(rb.status, 200);
    assert.deepEqual(rb.json, ra.json);
    assert.equal(rb.headers.get('etag'), ra.headers.get('etag'));
  });

  test('a request held on B wakes when a flag changes through A, through the notification', async (t) => {
    const bc = b.client(env.clientToken);
    const v = await currentVersion(bc);
    const { held } = await holdAndWait(b, bc, '/flags?wait=10', v);
    const { held: heldFlag } = await holdAndWait(b, bc, '/flags/lp_flag?user=carol&wait=10', v, 2);
    const woke = settledAt(Promise.all([held, heldFlag]));
    const w = await patchFlag(env.admin, 'lp_flag', { enabled: true, percentage: 100 });
    const { r: [r, rf], at } = await woke;
    assertWokeBy(w, at, 'B\'s held requests', t);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.version, v + 1);
    assert.equal(r.headers.get('etag'), `"${v + 1}"`);
    assert.equal(r.json.flags.find((x) => x.name === 'lp_flag').enabled, true);
    assert.deepEqual(rf.json, { name: 'lp_flag', on: true, version: v + 1 });
  });

  test('a change through B wakes a request held on A (both directions)', async (t) => {
    const v = await currentVersion(env.client);
    const { held } = await holdAndWait(env.server, env.client, '/flags?wait=10', v);
    const woke = settledAt(held);
    const w = await patchFlag(b.client(env.adminToken), 'lp_flag', { percentage: 40 });
    const { r, at } = await woke;
    assertWokeBy(w, at, 'B → A: the held request', t);
    assert.equal(r.status, 200);
    assert.equal(r.json.version, v + 1);
  });

  test('a token revoked through A stops working on B within a second', async () => {
    const c = await env.admin.post('/api/tokens', { name: 'lp-revoke-me', role: 'client' });
    assert.equal(c.status, 201, c.text);
    const tokB = b.client(c.json.token);
    // A new token reaches B through the same path; give it the same second.
    const seen = await waitFor(async () => (await tokB.get('/flags')).status === 200, 1000);
    assert.ok(seen, 'a token created through A works on B within a second');
    const d = await env.admin.del(`/api/tokens/${encodeURIComponent(c.json.id)}`);
    assert.equal(d.status, 204, d.text);
    const t0 = performance.now();
    let r;
    for (;;) {
      r = await tokB.get('/flags');
      if (r.status !== 200 || performance.now() - t0 > 2000) break;
      await sleep(20);
    }
    const ms = performance.now() - t0;
    assert.equal(r.status, 401, `the revoked token still works on B after ${ms.toFixed(0)} ms`);
    assert.ok(ms < 1000, `revocation reached B after ${ms.toFixed(0)} ms`);
    assert.equal(r.headers.get('www-authenticate')?.split(' ')[0], 'Bearer');
    assert.equal((await b.client(c.json.token).get('/flags?wait=5')).status, 401, 'and cannot long-poll');
  });
});

describe('the cap on held requests (--max-waiters 3)', () => {
  let s;
  let sc;
  before(async () => {
    [s] = await startServers(env.db.url, 1, { args: ['--max-waiters', '3'] });
    env.extra.push(s);
    sc = s.client(env.clientToken);
  });

  test('the 4th held request gets 503 with Retry-After; the daemon keeps serving', async () => {
    const v = await currentVersion(sc);
    const inm = { 'If-None-Match': `"${v}"` };
    const held = [hold(sc, '/flags?wait=10', inm), hold(sc, '/flags?user=a&wait=10', inm),
      hold(sc, '/flags/lp_flag?wait=10', inm)];
    for (const h of held) h.catch(() => {});
    await waitHeld(s, 3);
    const fourth = await hold(sc, '/flags?wait=10', inm);
    assertError(fourth, 503, 'unavailable');
    const ra = fourth.headers.get('retry-after');
    assert.match(ra || '', /^\d+$/, `Retry-After is a number of seconds: ${ra}`);
    assert.ok(fourth.ms < AT_ONCE_MS, `503 took ${fourth.ms.toFixed(0)} ms`);
    // Still serving everything that is not a hold.
    assert.equal((await sc.get('/flags')).status, 200);
    assert.equal((await sc.get('/flags', { headers: inm })).status, 304);
    assert.equal((await s.client(null).get('/healthz')).status, 200);
    assert.equal((await s.client(env.adminToken).get('/api/flags')).status, 200);
    // The three held ones are still held, and a change wakes them all.
    for (const h of held) await assertPending(h, 10, 'a held request under the cap');
    const { sent } = await patchFlag(env.admin, 'lp_other', { description: 'cap test' });
    const rs = await Promise.all(held);
    assert.ok(performance.now() - sent < 3000, 'woken by the change, not by the 10 s deadline');
    for (const r of rs) assert.equal(r.status, 200, r.text);
    // The slots are free again.
    await waitHeld(s, 0);
    const v2 = await currentVersion(sc);
    const again = await hold(sc, '/flags?wait=1', { 'If-None-Match': `"${v2}"` });
    assert.equal(again.status, 304, 'a hold after the others ended is accepted again');
  });

  test('timed-out holds free their slots too', async () => {
    const v = await currentVersion(sc);
    const inm = { 'If-None-Match': `"${v}"` };
    const rs = await Promise.all([1, 2, 3].map(() => hold(sc, '/flags?wait=1', inm)));
    for (const r of rs) assert.equal(r.status, 304);
    await waitHeld(s, 0);
    const more = await Promise.all([1, 2, 3].map(() => hold(sc, '/flags?wait=1', inm)));
    for (const r of more) assert.equal(r.status, 304, `after timeouts: ${r.status} ${r.text}`);
  });

  test('clients that hang up free their slots by the deadline at the latest', async () => {
    const v = await currentVersion(sc);
    const inm = { 'If-None-Match': `"${v}"` };
    const gone = [1, 2, 3].map(() => hold(sc, '/flags?wait=1', inm, { timeout: 200 }).catch((e) => e));
    for (const g of gone) assert.ok((await g) instanceof Error, 'the client gave up');
    const freed = await waitFor(async () => {
      const r = await hold(sc, '/flags?wait=1', inm);
      return r.status === 304;
    }, 4000, 100);
    assert.ok(freed, 'slots of abandoned holds were never freed');
    assert.equal((await s.client(null).get('/healthz')).status, 200);
  });
});

describe('SIGTERM with held requests', () => {
  test('held requests are answered (200 or 304) and the process exits 0 within 5 s', async () => {
    const [s] = await startServers(env.db.url, 1);
    env.extra.push(s);
    const sc = s.client(env.clientToken);
    const v = await currentVersion(sc);
    const inm = { 'If-None-Match': `"${v}"` };
    const held = [hold(sc, '/flags?wait=60', inm), hold(sc, '/flags?user=z&wait=60', inm),
      hold(sc, '/flags/lp_flag?wait=60', inm)].map((p) => p.catch((e) => e));
    await waitHeld(s, 3);
    const t0 = performance.now();
    const stopped = s.stop(); // asserts exit 0 within STOP_TIMEOUT_MS and no sanitizer report
    const rs = await Promise.all(held);
    const answeredMs = performance.now() - t0;
    const ms = await stopped;
    for (const r of rs) {
      assert.ok(!(r instanceof Error), `a held request was dropped at shutdown: ${r?.message} ${r?.cause?.code ?? ''}`);
      assert.ok(r.status === 200 || r.status === 304, `held request answered ${r.status} at shutdown`);
      if (r.status === 304) assert.equal(r.headers.get('etag'), `"${v}"`);
    }
    assert.ok(answeredMs < 5000, `held requests answered ${answeredMs.toFixed(0)} ms after SIGTERM`);
    assert.ok(ms < STOP_TIMEOUT_MS, `exit after ${ms} ms`);
    // Nothing listens any more.
    await assert.rejects(fetch(s.base + '/healthz', { signal: AbortSignal.timeout(1000) }));
  });
});
