// hostile.test.mjs -- hostile input and abusive clients (docs/api.md §4, §5).
//
// Every hostile request must get a clear 4xx (or have its connection
// closed), must leave the database as it was (GET /api/flags, the row count
// of every table, flag_events in particular), and the daemon must go on
// answering /healthz.  Requests that fetch() cannot express (or would
// normalise, like "%2e%2e") go over raw node:net sockets.  Every count and
// wait is bounded, and only loopback is used.
//
// Three daemons: `env` with the default limits for the request cases,
// `idle` (--idle-timeout 2 --max-connections 500) and `full`
// (--max-connections 100 --idle-timeout 30) for the connection cases.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  assertError, createFlag, parseResponse, psql, run, sleep, startEnv, tableCounts,
} from './lib/harness.mjs';

const MiB = 1024 * 1024;

// ------------------------------------------------------------------ helpers

/**
 * Write `head` (and then `body` chunks, if any) on a fresh connection and
 * read until the server answers completely, closes, or `timeout` ms pass.
 * Unlike harness.rawRequest, a reset or EPIPE is an outcome here (the
 * server may close on us mid-send), not an error.  Resolves
 * {status, headers, body, closed, timedOut, sent, ms}.
 */
function rawExchange(port, head, { body, timeout = 10000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    let closed = false;
    let sent = 0;
    const finish = (timedOut = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const res = parseResponse(Buffer.concat(chunks));
      resolve({ ...res, closed, timedOut, sent, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(true), timeout);
    sock.on('data', (d) => {
      chunks.push(d);
      if (parseResponse(Buffer.concat(chunks)).complete) finish();
    });
    sock.on('end', () => { closed = true; finish(); });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('error', () => { closed = true; finish(); });
    sock.on('connect', async () => {
      sock.write(head);
      sent += Buffer.byteLength(head);
      if (!body) return;
      for (const c of body) {
        if (done || chunks.length > 0) return;
        const ok = sock.write(c);
        sent += c.length;
        if (!ok) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
      }
    });
  });
}

/** A request head with the admin token. */
function head(env, method, target, headers = {}) {
  const h = {
    Host: `127.0.0.1:${env.server.port}`,
    Authorization: `Bearer ${env.adminToken}`,
    Connection: 'close',
    ...headers,
  };
  return `${method} ${target} HTTP/1.1\r\n` +
    Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
}

/** POST/PATCH raw bytes as a body with Content-Length over a raw socket. */
function rawBody(env, method, target, bytes, extra = {}) {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return rawExchange(env.server.port,
    head(env, method, target, { 'Content-Type': 'application/json', 'Content-Length': buf.length, ...extra }),
    { body: [buf] });
}

/** A 4xx answer, or a connection closed without any answer. */
function assert4xxOrClosed(res, what) {
  if (res.status === 0) {
    assert.ok(res.closed && !res.timedOut, `${what}: neither an answer nor a close (timed out after ${res.ms} ms)`);
    return;
  }
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected 4xx, got ${res.status}: ${res.body.slice(0, 300)}`);
}

/** The docs/api.md §5 error body of a raw answer (status and one of codes). */
function assertRawError(res, status, codes, what) {
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(res.status), `${what}: expected ${statuses.join('/')}, got ${res.status}: ${res.body.slice(0, 300)}`);
  let j;
  try { j = JSON.parse(res.body); } catch { assert.fail(`${what}: error body is not JSON: ${res.body.slice(0, 300)}`); }
  assert.ok(j && j.error && typeof j.error.message === 'string', `${what}: error body shape: ${res.body.slice(0, 300)}`);
  const cs = Array.isArray(codes) ? codes : [codes];
  assert.ok(cs.includes(j.error.code), `${what}: code ${j.error.code} not in ${cs.join(', ')}`);
}

/** GET /healthz answers 200 (fresh connection, bounded). */
async function assertHealthy(env, what = '') {
  const r = await fetch(env.server.base + '/healthz', { signal: AbortSignal.timeout(5000) });
  await r.arrayBuffer();
  assert.equal(r.status, 200, `/healthz after ${what}`);
}

/** What a refused request must leave as it was. */
async function dbState(env) {
  const flags = await env.admin.get('/api/flags');
  assert.equal(flags.status, 200, flags.text);
  const events = await psql(env.db.url, 'SELECT count(*) FROM flag_events');
  return { flags: flags.json, events: Number(events), counts: await tableCounts(env.db.url) };
}

/** Run fn, then assert the database is unchanged and the daemon healthy. */
async function unchanged(env, what, fn) {
  const s0 = await dbState(env);
  await fn();
  await assertHealthy(env, what);
  assert.deepEqual(await dbState(env), s0, `${what}: database unchanged`);
}

/** Open n raw sockets that send nothing; resolves once all are connected
 * (or failed).  Each gets .closedAt (ms since t0) when the server closes it. */
async function openIdle(port, n, t0) {
  const socks = [];
  await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.closedAt = null;
    s.on('connect', resolve);
    s.on('error', () => { if (s.closedAt === null) s.closedAt = Date.now() - t0; resolve(); });
    s.on('end', () => { if (s.closedAt === null) s.closedAt = Date.now() - t0; });
    s.on('close', () => { if (s.closedAt === null) s.closedAt = Date.now() - t0; resolve(); });
    s.on('data', () => {});
    socks.push(s);
  })));
  return socks;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
};

// ------------------------------------------------------------------ request cases

describe('hostile requests', () => {
  let env;
  before(async () => {
    env = await startEnv();
    await createFlag(env.admin, { name: 'existing', description: 'd', owner: 'o', enabled: true, percentage: 40, users: ['u1'] });
    await createFlag(env.admin, { name: 'zero', percentage: 0 });
  });
  after(async () => {
    await env?.close();
  });

  const MALFORMED = [
    '{', '{"name":', '{"name":"x",}', '{"name":"x"}}', '{"name":"x" "owner":"y"}', 'nul', '{"name":"\\u00',
    '{"name":"x\\q"}', "{'name':'x'}", '{"name":"x","users":["a",]}', '{"name":"x"}\u0000', '\ufeff{"name":"x"}',
    '{"name":"x","percentage":0x10}', '{"name":"x","percentage":+1}', '{"name":"x","percentage":NaN}',
    '{"name":"x","percentage":01}', '{"name":"x",,"owner":"y"}',
  ];

  test('malformed and truncated JSON: 400 invalid_json', async () => {
    await unchanged(env, 'malformed JSON', async () => {
      for (const raw of MALFORMED) {
        for (const [m, p] of [['POST', '/api/flags'], ['PATCH', '/api/flags/existing']]) {
          const r = await env.admin.request(m, p, { raw, headers: { 'Content-Type': 'application/json' } });
          assertError(r, 400, 'invalid_json');
        }
      }
      // A body cut short by the client: Content-Length promises more than
      // comes, then the client half-closes.  The server must not act on it.
      const cut = Buffer.from('{"name":"cut_short","description":"');
      const r = await new Promise((resolve) => {
        const s = net.connect(env.server.port, '127.0.0.1', () => {
          s.write(head(env, 'POST', '/api/flags', { 'Content-Type': 'application/json', 'Content-Length': cut.length + 100 }));
          s.end(cut);
        });
        const got = [];
        s.on('data', (d) => got.push(d));
        s.on('error', () => {});
        s.on('close', () => resolve(parseResponse(Buffer.concat(got))));
        setTimeout(() => s.destroy(), 5000);
      });
      assert.ok(r.status === 0 || (r.status >= 400 && r.status < 500), `truncated body: got ${r.status}`);
    });
  });

  test('JSON nested 10 000 deep: 400', async () => {
    await unchanged(env, 'deep JSON', async () => {
      const bodies = [
        '['.repeat(10000) + ']'.repeat(10000),
        '{"a":'.repeat(10000) + '1' + '}'.repeat(10000),
        '{"name":"deep","users":' + '['.repeat(10000) + ']'.repeat(10000) + '}',
        '{"name":"deep","description":' + '{"a":'.repeat(10000) + 'null' + '}'.repeat(10000) + '}',
        '['.repeat(10000), // unterminated as well
      ];
      for (const raw of bodies) {
        for (const [m, p] of [['POST', '/api/flags'], ['PATCH', '/api/flags/existing'], ['POST', '/ofrep/v1/evaluate/flags']]) {
          const r = await env.admin.request(m, p, { raw, headers: { 'Content-Type': 'application/json' } });
          assert.equal(r.status, 400, `${m} ${p} with ${raw.slice(0, 20)}...: ${r.status} ${r.text.slice(0, 200)}`);
        }
      }
    });
  });

  test('percentage 1e999, 50.0 and friends: 400; -0 means 0 or is refused', async () => {
    await unchanged(env, 'odd percentages', async () => {
      for (const v of ['1e999', '-1e999', '50.0', '1e2', '100.0', '0.0', '-0.0', '5e-1', '101', '-1',
        '9223372036854775808', '-9223372036854775809', '18446744073709551616', '1e308', 'true', '"50"', 'null', '[50]']) {
        const create = await env.admin.request('POST', '/api/flags', { raw: `{"name":"pct_x","percentage":${v}}` });
        assertError(create, 400, ['invalid_value', 'invalid_json']);
        const patch = await env.admin.request('PATCH', '/api/flags/existing', { raw: `{"percentage":${v}}` });
        assertError(patch, 400, ['invalid_value', 'invalid_json']);
      }
      // "-0" is a JSON integer equal to 0: refusing it is fine, and so is
      // taking it as 0 -- on a flag at 0 % that must change nothing.
      const r = await env.admin.request('PATCH', '/api/flags/zero', { raw: '{"percentage":-0}' });
      if (r.status === 200) {
        assert.equal(r.json.percentage, 0);
        assert.equal(r.json.revision, 1, '-0 on a flag at 0 % is no change');
      } else {
        assertError(r, 400, ['invalid_value', 'invalid_json']);
      }
    });
  });

  test('NUL characters (\\u0000) in names, users, descriptions and owners: 400', async () => {
    await unchanged(env, 'NUL', async () => {
      const bad = [
        ['POST', '/api/flags', { name: 'a\u0000b' }],
        ['POST', '/api/flags', { name: 'nul\u0000' }],
        ['POST', '/api/flags', { name: 'nul_desc', description: 'before\u0000after' }],
        ['POST', '/api/flags', { name: 'nul_owner', owner: '\u0000' }],
        ['POST', '/api/flags', { name: 'nul_user', users: ['ok', 'x\u0000y'] }],
        ['POST', '/api/flags', { name: 'nul_user2', users: ['\u0000'] }],
        ['PATCH', '/api/flags/existing', { description: 'x\u0000' }],
        ['PATCH', '/api/flags/existing', { owner: '\u0000owner' }],
        ['PATCH', '/api/flags/existing', { users: ['u1\u0000'] }],
        ['POST', '/api/tokens', { name: 'tok\u0000en', role: 'client' }],
      ];
      for (const [m, p, body] of bad) {
        const r = await env.admin.request(m, p, { body });
        assertError(r, 400, ['invalid_value', 'invalid_json', 'bad_request']);
      }
    });
  });

  test('invalid UTF-8 (raw bytes) in names, users, descriptions and owners: 400', async () => {
    const seqs = {
      'lone 0xff': [0xff],
      'lone continuation': [0x80],
      'overlong slash': [0xc0, 0xaf],
      'overlong NUL': [0xc0, 0x80],
      'UTF-16 surrogate': [0xed, 0xa0, 0x80],
      'truncated 3-byte': [0xe2, 0x82],
      'above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
      'latin-1 e-acute': [0xe9],
    };
    await unchanged(env, 'invalid UTF-8', async () => {
      for (const [what, bytes] of Object.entries(seqs)) {
        const s = (pre, post) => Buffer.concat([Buffer.from(pre), Buffer.from(bytes), Buffer.from(post)]);
        const bodies = [
          ['POST', '/api/flags', s('{"name":"', '"}')],
          ['POST', '/api/flags', s('{"name":"utf_desc","description":"', '"}')],
          ['POST', '/api/flags', s('{"name":"utf_owner","owner":"', '"}')],
          ['POST', '/api/flags', s('{"name":"utf_user","users":["', '"]}')],
          ['PATCH', '/api/flags/existing', s('{"description":"', '"}')],
          ['PATCH', '/api/flags/existing', s('{"users":["', '"]}')],
          ['PATCH', '/api/flags/existing', s('{"', '":1}')],
        ];
        for (const [m, p, body] of bodies) {
          const r = await env.admin.request(m, p, { raw: body, headers: { 'Content-Type': 'application/json' } });
          assertError(r, 400, ['invalid_json', 'invalid_value']);
          assert.ok(r.text.length > 0 && r.json, `${what}: the error answer is valid JSON`);
        }
      }
    });
  });

  test('invalid UTF-8 and NUL in query parameters: the answer is 400 or valid JSON', async () => {
    await unchanged(env, 'query bytes', async () => {
      for (const q of ['%FF', '%C0%AF', '%ED%A0%80', '%00', 'a%00b', '%E2%82', '%22%3C%3E%5C']) {
        for (const target of [`/flags?user=${q}`, `/flags/existing?user=${q}`]) {
          const r = await rawExchange(env.server.port, head(env, 'GET', target, { Authorization: `Bearer ${env.clientToken}` }));
          assert.ok(r.status === 200 || r.status === 400, `${target}: ${r.status}`);
          const j = JSON.parse(r.body); // throws on invalid JSON
          assert.ok(j && typeof j === 'object');
          // A user that is valid text comes back exactly.
          if (r.status === 200 && target.startsWith('/flags?') && q === '%22%3C%3E%5C') assert.equal(j.user, '"<>\\');
        }
      }
    });
  });

  test('10 001 users: 400; 10 000 are accepted', async () => {
    const users = Array.from({ length: 10001 }, (_, i) => `user-${String(i).padStart(5, '0')}`);
    await unchanged(env, '10 001 users', async () => {
      assertError(await env.admin.post('/api/flags', { name: 'many_users', users }), 400, 'invalid_value');
      assertError(await env.admin.patch('/api/flags/existing', { users }), 400, 'invalid_value');
    });
    // The limit is the count, not the body size: one fewer is fine.
    const ok = await env.admin.post('/api/flags', { name: 'many_users', users: users.slice(0, 10000) });
    assert.equal(ok.status, 201, ok.text.slice(0, 300));
    assert.equal(ok.json.users.length, 10000);
    assert.equal((await env.admin.del('/api/flags/many_users')).status, 204);
  });

  test('a 100 MiB body announced by Content-Length: 413 at once, before any body', async () => {
    await unchanged(env, '100 MiB Content-Length', async () => {
      for (const [m, p] of [['POST', '/api/flags'], ['PATCH', '/api/flags/existing'], ['POST', '/api/tokens'], ['POST', '/api/flags/existing/revert']]) {
        const r = await rawExchange(env.server.port,
          head(env, m, p, { 'Content-Type': 'application/json', 'Content-Length': 100 * MiB }), { timeout: 5000 });
        assertRawError(r, 413, 'payload_too_large', `${m} ${p}`);
        assert.ok(r.ms < 2000, `${m} ${p}: 413 took ${r.ms} ms`);
      }
    });
  });

  test('a chunked body without end: the server stops reading at the cap', async () => {
    await unchanged(env, 'endless chunked body', async () => {
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const framed = Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')]);
      // At most 64 MiB or 15 s from us; the server must end it long before.
      function* stream() { for (let i = 0; i < 1024; i++) yield framed; }
      const r = await rawExchange(env.server.port,
        head(env, 'POST', '/api/flags', { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }),
        { body: stream(), timeout: 15000 });
      assert.ok(!r.timedOut, `the server kept reading for ${r.ms} ms (${r.sent} bytes sent)`);
      assert4xxOrClosed(r, 'endless chunked body');
      if (r.status) assert.equal(r.status, 413);
      // 1 MiB cap plus what socket buffers hold on loopback.
      assert.ok(r.sent < 48 * MiB, `the server took ${r.sent} bytes before stopping`);
    });
  });

  test('1 MiB of headers: refused, connection not kept', async () => {
    await unchanged(env, 'huge headers', async () => {
      const one = head(env, 'GET', '/flags', { 'X-Pad': 'a'.repeat(MiB) });
      let r = await rawExchange(env.server.port, one, { timeout: 10000 });
      assert4xxOrClosed(r, 'one 1 MiB header');
      const many = head(env, 'GET', '/flags', Object.fromEntries(
        Array.from({ length: 16384 }, (_, i) => [`X-H${i}`, 'b'.repeat(56)])));
      assert.ok(many.length > MiB);
      r = await rawExchange(env.server.port, many, { timeout: 10000 });
      assert4xxOrClosed(r, '16 384 headers');
    });
  });

  test('URLs of 9 KiB (414) and 1 MiB (refused)', async () => {
    await unchanged(env, 'long URLs', async () => {
      let r = await rawExchange(env.server.port, head(env, 'GET', '/flags/' + 'a'.repeat(9 * 1024)));
      assertRawError(r, 414, ['bad_request'], '9 KiB URL');
      r = await rawExchange(env.server.port, head(env, 'GET', '/flags?user=' + 'u'.repeat(9 * 1024)));
      assertRawError(r, 414, ['bad_request'], '9 KiB query');
      r = await rawExchange(env.server.port, head(env, 'DELETE', '/api/flags/' + 'x'.repeat(MiB)), { timeout: 10000 });
      assert4xxOrClosed(r, '1 MiB URL');
    });
  });

  test('percent-encoding tricks in flag names never reach another flag', async () => {
    await unchanged(env, 'percent tricks', async () => {
      const targets = [
        ['GET', '/api/flags/%2e%2e'], ['GET', '/api/flags/%2E%2E/history'], ['PATCH', '/api/flags/%2e%2e'],
        ['DELETE', '/api/flags/%2e%2e'], ['DELETE', '/api/flags/existing%00'], ['DELETE', '/api/flags/%00existing'],
        ['DELETE', '/api/flags/existing%2f..'], ['DELETE', '/api/flags/existing%2F'], ['DELETE', '/api/flags/..%2fexisting'],
        ['GET', '/api/flags/a%2fb'], ['GET', '/flags/existing%00?user=u1'], ['GET', '/flags/%2e%2e%2fapi%2fflags'],
        ['DELETE', '/api/flags/existing%252f'], ['DELETE', '/api/flags/%'], ['DELETE', '/api/flags/%zz'],
        ['DELETE', '/api/flags/existing%20'], ['DELETE', '/api/tokens/%2e%2e'],
        ['DELETE', '/api/tokens/..%2f..%2fflags'], ['POST', '/api/flags/%2e%2e/revert'],
        ['GET', '/api/flags/existing/%2e%2e/history'], ['DELETE', '/api/flags/existing/..'],
      ];
      for (const [m, t] of targets) {
        const hdr = m === 'PATCH' || m === 'POST' ? { 'Content-Type': 'application/json', 'Content-Length': 2 } : {};
        const r = await rawExchange(env.server.port, head(env, m, t, hdr), { body: hdr['Content-Length'] ? [Buffer.from('{}')] : undefined });
        assert.ok([400, 404, 405].includes(r.status), `${m} ${t}: expected 400/404/405, got ${r.status}: ${r.body.slice(0, 200)}`);
      }
    });
    // And the flag is still there, unchanged.
    const e = await env.admin.get('/api/flags/existing');
    assert.equal(e.status, 200);
    assert.equal(e.json.revision, 1);
  });

  test('flag names that are not UTF-8 in the path: 404 or 400, never a database error', async () => {
    // A name that cannot exist must not reach PostgreSQL, which refuses
    // invalid UTF-8 (22021) -- a client error, not 503 "unavailable".
    await unchanged(env, 'non-UTF-8 names', async () => {
      for (const n of ['%C0%AE%C0%AE', '%FF', '%ED%A0%80', 'existing%FF', '%E2%82']) {
        for (const [m, t, body] of [['DELETE', `/api/flags/${n}`], ['GET', `/api/flags/${n}/history`],
          ['PATCH', `/api/flags/${n}`, '{"enabled":true}'], ['POST', `/api/flags/${n}/revert`, '{"event":1}'],
          ['GET', `/api/flags/${n}`], ['GET', `/flags/${n}`], ['DELETE', `/api/tokens/${n}`]]) {
          const hdr = body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {};
          const r = await rawExchange(env.server.port, head(env, m, t, hdr), { body: body ? [Buffer.from(body)] : undefined });
          assert.ok([400, 404].includes(r.status), `${m} ${t}: expected 404 or 400, got ${r.status}: ${r.body.slice(0, 200)}`);
        }
      }
    });
  });

  test('the request log cannot be forged through the path or X-Request-Id', async () => {
    const marker = `forged-${Date.now()}`;
    const evil = `%0A%7B%22level%22%3A%22error%22%2C%22msg%22%3A%22${marker}%22%7D%0D%0A`;
    await unchanged(env, 'log injection', async () => {
      const r = await rawExchange(env.server.port, head(env, 'GET', `/flags/x${evil}?user=u`,
        { Authorization: `Bearer ${env.clientToken}`, 'X-Request-Id': `id"}\n{"level":"error","msg":"${marker}` }));
      assert.equal(r.status, 404);
      assert.notEqual(r.headers['x-request-id'], undefined);
      assert.ok(!r.headers['x-request-id'].includes('"'), 'a request id with quotes is not echoed');
    });
    const lines = await env.server.waitLogs((l) => typeof l.path === 'string' && l.path.includes(marker));
    assert.equal(lines.length, 1, 'the forged request is logged once');
    const raw = env.server.stderr.split('\n').filter((l) => l.includes(marker));
    assert.equal(raw.length, 1, `the marker appears on ${raw.length} stderr lines: ${raw.join(' | ')}`);
    assert.doesNotThrow(() => JSON.parse(raw[0]));
    assert.ok(!env.server.logs().some((l) => l.msg === marker), 'a forged log line was written');
  });

  test('SQL meta-characters: refused where invalid, stored and returned exactly where valid', async () => {
    const nasty = ["'; DROP TABLE flags; --", '\\', '$1', '$$; DROP TABLE flag_events; $$', "' OR '1'='1",
      '%s%n', '\\x00', 'E\'\\\\\'', '); DELETE FROM tokens; --', '"quoted"', "O'Brien", '::text', '/* */', '{"a":1}', '{x,y}'];
    // Names cannot hold them (docs/api.md §1 pattern): 400, nothing written.
    await unchanged(env, 'SQL in names', async () => {
      for (const n of nasty) {
        assertError(await env.admin.post('/api/flags', { name: n }), 400, 'invalid_value');
      }
      for (const q of ["days=1;DROP TABLE flags", "days=1'", 'days=$1', "rolled_out_days=0%27%20OR%201%3D1"]) {
        const r = await env.admin.get(`/api/stale?${q}`);
        assertError(r, 400, ['bad_request', 'invalid_value']);
      }
    });
    // description, owner and users accept them and must round-trip exactly.
    const users = [...nasty].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const desc = nasty.join(' ');
    const owner = "'; DROP TABLE flags; -- \\ $1";
    const created = await createFlag(env.admin, { name: 'sql_meta', description: desc, owner, users, enabled: true, percentage: 0 });
    for (const f of [created, (await env.admin.get('/api/flags/sql_meta')).json]) {
      assert.equal(f.description, desc);
      assert.equal(f.owner, owner);
      assert.deepEqual(f.users, users);
    }
    const patched = await env.admin.patch('/api/flags/sql_meta', { description: "$1 $2 '; --", owner: '\\\\' });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.description, "$1 $2 '; --");
    assert.equal(patched.json.owner, '\\\\');
    // Straight from the database too (not only from the snapshot).
    const dbUsers = await psql(env.db.url, "SELECT array_to_json(users) FROM flag_states WHERE flag = 'sql_meta' AND environment = 'production'");
    assert.deepEqual(JSON.parse(dbUsers), users);
    // Listed users evaluate on, each exactly.
    for (const u of users) {
      const r = await env.client.get(`/flags/sql_meta?user=${encodeURIComponent(u)}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.on, true, `listed user ${JSON.stringify(u)}`);
    }
    // History keeps them too.
    const h = await env.admin.get('/api/flags/sql_meta/history');
    assert.equal(h.status, 200);
    assert.equal(h.json.events.at(-1).after.description, desc);
    // Token names are strings too.
    const tok = await env.admin.post('/api/tokens', { name: "'; DROP TABLE tokens; --", role: 'client' });
    assert.equal(tok.status, 201, tok.text);
    const list = await env.admin.get('/api/tokens');
    assert.ok(list.json.tokens.some((t) => t.name === "'; DROP TABLE tokens; --"));
    assert.equal((await env.admin.del(`/api/tokens/${tok.json.id}`)).status, 204);
    // Every table is still there.
    const counts = await tableCounts(env.db.url);
    for (const t of ['flags', 'flag_events', 'tokens']) assert.ok(t in counts, `table ${t} exists`);
    assert.equal((await env.admin.del('/api/flags/sql_meta')).status, 204);
  });

  test('token secrets are never stored or logged in clear', async () => {
    const made = await env.admin.post('/api/tokens', { name: 'secret-check', role: 'client' });
    assert.equal(made.status, 201, made.text);
    const secret = made.json.token;
    // Use it, and misuse variants of it, so the log has every chance to leak it.
    assert.equal((await env.server.client(secret).get('/flags')).status, 200);
    assert.equal((await env.server.client(secret + 'x').get('/flags')).status, 401);
    assert.equal((await env.server.client(secret).get('/api/flags')).status, 403);
    await env.anon.get(`/flags?user=${secret.slice(0, 8)}`); // a user id is not a secret; just traffic
    const secrets = [secret, env.adminToken, env.clientToken];
    const body = (s) => s.replace(/^vx_/, '');
    // The database holds only SHA-256 hashes: dump it all and search.
    const dump = await run('pg_dump', ['--data-only', '--no-owner', '-d', env.db.url], { timeout: 30000 });
    assert.equal(dump.code, 0, dump.stderr);
    assert.ok(dump.stdout.includes('secret-check'), 'the dump holds the tokens table (control)');
    for (const s of secrets) {
      assert.ok(!dump.stdout.includes(body(s)), 'a secret appears in the database dump');
      const b64 = Buffer.from(s).toString('base64');
      const hex = Buffer.from(s).toString('hex');
      assert.ok(!dump.stdout.includes(hex) && !dump.stdout.includes(b64), 'a secret appears encoded in the database');
    }
    const hashes = (await psql(env.db.url, "SELECT encode(secret_hash, 'hex') FROM tokens")).split('\n');
    for (const s of secrets) {
      assert.ok(hashes.includes(createHash('sha256').update(s).digest('hex')), 'the token is stored as its SHA-256');
    }
    // Nor in what the daemon printed.
    await env.server.waitLogs((l) => l.path === '/api/flags' && l.status === 403);
    assert.ok(env.server.stderr.includes('"path":"/flags"'), 'the request log is captured (control)');
    for (const s of secrets) {
      assert.ok(!env.server.stderr.includes(body(s)), 'a secret appears in the daemon\'s stderr');
      assert.ok(!env.server.stdout.includes(body(s)), 'a secret appears in the daemon\'s stdout');
    }
    // GET /api/tokens never shows it either.
    const list = await env.admin.get('/api/tokens');
    assert.ok(!list.text.includes(body(secret)));
  });

  test('a revoked token stops working within a second', async () => {
    const made = await env.admin.post('/api/tokens', { name: 'to-revoke', role: 'admin' });
    assert.equal(made.status, 201, made.text);
    const c = env.server.client(made.json.token);
    assert.equal((await c.get('/api/flags')).status, 200);
    assert.equal((await env.admin.del(`/api/tokens/${made.json.id}`)).status, 204);
    const deadline = Date.now() + 1000;
    let r;
    do {
      r = await c.get('/api/flags');
      if (r.status === 401) break;
      await sleep(50);
    } while (Date.now() < deadline);
    assertError(r, 401, 'unauthorized');
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer/);
    assertError(await c.post('/api/flags', { name: 'by_revoked' }), 401, 'unauthorized');
    assert.equal((await env.admin.get('/api/flags/by_revoked')).status, 404);
  });

  test('a storm of failed authentications does not slow a good client', async () => {
    const good = async () => {
      const t0 = process.hrtime.bigint();
      const r = await env.client.get('/flags?user=alice');
      assert.equal(r.status, 200);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    for (let i = 0; i < 10; i++) await good(); // warm up
    const base = [];
    for (let i = 0; i < 40; i++) base.push(await good());

    // 2000 bad-token requests over 20 concurrent keep-alive connections.
    let refused = 0;
    let other = 0;
    const storm = Array.from({ length: 20 }, (_, w) => (async () => {
      const bad = env.server.client(`vx_${'A'.repeat(42)}${w}`);
      for (let i = 0; i < 100; i++) {
        const r = await bad.get(i % 2 ? '/api/flags' : '/flags');
        if (r.status === 401) refused++;
        else other++;
      }
    })());
    let stormDone = false;
    const all = Promise.all(storm).then(() => { stormDone = true; });
    const during = [];
    while (!stormDone && during.length < 200) during.push(await good());
    await all;
    assert.equal(refused, 2000, `bad tokens: ${refused} refused, ${other} otherwise`);
    assert.ok(during.length >= 5, `only ${during.length} good requests completed during the storm`);
    const b = median(base);
    const d = median(during);
    assert.ok(d < 50 || d < 10 * b, `good client median ${d.toFixed(2)} ms during the storm vs ${b.toFixed(2)} ms before`);
  });
});

