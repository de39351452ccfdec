// harness.mjs -- helpers for vexil's HTTP integration tests (Node 20 built-ins only).
//
// Each test file gets a fresh database on the cluster named by
// VEXIL_TEST_PG_URL (tests/run.sh starts one with tests/lib/pg.sh), migrates
// it with $VEXIL_BIN, makes tokens with the CLI and starts `vexil serve` on a
// free port.  The typical file:
//
//   import { before, after, test } from 'node:test';
//   import { startEnv } from './lib/harness.mjs';
//   let env;
//   before(async () => { env = await startEnv(); });
//   after(async () => { await env.close(); });
//   test('...', async () => { const r = await env.admin.get('/api/flags'); ... });
//
// env.close() stops the server with SIGTERM and asserts that it exits 0 in
// time and printed no sanitizer report, then drops the database.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const WEB_DIR = path.join(REPO, 'web');
export const VEXIL_BIN = process.env.VEXIL_BIN
  ? path.resolve(process.env.VEXIL_BIN)
  : path.join(REPO, 'build/plain/vexil');
export const PG_URL = process.env.VEXIL_TEST_PG_URL || '';
// The PostgreSQL 15 client itself: Debian's /usr/bin wrapper costs ~50 ms a call.
const PG_BINDIR = '/usr/lib/postgresql/15/bin';
export const PSQL = existsSync(`${PG_BINDIR}/psql`) ? `${PG_BINDIR}/psql` : 'psql';
export const PG_DUMP = existsSync(`${PG_BINDIR}/pg_dump`) ? `${PG_BINDIR}/pg_dump` : 'pg_dump';
/** True when the binary under test is a sanitizer build (ASan or TSan). */
export const SANITIZED = /[at]san/.test(VEXIL_BIN) || !!process.env.ASAN_OPTIONS ||
  !!process.env.TSAN_OPTIONS;
/** docs/operations.md §1: SIGTERM → exit 0 within 5 s (sanitizer builds get slack for the leak check). */
export const STOP_TIMEOUT_MS = SANITIZED ? 15000 : 5000;
const START_TIMEOUT_MS = SANITIZED ? 30000 : 15000;

export const ERROR_CODES = [
  'bad_request', 'invalid_json', 'unknown_field', 'invalid_value', 'unauthorized', 'forbidden',
  'not_found', 'method_not_allowed', 'conflict', 'precondition_failed', 'payload_too_large',
  'unavailable',
];
export const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const SECRET = /^vx_[A-Za-z0-9_-]{43}$/;
const SANITIZER_REPORT =
  /(ERROR|WARNING): (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak|Thread)Sanitizer/;

/** The project version from meson.build (what `vexil version` must print). */
export function projectVersion() {
  const m = readFileSync(path.join(REPO, 'meson.build'), 'utf8').match(/version\s*:\s*'([^']+)'/);
  return m ? m[1] : null;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function preflight() {
  if (!PG_URL) {
    throw new Error('VEXIL_TEST_PG_URL is not set: run tests/run.sh, or source tests/lib/pg.sh and pg_start DIR');
  }
  if (!existsSync(VEXIL_BIN)) {
    throw new Error(`VEXIL_BIN ${VEXIL_BIN} does not exist: build it (meson setup build/plain && ninja -C build/plain)`);
  }
}

// ------------------------------------------------------------------ processes

/**
 * Run a command to completion.  Resolves {code, signal, stdout, stderr}; never
 * rejects on a non-zero exit.
 */
