// docs/api.md §9 webhooks, end to end: vexil posting to real receivers
// (lib/receiver.mjs: a Node http server that checks every X-Vexil-Signature
// over the raw body and can answer 200, 500, late, never, reset the
// connection, or be down and come back on the same port).
//
// Registration and its refusals; every kind of change (flag create, update,
// delete, revert, plan step, plan halt by an alert, segment and environment
// create, update, delete) arriving once, in order, signed, with the fields
// and the before/after of the histories; the events filter and the slack
// format's text; retries (500, a reset, a receiver down for a while) with
// every attempt recorded under one X-Vexil-Delivery; SIGKILL between the
// commit and the delivery; two instances on one database delivering each
// event once, also after the delivering one is killed, and a burst drained at
// the receiver's pace; a change committing after a later one still delivered
// in id order; a receiver that never answers delaying neither the writes nor
// another webhook by more than its 5 s timeout; the vexil_webhook_* metrics
// of docs/operations.md.
//
// The retry schedule is real (1 s, 2 s, 4 s, ...), so outages are a few
// seconds long.  Every wait is bounded.  The groups (describe) are
// independent, each on its own database with its own receivers, and run
// concurrently.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, SANITIZED, Server, UUID, assertError, createFlag, projectVersion, psql, sleep, startEnv, tableCounts,
} from './lib/harness.mjs';
import { Receiver } from './lib/receiver.mjs';

// A change reaches a healthy receiver within this (the sender looks every
// 0.5 s, and at once on a change's notification).
const DELIVER_MS = SANITIZED ? 5000 : 3000;
// n events queued at once reach a healthy receiver within drain(n): bounded
// generously (the sender takes one event per webhook per 0.5 s round; how fast
// a backlog should drain is the burst test's question, not every test's).
const drain = (n) => n * 600 + DELIVER_MS;
// How long to watch for a repeat that should not come.
const QUIET_MS = 1200;
// docs/api.md §9: a slow receiver delays another webhook by at most its 5 s
// timeout; plus a round and the observer.
const OTHER_WEBHOOK_MS = SANITIZED ? 7500 : 6000;
// The standby instance takes the sender's lock within a second of the
// holder's death; plus a round and the receiver's 300 ms.
const TAKEOVER_MS = SANITIZED ? 5000 : 3000;
// 24 events to a receiver that answers at once, after the writes.
const BURST_MS = SANITIZED ? 6000 : 3000;
// A write while a receiver never answers: absolute bound (and compared with
// the median of normal writes in the message).
const WRITE_MS = SANITIZED ? 1500 : 500;

const VERSION = projectVersion();
const q = encodeURIComponent;
const WEBHOOK_KEYS = ['created_at', 'events', 'format', 'id', 'url'];
const DELIVERY_KEYS = ['attempts', 'created_at', 'delivered_at', 'event', 'event_id', 'id', 'next_at', 'status'];
const ATTEMPT_KEYS = ['at', 'duration_ms', 'error', 'status_code'];
const EVENTS = ['flag.created', 'flag.updated', 'flag.deleted', 'flag.reverted', 'flag.plan_step',
  'flag.plan_halted', 'segment.created', 'segment.updated', 'segment.deleted', 'environment.created',
  'environment.updated', 'environment.deleted'];

// ---------------------------------------------------------------- helpers

/** Assert fn() becomes truthy within timeout ms; returns its value. */
async function until(fn, timeout, what, every = 25) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
    } catch (e) {
      if (e?.code === 'ERR_ASSERTION') throw e;
      last = undefined;
      if (Date.now() > deadline) throw e;
    }
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeout} ms`);
    await sleep(every);
  }
}

const receivers = [];
after(async () => { await Promise.all(receivers.map((r) => r.close())); });

/** A started receiver with a fresh secret (>= 16 bytes). */
async function receiver(name) {
  const r = await new Receiver(`whsec-${name}-${randomBytes(12).toString('hex')}`, name).start();
  receivers.push(r);
  return r;
}

function assertWebhook(w, what = 'webhook') {
  assert.ok(w && typeof w === 'object', `${what}: ${JSON.stringify(w)}`);
  assert.deepEqual(Object.keys(w).sort(), WEBHOOK_KEYS, `${what} fields (never the secret): ${JSON.stringify(w)}`);
  assert.match(w.id, UUID);
  assert.match(w.created_at, RFC3339_MS);
  assert.ok(Array.isArray(w.events));
  assert.ok(['json', 'slack'].includes(w.format), w.format);
  return w;
}

/** Register rec as a webhook, asserting 201 and the answer; returns the webhook. */
async function register(admin, rec, extra = {}) {
  const r = await admin.post('/api/webhooks', { url: rec.url, secret: rec.secret, ...extra });
  assert.equal(r.status, 201, `POST /api/webhooks: ${r.status} ${r.text}`);
  assertWebhook(r.json, 'POST /api/webhooks');
  assert.ok(!r.text.includes(rec.secret), 'the answer shows the secret');
  assert.equal(r.json.url, rec.url);
  assert.deepEqual(r.json.events, extra.events ?? []);
  assert.equal(r.json.format, extra.format ?? 'json');
  return r.json;
}

/** GET .../deliveries (asserting 200 and the shape); returns the list. */
async function deliveries(admin, id, limit) {
  const r = await admin.get(`/api/webhooks/${id}/deliveries${limit ? `?limit=${limit}` : ''}`);
  assert.equal(r.status, 200, `deliveries of ${id}: ${r.status} ${r.text}`);
  assert.deepEqual(Object.keys(r.json), ['deliveries']);
  const list = r.json.deliveries;
  for (const d of list) {
    assert.deepEqual(Object.keys(d).sort(), DELIVERY_KEYS, `delivery fields: ${JSON.stringify(d)}`);
    assert.match(d.id, UUID);
    assert.ok(Number.isInteger(d.event_id), `event_id ${d.event_id}`);
    assert.ok(EVENTS.includes(d.event), d.event);
    assert.ok(['pending', 'delivered', 'failed'].includes(d.status), d.status);
    assert.match(d.created_at, RFC3339_MS);
    if (d.status === 'pending') assert.match(d.next_at ?? '', RFC3339_MS, `pending has next_at: ${JSON.stringify(d)}`);
    else assert.equal(d.next_at, null, `next_at is null unless pending: ${JSON.stringify(d)}`);
    if (d.status === 'delivered') assert.match(d.delivered_at ?? '', RFC3339_MS);
    else assert.equal(d.delivered_at, null, `delivered_at: ${JSON.stringify(d)}`);
    for (const a of d.attempts) {
      assert.deepEqual(Object.keys(a).sort(), ATTEMPT_KEYS, `attempt fields: ${JSON.stringify(a)}`);
      assert.match(a.at, RFC3339_MS);
      assert.ok(Number.isInteger(a.duration_ms) && a.duration_ms >= 0, `duration_ms ${a.duration_ms}`);
      assert.ok(a.status_code === null || Number.isInteger(a.status_code), `status_code ${a.status_code}`);
      assert.ok(a.error === null || (typeof a.error === 'string' && a.error.length > 0), `error ${a.error}`);
    }
    for (let i = 1; i < d.attempts.length; i++) {
      assert.ok(Date.parse(d.attempts[i].at) >= Date.parse(d.attempts[i - 1].at), 'attempts oldest first');
    }
  }
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i].event_id < list[i - 1].event_id, `deliveries newest first: ${list.map((d) => d.event_id)}`);
  }
  return list;
}

/** The delivery of event id among a webhook's deliveries. */
async function deliveryOf(admin, hookId, eventId) {
  const d = (await deliveries(admin, hookId, 500)).find((x) => x.event_id === eventId);
  assert.ok(d, `no delivery of event ${eventId} for webhook ${hookId}`);
  return d;
}

/** Check the headers and the body's shape of one request of a receiver. */
function assertRequest(r, { slack = false } = {}) {
  const h = r.headers;
  assert.equal(r.method, 'POST');
  assert.match(h['content-type'] ?? '', /^application\/json\b/, 'Content-Type');
  assert.equal(h['user-agent'], `vexil/${VERSION}`, 'User-Agent');
  assert.match(r.delivery ?? '', UUID, 'X-Vexil-Delivery is a UUID');
  assert.match(h['x-vexil-signature'] ?? '', /^sha256=[0-9a-f]{64}$/, 'X-Vexil-Signature');
  assert.ok(r.signatureOk);
  const b = r.json;
  assert.ok(b && typeof b === 'object' && !Array.isArray(b), `body: ${r.raw}`);
  assert.ok(EVENTS.includes(b.event), `event ${b.event}`);
  const kind = b.event.split('.')[0];
  const keys = ['actor', 'after', 'at', 'before', 'environments', 'event', 'id', kind, ...(slack ? ['text'] : [])];
  assert.deepEqual(Object.keys(b).sort(), keys.sort(), `body fields of ${b.event}: ${r.raw}`);
  assert.ok(Number.isInteger(b.id) && b.id > 0, `id ${b.id}`);
  assert.match(b.at, RFC3339_MS);
  assert.equal(typeof b.actor, 'string');
  assert.equal(typeof b[kind], 'string');
  assert.ok(Array.isArray(b.environments), `environments: ${r.raw}`);
  if (slack) assert.ok(typeof b.text === 'string' && b.text.length > 0, `text: ${r.raw}`);
  return b;
}

/**
 * The receiver's stream: every request well formed, one X-Vexil-Delivery per
 * event and one event per X-Vexil-Delivery, the events taken (2xx) each
 * exactly once and in strictly increasing id order.  Returns the bodies
 * taken, in order.
 */
function assertStream(rec, { slack = false, once = true } = {}) {
  const all = rec.all();
  for (const r of all) assertRequest(r, { slack });
  const idOf = new Map();
  const evOf = new Map();
  for (const r of all) {
    const id = r.json.id;
    if (!idOf.has(id)) idOf.set(id, r.delivery);
    assert.equal(r.delivery, idOf.get(id), `event ${id} came with two X-Vexil-Delivery: ${idOf.get(id)}, ${r.delivery}`);
    if (!evOf.has(r.delivery)) evOf.set(r.delivery, id);
    assert.equal(evOf.get(r.delivery), id, `X-Vexil-Delivery ${r.delivery} carried events ${evOf.get(r.delivery)} and ${id}`);
  }
  const ok = rec.ok();
  const ids = ok.map((r) => r.json.id);
  const firsts = [];
  for (const id of ids) if (!firsts.includes(id)) firsts.push(id);
  for (let i = 1; i < firsts.length; i++) {
    assert.ok(firsts[i] > firsts[i - 1], `${rec.name}: event ids not in increasing order: ${JSON.stringify(ids)}`);
  }
  if (once) assert.deepEqual(ids, firsts, `${rec.name}: an event taken twice: ${JSON.stringify(ids)}`);
  // The same event always has the same body (a retry is the same request).
  for (const r of all) {
    const first = all.find((x) => x.json.id === r.json.id);
    assert.ok(first.raw.equals(r.raw), `event ${r.json.id}: a retry's body differs`);
  }
  const seen = new Set();
  return ok.filter((r) => !seen.has(r.json.id) && seen.add(r.json.id)).map((r) => r.json);
}

