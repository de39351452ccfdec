// receiver.mjs -- a webhook receiver for the integration tests of
// docs/api.md §9: a Node http server on 127.0.0.1 that records every request
// vexil makes to it (headers, the raw body bytes, the parsed JSON, when it
// came and what it was answered) and checks every X-Vexil-Signature against
// the webhook's secret, over the raw body, the way docs/api.md §9 tells a
// receiver to (HMAC-SHA256, timingSafeEqual).  A request whose signature is
// missing or wrong, or whose body is not JSON, is a problem: assertClean()
// fails on it, and so does every accessor a test reads deliveries through.
//
// How it answers is switchable at any time:
//
//   behave(b)        the standing behaviour, for every request from now on
//   queue(b, ...)    one-shot behaviours for the next requests, in turn, before
//                    the standing one applies again
//
// where b is a status number (200 by default, 500, ...), {delay: ms, status}
// (answer after ms), 'hold' (never answer: the socket is kept open until
// release() or close()), or 'reset' (destroy the connection once the request
// is read).  down() closes the listening socket and every connection (vexil
// then gets "connection refused"); up() listens again on the SAME port.
//
//   const rec = await new Receiver('a-secret-of-16-bytes+').start();
//   ... POST /api/webhooks {url: rec.url, secret: rec.secret}
//   await rec.waitFor((r) => r.ok().length === 3, 5000, 'three deliveries');
//   rec.assertClean();
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

import { sleep } from './harness.mjs';

export class Receiver {
  /** secret: the webhook's secret (string); name: for messages and the URL's path. */
  constructor(secret, name = 'receiver') {
    this.secret = secret;
    this.name = name;
    this.port = 0;
    this.server = null;
    this.sockets = new Set();
    this.heldSockets = new Set();
    this.standing = 200;
    this.oneShots = [];
    /** Every request, in arrival order (see _record). */
    this.requests = [];
    /** Everything wrong with a request (bad signature, not JSON, ...). */
    this.problems = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}/hook/${encodeURIComponent(this.name)}`;
  }

  get isUp() {
    return this.server !== null;
  }

  /** Listen (on port 0 the first time, then on the same port). */
  async start() {
    const server = http.createServer((req, res) => this._handle(req, res));
    server.keepAliveTimeout = 1000;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => {
        this.sockets.delete(s);
        this.heldSockets.delete(s);
      });
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = server.address().port;
    this.server = server;
    return this;
  }

  /** Stop listening and drop every connection: vexil's attempts are refused. */
  async down() {
    const s = this.server;
    if (!s) return;
    this.server = null;
    const closed = new Promise((resolve) => s.close(resolve));
    for (const sock of this.sockets) sock.destroy();
    await closed;
  }

  /** Listen again, on the same port (a few tries: the port may linger a moment). */
  async up() {
    assert.ok(!this.server, `${this.name} is already up`);
    let last;
    for (let i = 0; i < 20; i++) {
      try {
        return await this.start();
      } catch (e) {
        last = e;
        await sleep(50);
      }
    }
    throw last;
  }

  /** down() and forget it. */
  async close() {
    await this.down();
  }

  /** The standing behaviour (see the file's comment). */
  behave(b) {
    this.standing = b;
    return this;
  }

  /** One-shot behaviours for the next requests, in turn. */
  queue(...bs) {
    this.oneShots.push(...bs);
    return this;
  }

  /** Drop every held connection (vexil sees it reset). */
  release() {
    for (const s of this.heldSockets) s.destroy();
    this.heldSockets.clear();
  }

  _handle(req, res) {
    const chunks = [];
    const t = Date.now();
    req.on('data', (d) => chunks.push(d));
    req.on('error', () => {});
    req.on('end', () => {
      const b = this.oneShots.length ? this.oneShots.shift() : this.standing;
      const rec = this._record(req, Buffer.concat(chunks), t, b);
      if (b === 'hold') {
        this.heldSockets.add(req.socket);
        return;
      }
      if (b === 'reset') {
        req.socket.destroy();
        return;
      }
      const answer = () => {
        rec.answeredAt = Date.now();
        res.writeHead(typeof b === 'number' ? b : (b.status ?? 200), { 'Content-Type': 'text/plain' });
        res.end('thanks');
      };
      if (typeof b === 'object' && b.delay) setTimeout(answer, b.delay);
      else answer();
    });
  }

  /**
   * One request's record: {t (ms since the epoch, when it came), method, path,
   * headers (lowercase keys), raw (Buffer), json (parsed, or undefined),
   * delivery (X-Vexil-Delivery), signatureOk, behaviour (what it was answered:
   * a status, {delay, status}, 'hold' or 'reset'), status (the status
   * answered, or null for hold and reset)}.
   */
  _record(req, raw, t, b) {
    const headers = req.headers;
    const sig = headers['x-vexil-signature'];
    const want = 'sha256=' + createHmac('sha256', this.secret).update(raw).digest('hex');
    const signatureOk = typeof sig === 'string' && sig.length === want.length &&
      timingSafeEqual(Buffer.from(sig), Buffer.from(want));
    let json;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      json = undefined;
    }
    const status = typeof b === 'number' ? b : (typeof b === 'object' ? (b.status ?? 200) : null);
    const rec = {
      t, method: req.method, path: req.url, headers, raw, json, delivery: headers['x-vexil-delivery'],
      signatureOk, behaviour: b, status,
    };
    const what = `${this.name}: request ${this.requests.length + 1} (${raw.toString('utf8').slice(0, 200)})`;
    if (!signatureOk) this.problems.push(`${what}: X-Vexil-Signature ${JSON.stringify(sig)}, want ${want}`);
    if (json === undefined) this.problems.push(`${what}: the body is not JSON`);
    if (req.method !== 'POST') this.problems.push(`${what}: method ${req.method}`);
    this.requests.push(rec);
    return rec;
  }

  /** Fail on any problem seen so far (a bad signature, a body that is not JSON). */
  assertClean() {
    assert.deepEqual(this.problems, [], `${this.name} got requests that are not right`);
  }

  /** Every request (asserting clean). */
  all() {
    this.assertClean();
    return this.requests.slice();
  }

  /** The requests answered 2xx, in arrival order (asserting clean). */
  ok() {
    return this.all().filter((r) => r.status !== null && r.status >= 200 && r.status < 300);
  }

  /** The requests of event id (body.id), in arrival order. */
  of(eventId) {
    return this.all().filter((r) => r.json?.id === eventId);
  }

  /** The event ids the receiver took (answered 2xx), in arrival order. */
  okIds() {
    return this.ok().map((r) => r.json.id);
  }

  /**
   * Poll pred(this) until truthy (returns its value) or fail after timeout
   * ms, naming `what` and what arrived.
   */
  async waitFor(pred, timeout, what) {
    const deadline = Date.now() + timeout;
    for (;;) {
      this.assertClean();
      const v = pred(this);
      if (v) return v;
      if (Date.now() > deadline) {
        assert.fail(`${this.name}: ${what}: not within ${timeout} ms; got ${this.requests.length} requests: ` +
          JSON.stringify(this.requests.map((r) => [r.json?.id, r.json?.event, r.behaviour, r.delivery,
            new Date(r.t).toISOString()])));
      }
      await sleep(20);
    }
  }
}