export function run(cmd, args, { env, input, timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Run `$VEXIL_BIN args...` (see run()). */
export function vexil(args, opts) {
  return run(VEXIL_BIN, args, opts);
}

/** Assert that a sanitizer build printed no report. */
/**
 * Assert that buf (text for a terminal or a mail) holds no control
 * character: no byte < 0x20 but LF, no DEL, no C1 (C2 80..C2 9F), and is
 * valid UTF-8.  Returns the text.
 */
export function assertNoControls(buf, what) {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    assert.ok(!(b < 0x20 && b !== 0x0a), `${what}: byte 0x${b.toString(16)} at ${i}: ${JSON.stringify(buf.toString('utf8'))}`);
    assert.notEqual(b, 0x7f, `${what}: DEL at ${i}`);
    assert.ok(!(b === 0xc2 && buf[i + 1] >= 0x80 && buf[i + 1] < 0xa0), `${what}: a C1 character at ${i}`);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(buf);
}

export function assertNoSanitizerReport(stderr, what = 'vexil') {
  const m = stderr.match(SANITIZER_REPORT);
  if (m) {
    const at = Math.max(0, m.index - 200);
    assert.fail(`${what} printed a sanitizer report:\n${stderr.slice(at, at + 4000)}`);
  }
}

// ------------------------------------------------------------------ database

/** URL of database `name` on the cluster of base URL. */
export function dbUrl(name, base = PG_URL) {
  const u = new URL(base);
  u.pathname = '/' + name;
  return u.toString();
}

/**
 * psql -At on url.  Returns stdout without the trailing newline; rows are
 * separated by "\n", columns by "|".  Throws with psql's stderr on error.
 */
export function psql(url, sql) {
  return new Promise((resolve, reject) => {
    execFile(PSQL, ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
      { timeout: 30000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql failed: ${stderr || err.message}\nSQL: ${sql}`));
        else resolve(stdout.replace(/\n$/, ''));
      });
  });
}

/** Create a database with a random name; returns {name, url, drop()}. */
export async function createDatabase() {
  preflight();
  const name = 'vexil_it_' + randomBytes(6).toString('hex');
  await psql(PG_URL, `CREATE DATABASE "${name}"`);
  const url = dbUrl(name);
  return {
    name,
    url,
    drop: () => psql(PG_URL, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

/**
 * Row counts of every table in the database's public schema, as
 * {table: count}: a schema-agnostic way to see that nothing was written.
 */
export async function tableCounts(url) {
  const out = await psql(url, `
    SELECT table_name || '=' || (xpath('/row/c/text()',
             query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name),
                          false, true, '')))[1]::text
      FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
     ORDER BY table_name`);
  const counts = {};
  for (const line of out.split('\n').filter(Boolean)) {
    const i = line.lastIndexOf('=');
    counts[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return counts;
}

/** Name of the table that holds flag history (events), found by its name. */
export async function historyTable(url) {
  const names = Object.keys(await tableCounts(url));
  const t = names.find((n) => /event|histor|audit/i.test(n));
  assert.ok(t, `no history/event table among ${names.join(', ')}`);
  return t;
}

/** `vexil migrate --database url`, asserting success. */
export async function migrate(url) {
  const r = await vexil(['migrate', '--database', url]);
  assert.equal(r.code, 0, `vexil migrate failed (${r.code}): ${r.stderr}`);
  assertNoSanitizerReport(r.stderr, 'vexil migrate');
  return r;
}

/** `vexil token create`; returns the secret (stdout trimmed). */
export async function createToken(url, name, role) {
  const r = await vexil(['token', 'create', '--name', name, '--role', role, '--database', url]);
  assert.equal(r.code, 0, `vexil token create failed (${r.code}): ${r.stderr}`);
  assertNoSanitizerReport(r.stderr, 'vexil token create');
  const secret = r.stdout.trim();
  assert.match(secret, SECRET, 'token create prints the secret alone on stdout');
  return secret;
}

// ------------------------------------------------------------------ server

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A running `vexil serve`.  Collects stderr (the JSON request log) in
 * .stderr and parsed lines in .logs().
 */
export class Server {
  constructor(url, { args = [], env = {} } = {}) {
    this.dbUrl = url;
    this.args = args;
    this.env = env;
    this.stderr = '';
    this.stdout = '';
    this.proc = null;
    this.exit = null; // {code, signal} once exited
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    preflight();
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await freePort();
      try {
        await this._spawnAndWait();
        return this;
      } catch (e) {
        lastErr = e;
        if (this.proc && this.exit === null) await this.kill();
        // Only a lost race for the port is worth another try.
        if (!/address already in use|bind/i.test(this.stderr)) break;
      }
    }
    throw lastErr;
  }

  _spawnAndWait() {
    this.stderr = '';
    this.stdout = '';
    this.exit = null;
    const argv = ['serve', '--listen', `127.0.0.1:${this.port}`, '--database', this.dbUrl,
      '--web', WEB_DIR, ...this.args];
    const child = spawn(VEXIL_BIN, argv, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = child;
    child.stdout.setEncoding('utf8').on('data', (d) => { this.stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { this.stderr += d; });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    // Await the pipes too, so that every stderr line is read before we assert on it.
    this.closed = new Promise((resolve) => child.on('close', resolve));
    return this._waitHealthy();
  }

  async _waitHealthy() {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exit) {
        throw new Error(`vexil serve exited early (${JSON.stringify(this.exit)}):\n${this.stderr}`);
      }
      try {
        const r = await fetch(this.base + '/healthz', { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`vexil serve did not answer /healthz within ${START_TIMEOUT_MS} ms:\n${this.stderr}`);
  }

  /** SIGKILL without checks (cleanup after a failure). */
  async kill() {
    if (!this.proc || this.exit) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /**
   * SIGTERM; assert exit status 0 within STOP_TIMEOUT_MS and no sanitizer
   * report.  Returns the elapsed milliseconds.
   */
  async stop() {
    if (!this.proc) return 0;
    if (this.exit) {
      assert.fail(`vexil serve had already exited (${JSON.stringify(this.exit)}):\n${this.stderr.slice(-4000)}`);
    }
    const t0 = Date.now();
    this.proc.kill('SIGTERM');
    const timer = sleep(STOP_TIMEOUT_MS).then(() => 'timeout');
    const res = await Promise.race([this.exited, timer]);
    const ms = Date.now() - t0;
    if (res === 'timeout') {
      await this.kill();
      assert.fail(`vexil serve did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
    }
    await this.closed;
    assertNoSanitizerReport(this.stderr, 'vexil serve');
    assert.deepEqual(this.exit, { code: 0, signal: null },
      `vexil serve exit after SIGTERM; stderr tail:\n${this.stderr.slice(-4000)}`);
    return ms;
  }

  /** Every stderr line that parses as a JSON object. */
  logs() {
    const out = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const j = JSON.parse(line);
        if (j && typeof j === 'object') out.push(j);
      } catch {
        // not a JSON line
      }
    }
    return out;
  }

  /** Poll for log lines matching pred (the line may follow the response). */
  async waitLogs(pred, { min = 1, timeout = 3000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = this.logs().filter(pred);
      if (found.length >= min || Date.now() > deadline) return found;
      await sleep(25);
    }
  }

  /** An HTTP client bound to this server and a bearer token (or none). */
  client(token) {
    return new Client(this, token);
  }
}