/** One sample of /metrics (name with labels as written there), or undefined. */
async function metric(server, name, labels = '') {
  const r = await fetch(server.base + '/metrics', { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  const re = new RegExp(`^${name}${labels.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Every history event of a flag (or a segment), oldest first. */
async function history(admin, kind, name) {
  const r = await admin.get(`/api/${kind === 'flag' ? 'flags' : 'segments'}/${q(name)}/history?limit=500`);
  assert.equal(r.status, 200, r.text);
  return r.json.events.slice().reverse();
}

async function patch(client, name, body, e) {
  const r = await client.patch(`/api/flags/${q(name)}${e ? `?env=${q(e)}` : ''}`, body);
  assert.equal(r.status, 200, `PATCH ${name} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
  return r.json;
}

/**
 * The id of the newest event a webhook has a delivery of, delivered or not
 * (the next change's event is above it).
 */
async function lastEventId(admin, hookId) {
  const list = await deliveries(admin, hookId, 1);
  return list.length ? list[0].event_id : 0;
}

/** Wait until rec took (2xx) n events after id `from`; returns their bodies. */
async function waitTaken(rec, from, n, timeout, what) {
  await rec.waitFor((r) => new Set(r.okIds().filter((id) => id > from)).size >= n, timeout, what);
  return rec.ok().map((r) => r.json).filter((b) => b.id > from);
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// ================================================================ the groups

describe('webhooks (docs/api.md §9)', { concurrency: true }, () => {
  // ------------------------------------------------------------ 1
  describe('registration and bad input', { concurrency: false }, () => {
    let env;
    before(async () => { env = await startEnv(); });
    after(async () => { await env?.close(); });

    test('POST answers 201 without the secret; GET lists oldest first; DELETE 204 then 404', async () => {
      const a = await receiver('reg-a');
      const b = await receiver('reg-b');
      let r = await env.admin.get('/api/webhooks');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { webhooks: [] });

      const t0 = Date.now();
      const wa = await register(env.admin, a);
      assert.ok(Math.abs(Date.parse(wa.created_at) - t0) < 5000, `created_at ${wa.created_at}`);
      const wb = await register(env.admin, b, { events: ['flag.updated', 'segment.deleted'], format: 'slack' });
      // the secret boundaries, in bytes: 16 and 1000 (8 two-byte characters are 16 bytes)
      const w16 = (await env.admin.post('/api/webhooks', { url: 'http://10.0.0.1:9/x', secret: 'x'.repeat(16) }));
      assert.equal(w16.status, 201, w16.text);
      const wUtf8 = await env.admin.post('/api/webhooks', { url: 'https://example.com/h', secret: 'é'.repeat(8) });
      assert.equal(wUtf8.status, 201, `8 × "é" is 16 bytes: ${wUtf8.text}`);
      const w1000 = await env.admin.post('/api/webhooks',
        { url: 'http://[::1]:9/h?a=b&c=d', secret: 's'.repeat(1000), events: [], format: 'json' });
      assert.equal(w1000.status, 201, w1000.text);
      assert.deepEqual(w1000.json.events, []);

      r = await env.admin.get('/api/webhooks');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.json), ['webhooks']);
      for (const w of r.json.webhooks) assertWebhook(w, 'GET /api/webhooks');
      assert.deepEqual(r.json.webhooks.map((w) => w.id),
        [wa.id, wb.id, w16.json.id, wUtf8.json.id, w1000.json.id], 'oldest first');
      assert.deepEqual(r.json.webhooks[1], wb, 'the list shows what POST answered');
      for (const s of [a.secret, b.secret, 'x'.repeat(16), 's'.repeat(1000)]) {
        assert.ok(!r.text.includes(s), 'the list shows a secret');
      }

      for (const id of [w16.json.id, wUtf8.json.id, w1000.json.id]) {
        r = await env.admin.del(`/api/webhooks/${id}`);
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, '', '204 has no body');
      }
      assertError(await env.admin.del(`/api/webhooks/${w16.json.id}`), 404, 'not_found');
      assertError(await env.admin.get(`/api/webhooks/${w16.json.id}/deliveries`), 404, 'not_found');
      assertError(await env.admin.get('/api/webhooks/00000000-0000-4000-8000-000000000000/deliveries'), 404, 'not_found');
      assertError(await env.admin.del('/api/webhooks/00000000-0000-4000-8000-000000000000'), 404, 'not_found');
      assertError(await env.admin.get('/api/webhooks/not-a-uuid/deliveries'), 404, 'not_found');
      assertError(await env.admin.del('/api/webhooks/not-a-uuid'), 404, 'not_found');
      assertError(await env.admin.del(`/api/webhooks/${wa.id.toUpperCase()}x`), 404, 'not_found');
      r = await env.admin.get('/api/webhooks');
      assert.deepEqual(r.json.webhooks.map((w) => w.id), [wa.id, wb.id]);
      assert.deepEqual(await deliveries(env.admin, wa.id), [], 'no change yet, no delivery');
      assertError(await env.admin.get(`/api/webhooks/${wa.id}/deliveries?limit=0`), 400, 'invalid_value');
      assertError(await env.admin.get(`/api/webhooks/${wa.id}/deliveries?limit=501`), 400, 'invalid_value');
      assertError(await env.admin.get(`/api/webhooks/${wa.id}/deliveries?limit=x`), 400, 'invalid_value');
      for (const id of [wa.id, wb.id]) assert.equal((await env.admin.del(`/api/webhooks/${id}`)).status, 204);
    });

    test('bad registrations are 400 and change nothing', async () => {
      const before = await tableCounts(env.db.url);
      const url = 'http://127.0.0.1:9/hook';
      const secret = 'a-secret-of-sixteen';
      const cases = [
        [{ url: 'ftp://example.com/x', secret }, 'invalid_value'],
        [{ url: 'javascript:alert(1)', secret }, 'invalid_value'],
        [{ url: 'file:///etc/passwd', secret }, 'invalid_value'],
        [{ url: 'gopher://127.0.0.1:70/', secret }, 'invalid_value'],
        [{ url: 'HTTP//example.com', secret }, 'invalid_value'],
        [{ url: 'example.com/hook', secret }, 'invalid_value'],
        [{ secret }, 'invalid_value'],
        [{ url: '', secret }, 'invalid_value'],
        [{ url: 'http://', secret }, 'invalid_value'],
        [{ url: null, secret }, 'invalid_value'],
        [{ url: 42, secret }, 'invalid_value'],
        [{ url: ['http://a/'], secret }, 'invalid_value'],
        [{ url: 'http://exa mple.com/', secret }, 'invalid_value'],
        [{ url: 'http://example.com/a b', secret }, 'invalid_value'],
        [{ url: ' http://example.com/', secret }, 'invalid_value'],
        [{ url: 'http://example.com/ ', secret }, 'invalid_value'],
        [{ url: 'http://example.com/\t', secret }, 'invalid_value'],
        [{ url: 'http://example.com/\r\nX-Evil: 1', secret }, 'invalid_value'],
        [{ url: 'http://example.com/\u0000', secret }, ['invalid_value', 'invalid_json']],
        [{ url: 'http://example.com/\u007f', secret }, 'invalid_value'],
        [{ url: 'http://example.com/' + 'a'.repeat(2000), secret }, 'invalid_value'],
        [{ url }, 'invalid_value'],
        [{ url, secret: '' }, 'invalid_value'],
        [{ url, secret: 'x'.repeat(15) }, 'invalid_value'],
        [{ url, secret: 'é'.repeat(7) + 'x' }, 'invalid_value'], // 15 bytes, 8 characters
        [{ url, secret: 's'.repeat(1001) }, 'invalid_value'],
        [{ url, secret: 1234567890123456 }, 'invalid_value'],
        [{ url, secret: null }, 'invalid_value'],
        [{ url, secret, events: 'flag.updated' }, 'invalid_value'],
        [{ url, secret, events: { 'flag.updated': true } }, 'invalid_value'],
        [{ url, secret, events: null }, 'invalid_value'],
        [{ url, secret, events: ['flag.exploded'] }, 'invalid_value'],
        [{ url, secret, events: ['flag.updated', 'flag.*'] }, 'invalid_value'],
        [{ url, secret, events: ['FLAG.UPDATED'] }, 'invalid_value'],
        [{ url, secret, events: ['flag'] }, 'invalid_value'],
        [{ url, secret, events: [''] }, 'invalid_value'],
        [{ url, secret, events: [1] }, 'invalid_value'],
        [{ url, secret, events: [null] }, 'invalid_value'],
        [{ url, secret, events: [['flag.updated']] }, 'invalid_value'],
        [{ url, secret, format: 'xml' }, 'invalid_value'],
        [{ url, secret, format: 'SLACK' }, 'invalid_value'],
        [{ url, secret, format: '' }, 'invalid_value'],
        [{ url, secret, format: null }, 'invalid_value'],
        [{ url, secret, format: 1 }, 'invalid_value'],
        [{ url, secret, name: 'x' }, 'unknown_field'],
        [{ url, secret, id: '00000000-0000-4000-8000-000000000000' }, 'unknown_field'],
        [{ url, secret, created_at: '2026-01-01T00:00:00.000Z' }, 'unknown_field'],
        [{ url, secret, Url: url }, 'unknown_field'],
      ];
      for (const [body, code] of cases) {
        const r = await env.admin.post('/api/webhooks', body);
        assert.equal(r.status, 400, `POST /api/webhooks ${JSON.stringify(body).slice(0, 200)}: ${r.text}`);
        assertError(r, 400, code);
      }
      assertError(await env.admin.post('/api/webhooks', [url, secret]), 400, 'bad_request');
      assertError(await env.admin.request('POST', '/api/webhooks', { raw: '{"url":' }), 400, 'invalid_json');
      assertError(await env.admin.request('POST', '/api/webhooks', { raw: '' }), 400, 'invalid_json');
      assertError(await env.admin.request('POST', '/api/webhooks',
        { raw: `{"url":"${url}","url":"${url}","secret":"${secret}"}` }), 400, 'invalid_json');
      assert.deepEqual((await env.admin.get('/api/webhooks')).json, { webhooks: [] });
      assert.deepEqual(await tableCounts(env.db.url), before, 'a refused request writes nothing');
    });

    test('tokens: none is 401, a client token is 403, on every route', async () => {
      const rec = await receiver('reg-auth');
      const w = await register(env.admin, rec);
      const body = { url: rec.url, secret: rec.secret };
      const routes = [
        (c) => c.post('/api/webhooks', body),
        (c) => c.get('/api/webhooks'),
        (c) => c.del(`/api/webhooks/${w.id}`),
        (c) => c.get(`/api/webhooks/${w.id}/deliveries`),
      ];
      const bogus = env.server.client('vx_' + 'A'.repeat(43));
      for (const call of routes) {
        assertError(await call(env.anon), 401, 'unauthorized');
        assertError(await call(bogus), 401, 'unauthorized');
        assertError(await call(env.client), 403, 'forbidden');
      }
      const r = await env.admin.get('/api/webhooks');
      assert.deepEqual(r.json.webhooks.map((x) => x.id), [w.id], 'nothing was added or deleted');
      assert.equal((await env.admin.del(`/api/webhooks/${w.id}`)).status, 204);
    });

    test('a webhook gets only the changes after its registration; deleting it drops what is pending', async () => {
      await createFlag(env.admin, { name: 'before-hook' });
      const rec = await receiver('reg-late');
      const w = await register(env.admin, rec);
      await createFlag(env.admin, { name: 'after-hook' });
      const got = await waitTaken(rec, 0, 1, DELIVER_MS, 'the change after the registration');
      await sleep(QUIET_MS);
      const bodies = assertStream(rec);
      assert.deepEqual(bodies.map((b) => [b.event, b.flag]), [['flag.created', 'after-hook']],
        'nothing from before the registration');
      assert.deepEqual(got.map((b) => b.flag), ['after-hook']);

      // the receiver down: the next change's delivery fails and waits
      await rec.down();
      const n = rec.requests.length;
      await patch(env.admin, 'after-hook', { enabled: true });
      const d = await until(async () => {
        const list = await deliveries(env.admin, w.id);
        return list.find((x) => x.event === 'flag.updated' && x.attempts.length >= 1);
      }, DELIVER_MS, 'a failed attempt of the pending delivery');
      assert.equal(d.status, 'pending');
      assert.equal(d.attempts[0].status_code, null);
      let r = await env.admin.del(`/api/webhooks/${w.id}`);
      assert.equal(r.status, 204, r.text);
      assertError(await env.admin.get(`/api/webhooks/${w.id}/deliveries`), 404, 'not_found');
      await rec.up();
      await sleep(2500); // past the 1 s retry (and the 2 s one after it)
      assert.equal(rec.requests.length, n, 'a deleted webhook\'s pending delivery was sent');
      r = await env.admin.get('/api/webhooks');
      assert.deepEqual(r.json, { webhooks: [] });
      assert.equal((await tableCounts(env.db.url)).webhook_deliveries, 0, 'its deliveries are gone');
    });
  });

  // ------------------------------------------------------------ 2
  describe('every kind of change: once, in order, signed, with its fields', { concurrency: false }, () => {
    let env;
    let all;
    let filtered;
    let slack;
    let hooks;
    // what the script below does, in order: [event, subject]
    const script = [];
    const facts = {}; // answers to compare the bodies with
    before(async () => {
      env = await startEnv();
      all = await receiver('all');
      filtered = await receiver('filtered');
      slack = await receiver('slack');
      hooks = {
        all: await register(env.admin, all),
        filtered: await register(env.admin, filtered,
          { events: ['flag.deleted', 'segment.created', 'flag.plan_halted', 'environment.updated'] }),
        slack: await register(env.admin, slack, { format: 'slack' }),
      };
    });
    after(async () => { await env?.close(); });

    test('flags, segments, environments, plans and alerts: one event per change, in order', async () => {
      const A = env.admin;
      const did = (event, subject) => script.push([event, subject]);
      let r = await A.post('/api/segments', { name: 'beta', description: 'testers', users: ['ann'] });
      assert.equal(r.status, 201, r.text);
      did('segment.created', 'beta');
      await createFlag(A, { name: 'checkout.v2', description: 'one-page checkout', owner: 'payments' });
      did('flag.created', 'checkout.v2');
      await patch(A, 'checkout.v2', { enabled: true });
      did('flag.updated', 'checkout.v2');
      await patch(A, 'checkout.v2', { enabled: false });
      did('flag.updated', 'checkout.v2');
      facts.offAt = script.length - 1;
      await patch(A, 'checkout.v2', { description: 'the one-page checkout' });
      did('flag.updated', 'checkout.v2');
      const h = await history(A, 'flag', 'checkout.v2');
      r = await A.post(`/api/flags/${q('checkout.v2')}/revert`, { event: h[2].id }); // the OFF
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.enabled, true);
      did('flag.reverted', 'checkout.v2');
      r = await A.patch('/api/segments/beta', { users: ['ann', 'bob'] });
      assert.equal(r.status, 200, r.text);
      did('segment.updated', 'beta');
      r = await A.post('/api/environments', { name: 'staging', description: 'pre-release' });
      assert.equal(r.status, 201, r.text);
      facts.stagingCreated = r.json;
      did('environment.created', 'staging');
      r = await A.patch('/api/environments/staging', { description: 'pre-release, employees' });
      assert.equal(r.status, 200, r.text);
      facts.stagingUpdated = r.json;
      did('environment.updated', 'staging');

      // a plan: its first step at once, its second a second later
      await createFlag(A, { name: 'rollout' });
      did('flag.created', 'rollout');
      r = await A.request('PUT', '/api/flags/rollout/plan',
        { body: { steps: [{ percentage: 10, hold_seconds: 1 }, { percentage: 30 }] } });
      assert.equal(r.status, 201, r.text);
      did('flag.plan_step', 'rollout');
      await until(async () => (await A.get('/api/flags/rollout/plan')).json.status === 'done', 4000,
        'the plan\'s second step');
      did('flag.plan_step', 'rollout');

      // an alert halts a plan: flag.updated by alert:X, then flag.plan_halted
      await createFlag(A, { name: 'guarded' });
      did('flag.created', 'guarded');
      r = await A.request('PUT', '/api/flags/guarded/plan',
        { body: { steps: [{ percentage: 5, hold_seconds: 3600 }, { percentage: 100 }] } });
      assert.equal(r.status, 201, r.text);
      did('flag.plan_step', 'guarded');
      facts.guardedRunning = r.json;
      r = await A.post('/api/alerts', {
        version: '4', status: 'firing',
        alerts: [{ status: 'firing', labels: { alertname: 'X', vexil_flag: 'guarded' } }],
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].action, 'disabled', r.text);
      did('flag.updated', 'guarded');
      did('flag.plan_halted', 'guarded');
      facts.guardedHalted = (await A.get('/api/flags/guarded/plan')).json;
      assert.equal(facts.guardedHalted.status, 'halted');

      assert.equal((await A.del(`/api/flags/${q('checkout.v2')}`)).status, 204);
      did('flag.deleted', 'checkout.v2');
      assert.equal((await A.del('/api/segments/beta')).status, 204);
      did('segment.deleted', 'beta');
      facts.stagingBeforeDelete = (await A.get('/api/environments')).json.environments.find((e) => e.name === 'staging');
      assert.equal((await A.del('/api/environments/staging')).status, 204);
      did('environment.deleted', 'staging');

      // everything arrives: once, in order, signed
      // (bounded generously: how fast a backlog drains is the burst test's question)
      const bound = drain(script.length);
      await all.waitFor((x) => x.ok().length >= script.length, bound, `${script.length} events`);
      await slack.waitFor((x) => x.ok().length >= script.length, bound, `${script.length} events`);
      await sleep(QUIET_MS); // and nothing more
      const bodies = assertStream(all);
      const subject = (b) => b.flag ?? b.segment ?? b.environment;
      assert.deepEqual(bodies.map((b) => [b.event, subject(b)]), script, 'the events, in the order of the changes');
      assert.equal(all.requests.length, script.length, 'exactly one request per event');
      facts.bodies = bodies;
    });

    test('each body carries the history\'s event: at, actor, environments, before, after', async () => {
      const A = env.admin;
      const bodies = facts.bodies;
      assert.ok(bodies, 'the first test ran');
      for (const b of bodies) {
        assert.equal(b.actor, b.event === 'flag.plan_step' ? 'plan:it-admin'
          : b.flag === 'guarded' && b.event !== 'flag.created' ? 'alert:X' : 'it-admin', `actor of ${b.id} ${b.event}`);
      }
      // flags: the flag events of each flag are its history, in order
      for (const name of ['checkout.v2', 'rollout', 'guarded']) {
        const hist = await history(A, 'flag', name);
        const mine = bodies.filter((b) => b.flag === name && b.event !== 'flag.plan_halted');
        assert.equal(mine.length, hist.length, `${name}: one event per history event`);
        const names = { create: 'flag.created', update: 'flag.updated', delete: 'flag.deleted',
          revert: 'flag.reverted', plan: 'flag.plan_step', alert: 'flag.updated' };
        hist.forEach((h, i) => {
          const b = mine[i];
          const what = `${name} event ${b.id} (${b.event}) vs history ${h.id} (${h.action})`;
          assert.equal(b.event, names[h.action], what);
          assert.equal(b.at, h.at, `${what}: at`);
          assert.equal(b.actor, h.actor, `${what}: actor`);
          assert.deepEqual(b.environments, h.environments, `${what}: environments`);
          assert.deepEqual(b.before, h.before, `${what}: before`);
          assert.deepEqual(b.after, h.after, `${what}: after`);
        });
      }
      const cv = bodies.filter((b) => b.flag === 'checkout.v2');
      assert.equal(cv[0].before, null, 'a create has no before');
      assert.equal(cv[0].after.name, 'checkout.v2');
      assert.deepEqual(cv[2].environments, ['production'], 'the OFF');
      assert.equal(cv[2].before.environments.production.enabled, true);
      assert.equal(cv[2].after.environments.production.enabled, false);
      assert.deepEqual(cv[3].environments, [], 'a description alone changes no state');
      assert.equal(cv[3].after.description, 'the one-page checkout');
      assert.equal(cv[4].event, 'flag.reverted');
      assert.equal(cv[4].after.environments.production.enabled, true);
      assert.equal(cv.at(-1).after, null, 'a delete has no after');
      assert.deepEqual(cv.at(-1).environments, ['production', 'staging'], 'a delete: every environment');
      const steps = bodies.filter((b) => b.event === 'flag.plan_step' && b.flag === 'rollout');
      assert.deepEqual(steps.map((b) => b.after.environments.production.percentage), [10, 30]);
      for (const b of steps) assert.deepEqual(b.environments, ['production']);

      // the alert: flag.updated by alert:X, then flag.plan_halted with the plan before and after
      const g = bodies.filter((b) => b.flag === 'guarded');
      const off = g.find((b) => b.event === 'flag.updated');
      assert.equal(off.actor, 'alert:X');
      assert.equal(off.after.environments.production.enabled, false);
      const halted = g.find((b) => b.event === 'flag.plan_halted');
      assert.ok(halted.id > off.id, 'plan_halted after the flag.updated');
      assert.equal(halted.actor, 'alert:X');
      assert.deepEqual(halted.environments, ['production']);
      assert.equal(halted.before.status, 'running');
      assert.equal(halted.before.flag, 'guarded');
      assert.deepEqual(halted.before.steps, facts.guardedRunning.steps);
      assert.deepEqual(halted.after, facts.guardedHalted, 'after: the halted plan as GET plan shows it');
      assert.equal(halted.after.reason, 'alert X fired');

      // segments: their history
      const seg = bodies.filter((b) => b.segment === 'beta');
      const sh = await history(A, 'segment', 'beta');
      assert.deepEqual(seg.map((b) => b.event), ['segment.created', 'segment.updated', 'segment.deleted']);
      sh.forEach((h, i) => {
        assert.equal(seg[i].at, h.at);
        assert.equal(seg[i].actor, h.actor);
        assert.deepEqual(seg[i].before, h.before, `segment event ${i}: before`);
        assert.deepEqual(seg[i].after, h.after, `segment event ${i}: after`);
        assert.deepEqual(seg[i].environments, [], 'a segment event changes no environment\'s state');
      });
      assert.deepEqual(seg[1].after.users, ['ann', 'bob']);

      // environments: the environment as the API showed it
      const envs = bodies.filter((b) => b.environment === 'staging');
      assert.deepEqual(envs.map((b) => b.event), ['environment.created', 'environment.updated', 'environment.deleted']);
      for (const b of envs) assert.deepEqual(b.environments, ['staging']);
      assert.equal(envs[0].before, null);
      assert.deepEqual(envs[0].after, facts.stagingCreated);
      assert.deepEqual(envs[1].before, facts.stagingCreated);
      assert.deepEqual(envs[1].after, facts.stagingUpdated);
      assert.deepEqual(envs[2].before, facts.stagingBeforeDelete);
      assert.equal(envs[2].after, null);
      // event ids are increasing and the body's `at` is in order with them
      for (let i = 1; i < bodies.length; i++) {
        assert.ok(Date.parse(bodies[i].at) >= Date.parse(bodies[i - 1].at) - 1,
          `event ${bodies[i].id} at ${bodies[i].at} is before event ${bodies[i - 1].id} at ${bodies[i - 1].at}`);
      }
    });

    test('GET deliveries: one delivered attempt each, under the X-Vexil-Delivery the receiver saw', async () => {
      const list = await deliveries(env.admin, hooks.all.id);
      assert.equal(list.length, script.length);
      const byEvent = new Map(all.ok().map((r) => [r.json.id, r]));
      for (const d of list) {
        const r = byEvent.get(d.event_id);
        assert.ok(r, `delivery of event ${d.event_id} never reached the receiver`);
        assert.equal(d.id, r.delivery, `event ${d.event_id}: the delivery id is X-Vexil-Delivery`);
        assert.equal(d.event, r.json.event);
        assert.equal(d.status, 'delivered', JSON.stringify(d));
        assert.equal(d.attempts.length, 1, JSON.stringify(d));
        assert.equal(d.attempts[0].status_code, 200);
        assert.equal(d.attempts[0].error, null);
        assert.ok(Date.parse(d.delivered_at) >= Date.parse(d.created_at));
      }
      const two = await deliveries(env.admin, hooks.all.id, 2);
      assert.deepEqual(two.map((d) => d.id), list.slice(0, 2).map((d) => d.id), '?limit=2: the two newest');
      const ids = new Set(list.map((d) => d.id));
      for (const d of await deliveries(env.admin, hooks.slack.id)) {
        assert.ok(!ids.has(d.id), 'each webhook has deliveries of its own');
      }
    });

    test('an events filter delivers only those events', async () => {
      await filtered.waitFor((x) => x.ok().length >= 4, drain(4), 'the filtered events');
      await sleep(300);
      const bodies = assertStream(filtered);
      assert.deepEqual(bodies.map((b) => b.event),
        ['segment.created', 'environment.updated', 'flag.plan_halted', 'flag.deleted']);
      assert.equal(filtered.requests.length, 4, 'exactly one request per event');
      const same = facts.bodies.filter((b) => bodies.some((x) => x.id === b.id));
      assert.deepEqual(bodies, same, 'the same events as the unfiltered webhook got');
      assert.equal((await deliveries(env.admin, hooks.filtered.id)).length, 4, 'no delivery of another event');
    });

    test('slack format: the same bodies with a text ("checkout.v2 turned OFF in production by it-admin")', async () => {
      const bodies = assertStream(slack, { slack: true });
      assert.equal(slack.requests.length, script.length, 'exactly one request per event');
      assert.equal(bodies.length, facts.bodies.length);
      bodies.forEach((b, i) => {
        const { text, ...rest } = b;
        assert.deepEqual(rest, facts.bodies[i], `event ${b.id}: the json format's body plus text`);
        const name = b.flag ?? b.segment ?? b.environment;
        assert.ok(text.includes(name), `text names ${name}: ${text}`);
        if (b.event === 'flag.reverted') {
          // who, then what the revert did: "checkout.v2 reverted by it-admin: turned ON at 0 % in production"
          assert.ok(text.startsWith(`${name} reverted by ${b.actor}: `), `a revert says who, then what: ${text}`);
        } else if (b.event !== 'flag.plan_halted') {
          assert.ok(text.endsWith(` by ${b.actor}`), `text ends with the actor: ${text}`);
        }
        assert.doesNotMatch(text, /[\u0000-\u001f]/, 'no control character in the text');
      });
      assert.equal(bodies[facts.offAt].text, 'checkout.v2 turned OFF in production by it-admin');
      // the sentences README.md shows a channel getting
      const texts = bodies.map((b) => b.text);
      for (const t of ['checkout.v2 turned ON at 0 % in production by it-admin',
        'rollout turned ON at 10 % in production by plan:it-admin',
        'rollout rolled out to 30 % in production by plan:it-admin',
        'guarded turned OFF in production by alert:X',
        'guarded: release plan halted in production (alert X fired)']) {
        assert.ok(texts.includes(t), `"${t}" among ${JSON.stringify(texts)}`);
      }
      for (const b of facts.bodies) assert.ok(!('text' in b), 'no text in the json format');
    });
  });

  // ------------------------------------------------------------ 3
  describe('failed attempts: 500s, a reset, the receiver down; the metrics', { concurrency: false }, () => {
    let env;
    let rec;
    let hook;
    before(async () => {
      env = await startEnv();
      rec = await receiver('flaky');
      hook = await register(env.admin, rec);
      await createFlag(env.admin, { name: 'c' });
      await waitTaken(rec, 0, 1, DELIVER_MS, 'the create');
    });
    after(async () => { await env?.close(); });

    test('500 twice, then 200: retried after 1 s and 2 s under one X-Vexil-Delivery, each attempt recorded', async () => {
      const from = await lastEventId(env.admin, hook.id);
      rec.queue(500, 500);
      await patch(env.admin, 'c', { enabled: true });
      await patch(env.admin, 'c', { percentage: 20 }); // waits behind the first
      await waitTaken(rec, from, 2, 3000 + 2 * DELIVER_MS, 'both events after two 500s');
      await sleep(QUIET_MS);
      assertStream(rec);
      const reqs = rec.all().filter((r) => r.json.id > from);
      const first = reqs[0].json.id;
      assert.deepEqual(reqs.map((r) => [r.json.id - first, r.status]), [[0, 500], [0, 500], [0, 200], [1, 200]],
        'the first event tried three times, the second only after it was delivered');
      const gaps = [reqs[1].t - reqs[0].t, reqs[2].t - reqs[1].t];
      assert.ok(gaps[0] >= 900 && gaps[0] <= 2500, `first retry ${gaps[0]} ms after the first attempt (1 s)`);
      assert.ok(gaps[1] >= 1900 && gaps[1] <= 3500, `second retry ${gaps[1]} ms after the first retry (2 s)`);

      const d = await deliveryOf(env.admin, hook.id, first);
      assert.equal(d.id, reqs[0].delivery);
      assert.equal(d.status, 'delivered');
      assert.deepEqual(d.attempts.map((a) => a.status_code), [500, 500, 200]);
      assert.equal(typeof d.attempts[0].error, 'string', 'a 500 says why it failed');
      assert.equal(d.attempts[2].error, null);
      const d2 = await deliveryOf(env.admin, hook.id, first + 1);
      assert.deepEqual(d2.attempts.map((a) => a.status_code), [200]);
      assert.ok(Date.parse(d2.delivered_at) >= Date.parse(d.delivered_at));
    });

    test('a reset connection is a failed attempt (no status, an error), retried after 1 s', async () => {
      const from = await lastEventId(env.admin, hook.id);
      rec.queue('reset');
      await patch(env.admin, 'c', { percentage: 30 });
      await waitTaken(rec, from, 1, 1000 + 2 * DELIVER_MS, 'the event after a reset');
      const reqs = rec.all().filter((r) => r.json.id > from);
      assert.deepEqual(reqs.map((r) => r.behaviour), ['reset', 200]);
      assert.equal(reqs[0].delivery, reqs[1].delivery, 'the same X-Vexil-Delivery');
      // (the receiver answered; vexil records it a moment later)
      const d = await until(async () => {
        const x = await deliveryOf(env.admin, hook.id, reqs[0].json.id);
        return x.status === 'delivered' ? x : null;
      }, 2000, 'the delivery recorded as delivered');
      assert.equal(d.attempts.length, 2, JSON.stringify(d));
      assert.equal(d.attempts[0].status_code, null);
      assert.equal(typeof d.attempts[0].error, 'string');
      assert.equal(d.attempts[1].status_code, 200);
    });

    test('the receiver down for a few seconds: the queue grows, then everything arrives once, in order', async () => {
      const from = await lastEventId(env.admin, hook.id);
      const base = {
        delivered: await metric(env.server, 'vexil_webhook_deliveries_total', '{outcome="delivered"}'),
        retry: await metric(env.server, 'vexil_webhook_deliveries_total', '{outcome="retry"}'),
      };
      assert.equal(base.delivered, 4, 'delivered so far: the create, two PATCHes, the reset one');
      assert.equal(base.retry, 3, 'retries so far: two 500s and a reset');
      assert.equal(await metric(env.server, 'vexil_webhook_deliveries_total', '{outcome="failed"}'), 0);
      assert.equal(await metric(env.server, 'vexil_webhook_sender'), 1, 'the only instance delivers');
      await until(async () => (await metric(env.server, 'vexil_webhook_queue')) === 0, 6000,
        'vexil_webhook_queue 0 before the outage');

      await rec.down();
      const tDown = Date.now();
      for (const p of [40, 50, 60]) await patch(env.admin, 'c', { percentage: p });
      // counted every 5 s
      let oldest;
      await until(async () => {
        const n = await metric(env.server, 'vexil_webhook_queue');
        oldest = await metric(env.server, 'vexil_webhook_oldest_pending_seconds');
        return n >= 3;
      }, 6500, 'vexil_webhook_queue >= 3 while the receiver is down');
      assert.ok(oldest >= 0 && oldest < 30, `vexil_webhook_oldest_pending_seconds ${oldest}`);
      const hookDeliveries = await until(async () => {
        const list = await deliveries(env.admin, hook.id);
        const d = list.find((x) => x.event_id === from + 1);
        return d && d.attempts.length >= 2 ? list : null;
      }, 4000, 'two failed attempts while down');
      const pendingNow = hookDeliveries.filter((d) => d.event_id > from);
      assert.deepEqual(pendingNow.map((d) => d.status), ['pending', 'pending', 'pending']);
      assert.deepEqual(pendingNow.slice(0, 2).map((d) => d.attempts.length), [0, 0],
        'the later events wait for the first (in order): not tried yet');
      const retries = await metric(env.server, 'vexil_webhook_deliveries_total', '{outcome="retry"}');
      assert.ok(retries >= base.retry + 2, `vexil_webhook_deliveries_total{outcome="retry"} ${base.retry} -> ${retries}`);
      await rec.up();
      const downMs = Date.now() - tDown;

      await waitTaken(rec, from, 3, 4000 + 2 * DELIVER_MS, `the three events after ${downMs} ms down`);
      await sleep(QUIET_MS);
      const bodies = assertStream(rec).filter((b) => b.id > from);
      assert.deepEqual(bodies.map((b) => b.after.percentage), [40, 50, 60], 'in order');
      assert.deepEqual(rec.all().filter((r) => r.json.id > from).map((r) => r.json.id - from), [1, 2, 3],
        'each once (no request reached the receiver while it was down)');
      const list = (await deliveries(env.admin, hook.id)).filter((d) => d.event_id > from).reverse();
      for (const d of list) assert.equal(d.status, 'delivered', JSON.stringify(d));
      const d = list[0];
      assert.equal(d.id, rec.of(from + 1)[0].delivery, 'X-Vexil-Delivery is the delivery\'s id');
      assert.ok(d.attempts.length >= 3, `failed attempts then the delivered one: ${JSON.stringify(d.attempts)}`);
      for (const a of d.attempts.slice(0, -1)) {
        assert.equal(a.status_code, null, `refused: no status (${JSON.stringify(a)})`);
        assert.equal(typeof a.error, 'string');
      }
      assert.equal(d.attempts.at(-1).status_code, 200);
      assert.equal(d.attempts.at(-1).error, null);
      // backoff: 1 s, 2 s, 4 s between the attempts
      const at = d.attempts.map((a) => Date.parse(a.at));
      for (let i = 1; i < at.length; i++) {
        const want = 1000 * 2 ** (i - 1);
        const gap = at[i] - at[i - 1];
        assert.ok(gap >= want - 100 && gap <= want + 1500, `attempt ${i + 1} ${gap} ms after attempt ${i}: want ${want} ms`);
      }
      assert.deepEqual(list.slice(1).map((x) => x.attempts.length), [1, 1]);

      // the metrics come back down
      await until(async () => (await metric(env.server, 'vexil_webhook_queue')) === 0, 6500,
        'vexil_webhook_queue back to 0');
      assert.equal(await metric(env.server, 'vexil_webhook_oldest_pending_seconds'), 0);
      const delivered = await metric(env.server, 'vexil_webhook_deliveries_total', '{outcome="delivered"}');
      assert.equal(delivered, base.delivered + 3);
      assert.equal(await metric(env.server, 'vexil_webhook_deliveries_total', '{outcome="failed"}'), 0);
      const r = await fetch(env.server.base + '/metrics');
      const text = await r.text();
      for (const [name, type] of [['vexil_webhook_queue', 'gauge'], ['vexil_webhook_oldest_pending_seconds', 'gauge'],
        ['vexil_webhook_deliveries_total', 'counter'], ['vexil_webhook_sender', 'gauge']]) {
        assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`);
      }
    });
  });

  // ------------------------------------------------------------ 4
  describe('SIGKILL between the commit and the delivery', { concurrency: false }, () => {
    let env;
    let rec;
    let hook;
    before(async () => {
      env = await startEnv();
      rec = await receiver('survivor');
      hook = await register(env.admin, rec);
      await createFlag(env.admin, { name: 'k' });
      await waitTaken(rec, 0, 1, DELIVER_MS, 'the create');
    });
    after(async () => {
      if (env?.server.exit) await env.server.start().catch(() => {});
      await env?.close();
    });

    test('killed while the receiver holds the request: delivered after the restart, same X-Vexil-Delivery', async () => {
      const from = await lastEventId(env.admin, hook.id);
      rec.behave('hold');
      await patch(env.admin, 'k', { enabled: true });
      await rec.waitFor((r) => r.all().some((x) => x.json.id > from), DELIVER_MS, 'the held request');
      await patch(env.admin, 'k', { percentage: 50 }); // committed, waiting behind it
      await env.server.kill();
      assert.equal(env.server.exit.signal, 'SIGKILL');
      rec.behave(200);
      rec.release();
      await env.server.start();
      await waitTaken(rec, from, 2, 2 * DELIVER_MS, 'both events after the restart');
      await sleep(QUIET_MS);
      assertStream(rec);
      const first = rec.of(from + 1);
      assert.equal(first.length, 2, 'the held request and its redelivery');
      assert.deepEqual(first.map((r) => r.behaviour), ['hold', 200]);
      assert.equal(new Set(first.map((r) => r.delivery)).size, 1, 'the same X-Vexil-Delivery across the restart');
      assert.equal(rec.of(from + 2).length, 1, 'the second event once');
      assert.deepEqual(rec.okIds().filter((id) => id > from), [from + 1, from + 2]);
      assert.equal(rec.of(from + 2)[0].json.after.percentage, 50);
      const d = await deliveryOf(env.admin, hook.id, from + 1);
      assert.equal(d.status, 'delivered');
      assert.equal(d.id, first[0].delivery);
      assert.equal(d.attempts.at(-1).status_code, 200);
    });

    test('killed while the receiver is down: the restarted instance delivers it once', async () => {
      const from = await lastEventId(env.admin, hook.id);
      await rec.down();
      await patch(env.admin, 'k', { percentage: 70 });
      await until(async () => (await deliveryOf(env.admin, hook.id, from + 1)).attempts.length >= 1, DELIVER_MS,
        'a failed attempt');
      await env.server.kill();
      await rec.up();
      await env.server.start();
      await waitTaken(rec, from, 1, 2000 + 2 * DELIVER_MS, 'the event after the restart');
      await sleep(QUIET_MS);
      assertStream(rec);
      assert.equal(rec.of(from + 1).length, 1, 'once');
      const d = await deliveryOf(env.admin, hook.id, from + 1);
      assert.equal(d.status, 'delivered');
      assert.ok(d.attempts.length >= 2);
      assert.deepEqual(d.attempts.map((a) => a.status_code).slice(-1), [200]);
      assert.equal(d.attempts[0].status_code, null);
    });
  });

  // ------------------------------------------------------------ 5
  describe('two instances on one database', { concurrency: false }, () => {
    let env;
    let b;
    let rec;
    let hook;
    let flags;
    let burst;
    before(async () => {
      env = await startEnv();
      b = await new Server(env.db.url).start();
      env.extra.push(b);
      rec = await receiver('pair');
      hook = await register(env.admin, rec);
      flags = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
      for (const f of flags) await createFlag(env.admin, { name: f });
      await waitTaken(rec, 0, flags.length, drain(flags.length), 'the creates');
    });
    after(async () => {
      if (env?.server.exit) await env.server.start().catch(() => {});
      await env?.close();
    });

    const senders = async () => [await metric(env.server, 'vexil_webhook_sender'), await metric(b, 'vexil_webhook_sender')];

    test('one instance delivers; concurrent writes through both arrive each once, in id order', async () => {
      const s = await until(async () => {
        const x = await senders();
        return x[0] + x[1] === 1 ? x : null;
      }, 3000, 'exactly one vexil_webhook_sender 1');
      assert.ok(s.every((v) => v === 0 || v === 1), JSON.stringify(s));
      const from = await lastEventId(env.admin, hook.id);
      const clients = [env.admin, b.client(env.adminToken)];
      // 4 rounds of 6 writes at once, half through each instance
      for (let round = 1; round <= 4; round++) {
        await Promise.all(flags.map((f, i) => patch(clients[i % 2], f, { percentage: round * 10 + i })));
      }
      const tWritten = Date.now();
      const n = 4 * flags.length;
      // (bounded generously here: how fast is the next test's question)
      await waitTaken(rec, from, n, drain(n), `${n} events`);
      burst = { n, ms: Math.max(...rec.ok().filter((r) => r.json.id > from).map((r) => r.t)) - tWritten };
      await sleep(QUIET_MS);
      const bodies = assertStream(rec).filter((x) => x.id > from);
      assert.equal(bodies.length, n);
      assert.equal(rec.all().filter((r) => r.json.id > from).length, n, 'exactly one request per event');
      // each flag's events are its history, in order
      for (const f of flags) {
        const h = (await history(env.admin, 'flag', f)).filter((e) => e.action === 'update');
        assert.deepEqual(bodies.filter((x) => x.flag === f).map((x) => x.after.percentage),
          h.map((e) => e.after.percentage), `${f}: in the order of its history`);
      }
      const list = await deliveries(b.client(env.adminToken), hook.id, 500);
      assert.ok(list.every((d) => d.status === 'delivered' && d.attempts.length === 1),
        'each delivered by one attempt, whichever instance is asked');
    });

    test('a burst of changes reaches a fast receiver at its pace, not one event per round', () => {
      assert.ok(burst, 'the test before ran');
      // The standby instance takes the sender's lock within a second of the
// holder's death; plus a round and the receiver's 300 ms.
const TAKEOVER_MS = SANITIZED ? 5000 : 3000;
// 24 events to a receiver that answers at once: well under a second of
      // posting; give it BURST_MS.
      assert.ok(burst.ms <= BURST_MS, `the last of ${burst.n} events arrived ${burst.ms} ms after the writes ` +
        `(a backlog drained at ${(burst.n / (burst.ms / 1000)).toFixed(1)} events/s)`);
    });

    test('the delivering instance SIGKILLed mid-stream: the other takes over; each event once (one X-Vexil-Delivery)', async () => {
      const s = await senders();
      const victim = s[0] === 1 ? env.server : b;
      const survivor = victim === b ? env.server : b;
      const admin = survivor.client(env.adminToken);
      const from = await lastEventId(env.admin, hook.id);
      rec.behave({ delay: 300, status: 200 });
      for (let i = 0; i < 6; i++) await patch(admin, 'p0', { percentage: 70 + i });
      await rec.waitFor((r) => r.all().filter((x) => x.json.id > from).length >= 2, 4000, 'two requests under way');
      const tKill = Date.now();
      await victim.kill();
      rec.behave(200);
      await waitTaken(rec, from, 6, 2000 + drain(6), 'the six events after the kill');
      await sleep(QUIET_MS);
      assertStream(rec, { once: false });
      const after = rec.all().filter((r) => r.json.id > from);
      const perEvent = new Map();
      for (const r of after) perEvent.set(r.json.id, [...(perEvent.get(r.json.id) ?? []), r]);
      assert.deepEqual([...perEvent.keys()], [1, 2, 3, 4, 5, 6].map((i) => from + i), 'every event, in order');
      for (const [id, rs] of perEvent) {
        assert.equal(new Set(rs.map((r) => r.delivery)).size, 1, `event ${id}: one X-Vexil-Delivery`);
        assert.ok(rs.length <= 2, `event ${id}: ${rs.length} requests`);
      }
      const twice = [...perEvent.values()].filter((rs) => rs.length === 2);
      assert.ok(twice.length <= 1, `only the one in flight at the kill may come twice: ${twice.map((rs) => rs[0].json.id)}`);
      assert.equal(await until(async () => (await metric(survivor, 'vexil_webhook_sender')) === 1, 3000,
        'the survivor delivers'), true);
      // "the others try to take it every second" (docs/decisions.md)
      const firstAfter = after.find((r) => r.t > tKill + 50);
      assert.ok(firstAfter && firstAfter.t - tKill <= TAKEOVER_MS,
        `the survivor's first request ${firstAfter ? firstAfter.t - tKill : '(none)'} ms after the kill`);

      // and from now on, exactly once through the survivor
      const from2 = await lastEventId(admin, hook.id);
      for (let i = 0; i < 3; i++) await patch(admin, 'p1', { percentage: 90 + i });
      await waitTaken(rec, from2, 3, drain(3), 'three more through the survivor');
      await sleep(QUIET_MS);
      assertStream(rec, { once: false });
      assert.equal(rec.all().filter((r) => r.json.id > from2).length, 3, 'exactly one request per event');
      const list = await deliveries(admin, hook.id, 500);
      assert.ok(list.every((d) => d.status === 'delivered'), 'everything delivered');
    });
  });

  // ------------------------------------------------------------ 7
  describe('a change that commits late', { concurrency: false }, () => {
    let env;
    let rec;
    let other;
    let hook;
    let otherHook;
    before(async () => {
      env = await startEnv();
      rec = await receiver('order');
      other = await receiver('deletes-only');
      hook = await register(env.admin, rec);
      otherHook = await register(env.admin, other, { events: ['flag.deleted'] });
      await createFlag(env.admin, { name: 'slow' });
      await createFlag(env.admin, { name: 'quick' });
      await waitTaken(rec, 0, 2, DELIVER_MS, 'the creates');
    });
    after(async () => { await env?.close(); });

    // A change's transaction can take a while between writing its event and
    // committing (here: its fan-out waits a second for a row lock another
    // session holds on the webhooks row of a webhook that wants that event;
    // in life: a big flag, a busy database, a descheduled thread).  A change
    // that commits meanwhile has the higher id; docs/api.md §9 says ids
    // increase in the order the changes committed, and each webhook gets its
    // events in order.
    test('a change that commits while an earlier-started one is still open: delivered in id order', async () => {
      const from = await lastEventId(env.admin, hook.id);
      const marker = `webhooks-test-hold-${randomBytes(4).toString('hex')}`;
      const holder = psql(env.db.url, `BEGIN; SELECT 1 FROM webhooks WHERE id = '${otherHook.id}' FOR UPDATE; ` +
        `SELECT pg_sleep(1.2), '${marker}'; COMMIT;`);
      const waiting = (what) => psql(env.db.url, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() ` +
        `AND ${what}`).then(Number);
      await until(async () => (await waiting(`query LIKE '%${marker}%' AND state = 'active' ` +
        `AND pid <> pg_backend_pid()`)) === 1, 3000, 'the lock holder');
      await sleep(100);
      // the delete writes its event, then waits for the lock in its fan-out
      const slow = env.admin.del('/api/flags/slow');
      await until(async () => (await waiting(`wait_event_type = 'Lock'`)) >= 1, 3000, 'the delete waiting');
      // meanwhile another change commits
      await patch(env.admin, 'quick', { enabled: true });
      const tQuick = Date.now();
      const rDel = await slow;
      assert.equal(rDel.status, 204, rDel.text);
      await holder;
      await waitTaken(rec, from, 2, 2 * DELIVER_MS, 'both events');
      await sleep(QUIET_MS);
      const got = rec.all().filter((r) => r.json.id > from)
        .map((r) => `${r.json.id} ${r.json.event} ${r.json.flag} at +${r.t - tQuick} ms`);
      const ids = rec.okIds().filter((id) => id > from);
      const byId = [...ids].sort((a, b) => a - b);
      assert.deepEqual(ids, byId, `events in id order at the receiver: ${JSON.stringify(got)}`);
      assertStream(rec);
      await other.waitFor((r) => r.ok().length === 1, DELIVER_MS, 'the delete at the filtered webhook');
    });
  });

  // ------------------------------------------------------------ 6
  describe('a receiver that never answers', { concurrency: false }, () => {
    let env;
    let mute;
    let healthy;
    let muteHook;
    let healthyHook;
    before(async () => {
      env = await startEnv();
      mute = await receiver('mute');
      healthy = await receiver('healthy');
      muteHook = await register(env.admin, mute);
      healthyHook = await register(env.admin, healthy);
      await createFlag(env.admin, { name: 'w' });
      await waitTaken(mute, 0, 1, DELIVER_MS, 'the create');
      await waitTaken(healthy, 0, 1, DELIVER_MS, 'the create');
    });
    after(async () => { await env?.close(); });

    test('delays no write and no read, and another webhook by at most its 5 s timeout', async () => {
      const timed = async (fn) => {
        const t0 = performance.now();
        await fn();
        return performance.now() - t0;
      };
      const normal = [];
      const from = await lastEventId(env.admin, healthyHook.id);
      for (let i = 1; i <= 7; i++) normal.push(await timed(() => patch(env.admin, 'w', { percentage: i })));
      await waitTaken(healthy, from, 7, drain(7), 'the normal writes');
      await waitTaken(mute, from, 7, drain(7), 'the normal writes');
      const med = median(normal);

      mute.behave('hold');
      const start = healthy.okIds().at(-1);
      const writes = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await patch(env.admin, 'w', { percentage: 50 + i });
        writes.push({ ms: performance.now() - t0, done: Date.now() });
        const tr = await timed(async () => {
          assert.equal((await env.admin.get('/api/flags/w')).status, 200);
          assert.equal((await env.client.get('/flags')).status, 200);
        });
        writes.at(-1).readMs = tr;
        await sleep(300);
      }
      const note = `median of normal PATCHes ${med.toFixed(1)} ms; with the mute receiver: ` +
        JSON.stringify(writes.map((w) => [Math.round(w.ms), Math.round(w.readMs)]));
      for (const w of writes) {
        assert.ok(w.ms < WRITE_MS, `a PATCH took ${w.ms.toFixed(1)} ms (${note})`);
        assert.ok(w.readMs < WRITE_MS, `two reads took ${w.readMs.toFixed(1)} ms (${note})`);
      }
      // the healthy webhook gets each event within the 5 s timeout (+ a round)
      const got = await waitTaken(healthy, start, 5, 3 * OTHER_WEBHOOK_MS, 'the five events at the healthy receiver')
        .catch((e) => e);
      const lat = writes.map((w, i) => {
        const r = healthy.ok().find((x) => x.json.id === start + i + 1);
        return r ? r.t - w.done : null;
      });
      assert.ok(!(got instanceof Error), `${got?.message}; latencies ${JSON.stringify(lat)}`);
      assert.ok(lat.every((x) => x !== null && x <= OTHER_WEBHOOK_MS),
        `each event reached the healthy receiver within ${OTHER_WEBHOOK_MS} ms of its write: ` +
        `latencies ${JSON.stringify(lat)} ms (${note})`);
      assertStream(healthy);

      // the mute one: an attempt cut at 5 s, no status, an error
      const d = await until(async () => {
        const x = await deliveryOf(env.admin, muteHook.id, start + 1);
        return x.attempts.length >= 1 ? x : null;
      }, 7000, 'the held attempt recorded');
      assert.equal(d.status, 'pending');
      assert.equal(d.attempts[0].status_code, null);
      assert.equal(typeof d.attempts[0].error, 'string');
      assert.ok(d.attempts[0].duration_ms >= 4900 && d.attempts[0].duration_ms <= 6500,
        `the attempt gave up after ${d.attempts[0].duration_ms} ms (5 s)`);
      assert.equal(mute.ok().filter((r) => r.json.id > start).length, 0);
      mute.behave(200);
      mute.release();
    });
  });
});