// ------------------------------------------------------------------ connection cases

describe('idle connections', () => {
  let env;
  before(async () => {
    env = await startEnv({ args: ['--idle-timeout', '2', '--max-connections', '500'] });
  });
  after(async () => {
    await env?.close();
  });

  test('400 connections that never send a byte are closed after the idle timeout; a real client is served meanwhile', async () => {
    const t0 = Date.now();
    const socks = await openIdle(env.server.port, 400, t0);
    try {
      await sleep(300);
      // A real client gets its answers while they sit there.
      for (let i = 0; i < 5; i++) {
        const s = Date.now();
        const r = await env.client.get('/flags');
        assert.equal(r.status, 200);
        assert.ok(Date.now() - s < 1000, `served in ${Date.now() - s} ms next to 400 idle connections`);
      }
      // All closed by the server: 2 s idle timeout plus slack for its timer.
      const deadline = t0 + 9000;
      while (socks.some((s) => s.closedAt === null) && Date.now() < deadline) await sleep(100);
      const open = socks.filter((s) => s.closedAt === null).length;
      assert.equal(open, 0, `${open} of 400 idle connections still open after ${Date.now() - t0} ms`);
      const early = socks.filter((s) => s.closedAt < 1500).length;
      assert.ok(early < 100, `${early} idle connections were closed well before the 2 s timeout`);
      await assertHealthy(env, 'idle connections');
    } finally {
      for (const s of socks) s.destroy();
    }
  });
});