// ------------------------------------------------------------------ HTTP

/**
 * Result of a request: {status, headers (a Headers), text, json (parsed when
 * the body is JSON, else undefined)}.
 */
export class Client {
  constructor(server, token) {
    this.server = server;
    this.token = token;
  }

  async request(method, p, { body, headers = {}, raw } = {}) {
    const h = { ...headers };
    if (this.token && !('authorization' in lower(h))) h.Authorization = `Bearer ${this.token}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      if (!('content-type' in lower(h))) h['Content-Type'] = 'application/json';
    }
    const r = await fetch(this.server.base + p, {
      method, headers: h, body: payload, redirect: 'manual', signal: AbortSignal.timeout(20000),
    });
    const text = await r.text();
    let json;
    if (text.length) {
      try { json = JSON.parse(text); } catch { json = undefined; }
    }
    return { status: r.status, headers: r.headers, text, json };
  }

  get(p, o) { return this.request('GET', p, o); }
  post(p, body, o = {}) { return this.request('POST', p, { ...o, body }); }
  patch(p, body, o = {}) { return this.request('PATCH', p, { ...o, body }); }
  del(p, o) { return this.request('DELETE', p, o); }
}

function lower(h) {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

/**
 * Send raw bytes over a fresh TCP connection and read until the server
 * closes or `timeout` passes.  `head` is written first; `body` (a Buffer)
 * follows in chunks, unless a response has already started arriving (a server
 * may refuse a large body before reading it).  `waitBeforeBody` ms are given
 * to such an early answer.  Resolves {status, headers (lowercase keys), body,
 * raw}.
 */
export function rawRequest(port, head, { body, waitBeforeBody = 0, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let got = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      resolve(parseResponse(raw));
    };
    const timer = setTimeout(finish, timeout);
    sock.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      const parsed = parseResponse(Buffer.concat(chunks));
      if (parsed.complete) finish();
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e) => {
      // A reset after the answer arrived is fine; before, it is a failure.
      if (got > 0) finish();
      else if (!done) { done = true; clearTimeout(timer); reject(e); }
    });
    sock.on('connect', async () => {
      sock.write(head);
      if (!body) return;
      if (waitBeforeBody) await sleep(waitBeforeBody);
      const step = 64 * 1024;
      for (let i = 0; i < body.length && !done && got === 0; i += step) {
        const ok = sock.write(body.subarray(i, i + step));
        if (!ok) await new Promise((r) => sock.once('drain', r).once('close', r));
      }
    });
  });
}

/** Parse an HTTP/1.1 response from raw bytes (as much as is there). */
export function parseResponse(raw) {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: '', raw, complete: false };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.subarray(end + 4);
  let complete = false;
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    complete = body.length >= n;
    body = body.subarray(0, n);
  } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    const dec = dechunk(body);
    complete = dec.complete;
    body = dec.body;
  }
  return { status, headers, body: body.toString('utf8'), raw, complete };
}

function dechunk(buf) {
  const parts = [];
  let i = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return { body: Buffer.concat(parts), complete: false };
    const n = parseInt(buf.subarray(i, eol).toString('latin1'), 16);
    if (Number.isNaN(n)) return { body: Buffer.concat(parts), complete: false };
    if (n === 0) return { body: Buffer.concat(parts), complete: true };
    if (buf.length < eol + 2 + n) return { body: Buffer.concat(parts), complete: false };
    parts.push(buf.subarray(eol + 2, eol + 2 + n));
    i = eol + 2 + n + 2;
  }
}

// ------------------------------------------------------------------ assertions

/**
 * Assert a docs/api.md §5 error answer: status, JSON body exactly
 * {"error": {"code", "message"}}, and the code (a string, or an array of
 * acceptable codes where docs/api.md leaves the choice open).
 */
export function assertError(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${JSON.stringify(res.text)}`);
  assert.deepEqual(Object.keys(res.json), ['error'], `error body shape: ${res.text}`);
  const e = res.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message'], `error object shape: ${res.text}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, 'error message is empty');
  if (Array.isArray(code)) assert.ok(code.includes(e.code), `error code ${e.code} not in ${code.join(', ')}`);
  else assert.equal(e.code, code, `error code (message: ${e.message})`);
  assert.ok(ERROR_CODES.includes(e.code), `${e.code} is not a docs/api.md §5 code`);
  const ct = res.headers.get ? res.headers.get('content-type') : res.headers['content-type'];
  assert.match(ct || '', /^application\/json/, 'error Content-Type');
}

