// cluster.mjs -- additions to harness.mjs for tests that need more than one
// `vexil serve`, a PostgreSQL of their own that they may stop and start, or
// held long-poll requests.
//
//   privateCluster()        a PostgreSQL cluster (tests/lib/pg.sh) on its own
//                           directory and port, that the test may stop and
//                           start again on the same port; .destroy() removes it
//   startServers(url, n)    n `vexil serve` processes on one database
//   hold(client, path, h)   start a (long-poll) GET now, resolve later with
//                           the answer and how long it took
//   waitFor(fn, ms)         poll fn until it returns a truthy value
//   timeWrite(fn)           run a write, noting when it was sent and answered
//   settledAt(p)            p's value and the time it settled
//   assertWokeBy(w, at, …)  something that settled at `at` was woken by the
//                           notification of write w, not by a fallback

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO, SANITIZED, Server, psql, sleep } from './harness.mjs';

const PG_SH = path.join(REPO, 'tests/lib/pg.sh');

/** Run a bash snippet with tests/lib/pg.sh sourced; resolves stdout, rejects with stderr. */
function pgsh(script, env = {}, timeout = 90000) {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', `set -u; source "$PG_SH" || exit 1; ${script}`],
      { env: { ...process.env, ...env, PG_SH }, timeout, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`pg.sh: ${script}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
  });
}

/**
 * A private PostgreSQL 15 cluster under a fresh temporary directory.
 * Returns {dir, port, url, stop(), start(), running(), destroy()}; url is the
 * superuser URL of database `postgres` (like VEXIL_TEST_PG_URL).  start()
 * after stop() comes back on the same port, so that daemons reconnect.
 */
export async function privateCluster() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vexil-pgpriv-'));
  chmodSync(dir, 0o755); // the postgres user must be able to enter it
  const pgdir = path.join(dir, 'pg');
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  let port;
  const c = {
    dir,
    get port() { return port; },
    get url() { return `postgresql://postgres@127.0.0.1:${port}/postgres`; },
    async start() {
      const env = port ? { PG_PORT: String(port), PG_FSYNC: 'off' } : { PG_FSYNC: 'off' };
      const out = await pgsh(`pg_start ${q(pgdir)} && echo "PORT=$PGPORT"`, env);
      const m = out.match(/PORT=(\d+)/);
      assert.ok(m, `pg_start printed no port: ${out}`);
      port = Number(m[1]);
    },
    async stop() {
      await pgsh(`pg_stop ${q(pgdir)}`);
    },
    /** True when the cluster accepts a query. */
    async running() {
      try {
        await psql(c.url + '?connect_timeout=2', 'SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    async destroy() {
      try {
        await c.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    await c.start();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return c;
}

/**
 * Start n servers on database url (each on its own port, same args).
 * On failure the ones already started are killed.
 */
export async function startServers(url, n, { args = [], env = {} } = {}) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = new Server(url, { args, env });
      servers.push(s);
      await s.start();
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.kill()));
    throw e;
  }
  return servers;
}

/**
 * Start a GET through a harness Client now; the returned promise resolves
 * {status, headers, text, json, ms} once the answer arrives (ms measured
 * from the call).  `timeout` aborts the request (then the promise rejects).
 */
export function hold(client, p, headers = {}, { timeout = 70000 } = {}) {
  const t0 = performance.now();
  const h = { ...headers };
  if (client.token) h.Authorization = `Bearer ${client.token}`;
  return fetch(client.server.base + p, { headers: h, signal: AbortSignal.timeout(timeout) })
    .then(async (r) => {
      const text = await r.text();
      const ms = performance.now() - t0;
      let json;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      return { status: r.status, headers: r.headers, text, json, ms };
    });
}

/**
 * Wait until the server has exactly n held long-polls, read from /metrics
 * (vexil_longpoll_held); fails after timeout ms.
 */
export async function waitHeld(server, n, timeout = 3000) {
  let last;
  const ok = await waitFor(async () => {
    const r = await fetch(server.base + '/metrics', { signal: AbortSignal.timeout(2000) });
    const text = await r.text();
    const m = text.match(/^vexil_longpoll_held(?:\{[^}]*\})?\s+(\d+(?:\.\d+)?)/m);
    last = m ? Number(m[1]) : NaN;
    return last === n;
  }, timeout);
  assert.ok(ok, `expected ${n} held long-polls on ${server.base}, /metrics says ${last}`);
}

// A held request must wake through the change's notification: within
// WAKE_AFTER_WRITE_MS of the write's answer (the commit is done by then; what
// is left is one NOTIFY and in-process work), and in all long before the
// fallbacks that would wake it without one (the 10 s version check, the end
// of wait=10).  Measured from the write's answer rather than from its
// sending, the bound does not include the write's own transaction, which a
// loaded machine may stall for longer than the wake itself takes.  Typical
// figures are a few ms after the answer and 5-20 ms in all; the sub-second
// figures under load are tests/bench/propagation.sh's to measure.
export const WAKE_AFTER_WRITE_MS = SANITIZED ? 1200 : 800;
export const WAKE_TOTAL_MS = 3000;

/** Run write fn; resolves {sent, answered, value} (performance.now() times). */
export async function timeWrite(fn) {
  const sent = performance.now();
  const value = await fn();
  return { sent, answered: performance.now(), value };
}

/** Resolves {r: p's value, at: performance.now() when it settled}. */
export const settledAt = (p) => p.then((r) => ({ r, at: performance.now() }));

/**
 * Assert that what settled at `at` (a held request, a stream's event) was
 * woken by write w's notification; t (a node:test context) gets the figures.
 */
export function assertWokeBy(w, at, what, t) {
  const total = at - w.sent;
  const after = at - w.answered;
  t?.diagnostic(`${what}: ${total.toFixed(1)} ms after the write was sent, ${after.toFixed(1)} ms after its answer`);
  assert.ok(after < WAKE_AFTER_WRITE_MS, `${what} woke ${after.toFixed(0)} ms after the write's answer`);
  assert.ok(total < WAKE_TOTAL_MS, `${what} woke ${total.toFixed(0)} ms after the write was sent`);
}

/** Poll fn (sync or async) every `every` ms until truthy; returns its value, or false on timeout. */
export async function waitFor(fn, timeout = 3000, every = 25) {
  const deadline = Date.now() + timeout;
  for (;;) {
    let v;
    try {
      v = await fn();
    } catch {
      v = false;
    }
    if (v) return v;
    if (Date.now() > deadline) return false;
    await sleep(every);
  }
}