describe('more connections than the limit', () => {
  let env;
  before(async () => {
    env = await startEnv({ args: ['--max-connections', '100', '--idle-timeout', '30'] });
  });
  after(async () => {
    await env?.close();
  });

  test('connections over --max-connections are refused; service resumes when they go', async () => {
    const t0 = Date.now();
    const socks = await openIdle(env.server.port, 160, t0);
    try {
      await sleep(1500);
      const closed = socks.filter((s) => s.closedAt !== null).length;
      assert.ok(closed < 160, 'every connection was refused: the limit does not let 100 in');
      // A client that arrives at the limit must learn so at once (a close
      // or a 503), not hang unanswered in the listen backlog until some
      // idle connection times out.
      const r = await rawExchange(env.server.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { timeout: 3000 });
      assert.ok(!r.timedOut, `a new client at the limit got neither an answer nor a close within ${r.ms} ms ` +
        `(${closed} of 160 connections refused with --max-connections 100: the extras wait in the listen backlog)`);
      assert.ok(closed >= 60, `only ${closed} of 160 connections refused with a limit of 100`);
    } finally {
      for (const s of socks) s.destroy();
    }
    // Once they are gone the server serves again, promptly.
    const deadline = Date.now() + 5000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      try {
        const r = await fetch(env.server.base + '/healthz', { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        ok = r.status === 200;
      } catch {
        await sleep(100);
      }
    }
    assert.ok(ok, '/healthz did not answer within 5 s after the extra connections went away');
    const r = await env.client.get('/flags');
    assert.equal(r.status, 200);
  });
});