/** The header value of a fetch result or a rawRequest result. */
export function header(res, name) {
  return res.headers.get ? res.headers.get(name) : res.headers[name.toLowerCase()];
}

// ------------------------------------------------------------------ environment

/**
 * A fresh database, migrated, with tokens admin (`it-admin`) and client
 * (`it-client`) and a running server.  Returns
 * {db, server, adminToken, clientToken, admin, client, anon, extra, close()}.
 */
export async function startEnv({ args, env } = {}) {
  const db = await createDatabase();
  let server;
  try {
    await migrate(db.url);
    const adminToken = await createToken(db.url, 'it-admin', 'admin');
    const clientToken = await createToken(db.url, 'it-client', 'client');
    server = new Server(db.url, { args, env });
    await server.start();
    return {
      db,
      server,
      adminToken,
      clientToken,
      admin: server.client(adminToken),
      client: server.client(clientToken),
      anon: server.client(null),
      // Further servers a test starts on this database: close() stops them
      // first (SIGTERM, asserting exit 0), and kills whatever is left.
      extra: [],
      async close() {
        try {
          for (const s of this.extra) if (!s.exit) await s.stop();
          await server.stop();
        } finally {
          for (const s of this.extra) await s.kill();
          await server.kill();
          await db.drop();
        }
      },
    };
  } catch (e) {
    if (server) await server.kill();
    await db.drop().catch(() => {});
    throw e;
  }
}

/** Current global version from GET /flags (asserting 200 and the ETag). */
export async function currentVersion(client) {
  const r = await client.get('/flags');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('etag'), `"${r.json.version}"`);
  return r.json.version;
}

/** Create a flag through the admin API, asserting 201; returns the flag. */
export async function createFlag(admin, flag) {
  const r = await admin.post('/api/flags', flag);
  assert.equal(r.status, 201, `create ${flag.name}: ${r.status} ${r.text}`);
  return r.json;
}

// ------------------------------------------------------------------ evaluation model

/** MurmurHash3 x86 32-bit of the UTF-8 bytes of str. */
export function murmur3(str, seed = 0) {
  const data = Buffer.from(str, 'utf8');
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const nblocks = data.length >> 2;
  for (let i = 0; i < nblocks; i++) {
    let k = data.readUInt32LE(i * 4);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = nblocks * 4;
  let k = 0;
  switch (data.length & 3) {
    case 3: k ^= data[tail + 2] << 16; // falls through
    case 2: k ^= data[tail + 1] << 8; // falls through
    case 1:
      k ^= data[tail];
      k = Math.imul(k, c1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, c2);
      h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** docs/evaluation.md bucket: 1..100. */
export function bucket(name, user) {
  return (murmur3(`${name}:${user}`) % 100) + 1;
}

/** docs/evaluation.md on(flag, user); user null/undefined/'' is anonymous. */
export function evaluate(flag, user) {
  if (!flag.enabled) return false;
  if (user && (flag.users || []).includes(user)) return true;
  if (flag.percentage === 100) return true;
  if (!user) return false;
  return bucket(flag.name, user) <= flag.percentage;
}
