// last_evaluated_at per flag and environment (server/usage.h, usage.c,
// store_usage.c, migrations/0005_flag_usage.sql).  What evaluates: GET
// /flags?user= (every flag of the token's environment), GET /flags/<name>
// (that flag), a 304 or a long-poll of either, OFREP single (that flag) and
// bulk (every flag, a 304 too); GET /flags without a user evaluates nothing.
// The daemon writes its marks to flag_usage every --last-evaluated-interval
// seconds (1 here) and reads every instance's rows back; the admin answers
// (GET /api/flags, GET /api/flags/<name>, GET /api/stale, the flag a POST or
// PATCH returns) carry last_evaluated_at (RFC 3339 or null) on top, for the
// request's environment, and in each environments.<env> state.  SIGTERM
// writes the last batch; kill -9 loses at most the marks not yet written.
//
// Every test works in environments of its own (a per-user GET /flags marks
// every flag of its environment), so that no test's evaluations show in
// another's.  "Nothing moved" is asserted after a barrier: an evaluation of
// the flag zz_barrier in the environment `barrier`, evaluated after the
// requests under test and waited for until the same instance shows it, so a
// write and a read-back have happened since (with a real wait, never a bare
// sleep that would pass with a writer that never runs).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { PG_URL, RFC3339_MS, SANITIZED, Server, createFlag, psql, sleep, startEnv, vexil } from './lib/harness.mjs';
import { hold, startServers, waitFor } from './lib/cluster.mjs';

const INTERVAL_MS = 1000;
const ARGS = ['--last-evaluated-interval', String(INTERVAL_MS / 1000)];
// A server that never writes on its own during a test: only SIGTERM's last
// batch can write what it marks.
const LONG_ARGS = ['--last-evaluated-interval', '60'];
const SLACK_MS = SANITIZED ? 2500 : 1000;
// A mark shows on the instance that took it after its next write (within an
// interval), on another instance after that instance's next read (within
// two intervals).
const SEEN_MS = INTERVAL_MS + SLACK_MS;
const SEEN_ELSEWHERE_MS = 2 * INTERVAL_MS + SLACK_MS;

const BARRIER = 'zz_barrier';
// Environments, each for one test (production is test 2's).
const ENVS = ['staging', 'ofrepone', 'ofrepbulk', 'quiet', 'poll304', 'pollone', 'polllong', 'pollofrep',
  'timing', 'restart', 'noconn', 'twin', 'gone', 'doomed', 'late', 'again', BARRIER];

let env;
const tok = {}; // environment name -> a client token's secret
let feStaging; // a frontend token's secret, of staging

before(async () => {
  env = await startEnv({ args: ARGS });
  for (const e of ENVS) {
    const r = await env.admin.post('/api/environments', { name: e });
    assert.equal(r.status, 201, r.text);
  }
  for (const e of ['production', ...ENVS]) {
    const r = await env.admin.post('/api/tokens', { name: `client-${e}`, role: 'client', environment: e });
    assert.equal(r.status, 201, r.text);
    tok[e] = r.json.token;
  }
  const r = await env.admin.post('/api/tokens', { name: 'fe-staging', role: 'frontend', environment: 'staging' });
  assert.equal(r.status, 201, r.text);
  feStaging = r.json.token;
  await createFlag(env.admin, { name: BARRIER, enabled: true, percentage: 100 });
});
after(async () => {
  await env?.close(); // and every server in env.extra
});

// ---------------------------------------------------------------- helpers

const q = encodeURIComponent;
const ctx = { context: { targetingKey: 'u' } };
const ms = (v) => (v === null ? null : Date.parse(v));

/** Assert that object o (a flag or a state) has last_evaluated_at: RFC 3339 or null. */
function leaOf(o, what) {
  assert.ok(o && Object.hasOwn(o, 'last_evaluated_at'), `${what} has no last_evaluated_at: ${JSON.stringify(o)}`);
  const v = o.last_evaluated_at;
  if (v !== null) assert.match(v, RFC3339_MS, `${what}.last_evaluated_at`);
  return v;
}

/**
 * Check an admin flag object: last_evaluated_at on top (for environment
 * top) and in every environments.<env>, the top one equal to its
 * environment's.  Returns {env: RFC 3339 or null}.
 */
function leaAll(flag, top, what = flag.name) {
  const out = {};
  assert.ok(flag.environments && typeof flag.environments === 'object', `${what}: no environments`);
  for (const [e, s] of Object.entries(flag.environments)) out[e] = leaOf(s, `${what}.environments.${e}`);
  assert.equal(leaOf(flag, what), out[top], `${what}: last_evaluated_at on top is environments.${top}'s`);
  return out;
}

/** GET /api/flags/<name>?env=e on the server of admin: {env: value} (checked). */
async function leaFlag(admin, name, e = 'production') {
  const r = await admin.get(`/api/flags/${q(name)}?env=${q(e)}`);
  assert.equal(r.status, 200, `GET /api/flags/${name}?env=${e}: ${r.text}`);
  return leaAll(r.json, e, `GET /api/flags/${name}?env=${e}`);
}

/** last_evaluated_at of name in e, as the server of admin shows it (ms, or null). */
async function seen(admin, name, e) {
  return ms((await leaFlag(admin, name, e))[e]);
}

/**
 * Wait until the server of admin shows name in e evaluated after `than`
 * (ms; null: at all); returns the time (ms).  Fails after timeout.
 */
async function waitSeen(admin, name, e, than = null, timeout = SEEN_MS) {
  let last;
  const ok = await waitFor(async () => {
    last = await seen(admin, name, e);
    return last !== null && (than === null || last > than);
  }, timeout, 50);
  assert.ok(ok, `${name} in ${e}: expected a last_evaluated_at ${than === null ? 'at all' : `after ${new Date(than).toISOString()}`} within ${timeout} ms, ` +
    `it stays ${last === null ? null : new Date(last).toISOString()}`);
  return last;
}

/**
 * Evaluate the barrier flag on the server of admin and wait until that
 * server shows it: what every request before this call marked there has
 * been written and read back since.
 */
async function barrier(admin) {
  const before = await seen(admin, BARRIER, BARRIER);
  const c = admin.server.client(tok[BARRIER]);
  const r = await c.get(`/flags/${BARRIER}?user=b`);
  assert.equal(r.status, 200, r.text);
  await waitSeen(admin, BARRIER, BARRIER, before);
}

/** The flag_usage rows of flag: {environment: µs}. */
async function dbUsage(flag) {
  const out = await psql(env.db.url, `SELECT environment, (extract(epoch from last_evaluated_at) * 1000000)::bigint
    FROM flag_usage WHERE flag = '${flag}' ORDER BY environment`);
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => {
    const [e, us] = l.split('|');
    return [e, Number(us)];
  }));
}

/** The time (ms) in flag_usage of flag in environment e, which stopped server s wrote; fails with its log if none. */
async function writtenAtStop(s, flag, e) {
  const db = await dbUsage(flag);
  assert.ok(db[e], `the SIGTERM batch was not written: flag_usage of ${flag} ${JSON.stringify(db)}; ` +
    `its log ends:\n${s.stderr.slice(-2000)}`);
  return Math.floor(db[e] / 1000);
}

/** Every flag's value in environment e in GET /api/flags?env=e: {name: value}. */
async function listed(admin, e) {
  const r = await admin.get(`/api/flags?env=${q(e)}`);
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.json.flags.map((f) => [f.name, leaAll(f, e, `GET /api/flags?env=${e}: ${f.name}`)[e]]));
}

/** Assert t (ms) lies in [from, to + INTERVAL_MS + SLACK_MS]: the time of a request made between from and to. */
function assertTimeOf(t, from, to, what) {
  const iso = (x) => new Date(x).toISOString();
  assert.ok(t >= from && t <= to + INTERVAL_MS + SLACK_MS,
    `${what}: last_evaluated_at ${iso(t)} is not the time of the request (${iso(from)} .. ${iso(to)} + ${INTERVAL_MS + SLACK_MS} ms)`);
}

/** The OFREP bulk ETag (server/ofrep.c bulk_etag): "<version>-<first 16 hex digits of SHA-256 of the context>". */
function ofrepEtag(version, context) {
  const keys = Object.keys(context).sort();
  const canon = JSON.stringify(Object.fromEntries(keys.map((k) => [k, context[k]])));
  return `"${version}-${createHash('sha256').update(canon).digest('hex').slice(0, 16)}"`;
}

/** Wait until server s is ready (/readyz 200: its flags are loaded); /healthz alone is not enough. */
async function ready(s) {
  const ok = await waitFor(async () => {
    const r = await fetch(s.base + '/readyz', { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status === 200;
  }, SANITIZED ? 30000 : 10000, 10);
  assert.ok(ok, `${s.base} not ready: ${s.stderr.slice(-2000)}`);
  return s;
}

/**
 * Start server s and ask GET p with the admin token from the moment it
 * answers: returns the first 200 answer (what an admin page asking right
 * after a restart sees).  s is ready on return.
 */
async function startAskingEarly(s, p) {
  s.port = undefined;
  const started = s.start();
  let first;
  let failed = false;
  started.catch(() => { failed = true; });
  const deadline = Date.now() + (SANITIZED ? 30000 : 10000);
  const poll = (async () => {
    while (!first && !failed && Date.now() < deadline) {
      if (s.port) {
        try {
          const r = await s.client(env.adminToken).get(p);
          if (r.status === 200) first = r;
        } catch {
          // not listening yet
        }
      }
      if (!first) await sleep(2);
    }
  })();
  await started;
  await poll;
  assert.ok(first, `GET ${p} never answered 200 after the start`);
  await ready(s);
  return first;
}

async function envVersion(e) {
  const r = await env.admin.get(`/flags?env=${q(e)}`);
  assert.equal(r.status, 200, r.text);
  return r.json.version;
}

// ---------------------------------------------------------------- tests

test('a new flag: last_evaluated_at null on top and in every environment, in every admin answer', async () => {
  const created = await createFlag(env.admin, { name: 'u_new', enabled: true, percentage: 50 });
  const envNames = ['production', ...ENVS];
  let all = leaAll(created, 'production', 'POST /api/flags');
  assert.deepEqual(Object.keys(all).sort(), envNames.sort(), 'the POST answer names every environment');
  for (const e of envNames) assert.equal(all[e], null, `POST answer: ${e}`);

  const p = await env.admin.patch('/api/flags/u_new?env=staging', { percentage: 60 });
  assert.equal(p.status, 200, p.text);
  all = leaAll(p.json, 'staging', 'PATCH ?env=staging');
  for (const e of envNames) assert.equal(all[e], null, `PATCH answer: ${e}`);

  for (const e of ['production', 'staging']) {
    all = await leaFlag(env.admin, 'u_new', e);
    for (const n of envNames) assert.equal(all[n], null, `GET /api/flags/u_new?env=${e}: ${n}`);
    assert.equal((await listed(env.admin, e)).u_new, null, `GET /api/flags?env=${e}`);
  }
  const s = await env.admin.get('/api/stale?days=0');
  assert.equal(s.status, 200, s.text);
  const st = s.json.flags.find((f) => f.name === 'u_new');
  assert.ok(st, `u_new in GET /api/stale?days=0: ${s.text.slice(0, 300)}`);
  for (const n of envNames) assert.equal(leaAll(st, 'production', 'GET /api/stale')[n], null, `GET /api/stale: ${n}`);
  assert.deepEqual(await dbUsage('u_new'), {}, 'no flag_usage row');
});

test('each evaluating route moves last_evaluated_at of what it evaluated, in its own environment only', async () => {
  for (const n of ['u_a', 'u_b', 'u_c']) await createFlag(env.admin, { name: n, enabled: true, percentage: 50 });
  const names = Object.keys(await listed(env.admin, 'production'));
  assert.ok(names.includes('u_c') && names.includes(BARRIER), names.join());
  const c = (e) => env.server.client(tok[e]);

  // One request per route, each in an environment of its own.
  const t0 = Date.now();
  const res = await Promise.all([
    c('staging').get('/flags?user=x'), // every flag, in staging
    c('production').get('/flags/u_a?user=x'), // u_a, in production
    c('ofrepone').post('/ofrep/v1/evaluate/flags/u_b', ctx), // u_b, in ofrepone
    c('ofrepbulk').post('/ofrep/v1/evaluate/flags', ctx), // every flag, in ofrepbulk
  ]);
  const t1 = Date.now();
  for (const r of res) assert.equal(r.status, 200, r.text);
  const staging = {};
  for (const n of names) {
    staging[n] = await waitSeen(env.admin, n, 'staging');
    assertTimeOf(staging[n], t0, t1, `${n} in staging (GET /flags?user= of a staging client token)`);
    assertTimeOf(await waitSeen(env.admin, n, 'ofrepbulk'), t0, t1, `${n} in ofrepbulk (OFREP bulk)`);
  }
  assertTimeOf(await waitSeen(env.admin, 'u_a', 'production'), t0, t1, 'u_a in production (GET /flags/u_a?user=)');
  assertTimeOf(await waitSeen(env.admin, 'u_b', 'ofrepone'), t0, t1, 'u_b in ofrepone (OFREP single)');
  await barrier(env.admin);
  const prod = await listed(env.admin, 'production');
  const one = await listed(env.admin, 'ofrepone');
  for (const n of names) {
    if (n !== 'u_a') assert.equal(prod[n], null, `${n} moved in production (only GET /flags/u_a evaluated there)`);
    if (n !== 'u_b') assert.equal(one[n], null, `${n} moved in ofrepone (only OFREP u_b evaluated there)`);
  }
  for (const e of ['quiet', 'twin']) {
    const o = await listed(env.admin, e);
    for (const n of names) assert.equal(o[n], null, `${n} moved in ${e}, where nothing evaluated`);
  }
  assert.deepEqual(Object.keys(await dbUsage('u_a')), ['ofrepbulk', 'production', 'staging'],
    'u_a has rows for ofrepbulk, production and staging alone');
  assert.deepEqual(Object.keys(await dbUsage('u_c')), ['ofrepbulk', 'staging'], 'u_c has rows for ofrepbulk and staging alone');

  // A frontend token's per-user GET /flags: every flag of staging, later than before.
  const t2 = Date.now();
  const r = await env.server.client(feStaging).get('/flags?user=y');
  const t3 = Date.now();
  assert.equal(r.status, 200, r.text);
  for (const n of names) {
    assertTimeOf(await waitSeen(env.admin, n, 'staging', staging[n]), t2, t3, `${n} in staging (frontend token)`);
  }
  assert.deepEqual(await listed(env.admin, 'production'), prod, 'the frontend token of staging moved something in production');
});

test('GET /flags without a user (200, 304 or a long-poll) evaluates nothing', async () => {
  const c = env.server.client(tok.quiet);
  const t0 = Date.now();
  let r = await c.get('/flags');
  assert.equal(r.status, 200, r.text);
  const etag = r.headers.get('etag');
  r = await c.get('/flags', { headers: { 'If-None-Match': etag } });
  assert.equal(r.status, 304, r.text);
  r = await hold(c, '/flags?wait=1', { 'If-None-Match': etag });
  assert.equal(r.status, 304, r.text);
  r = await env.admin.get('/flags?env=quiet');
  assert.equal(r.status, 200, r.text);
  // Two writes at least since, and two intervals.
  await barrier(env.admin);
  await barrier(env.admin);
  const left = t0 + 2 * INTERVAL_MS + 200 - Date.now();
  if (left > 0) await sleep(left);
  const quiet = await listed(env.admin, 'quiet');
  for (const [n, v] of Object.entries(quiet)) assert.equal(v, null, `GET /flags (no user) moved ${n} in quiet`);
  assert.equal(await psql(env.db.url, `SELECT count(*) FROM flag_usage WHERE environment = 'quiet'`), '0');
});

test('a 304 counts: per-user GET /flags, GET /flags/<name>, a long-poll, OFREP bulk', async () => {
  await createFlag(env.admin, { name: 'u_poll', enabled: true, percentage: 50 });
  await createFlag(env.admin, { name: 'u_poll_other', enabled: true, percentage: 50 });
  // The ETags come from answers that evaluate nothing (GET /flags without a user).
  const tag = async (e) => `"${await envVersion(e)}"`;
  const t0 = Date.now();
  const reqs = [
    env.server.client(tok.poll304).get('/flags?user=x', { headers: { 'If-None-Match': await tag('poll304') } }),
    env.server.client(tok.pollone).get('/flags/u_poll?user=x', { headers: { 'If-None-Match': await tag('pollone') } }),
    hold(env.server.client(tok.polllong), '/flags?user=x&wait=1', { 'If-None-Match': await tag('polllong') }),
    env.server.client(tok.pollofrep).post('/ofrep/v1/evaluate/flags', ctx,
      { headers: { 'If-None-Match': ofrepEtag(await envVersion('pollofrep'), ctx.context) } }),
  ];
  const what = ['GET /flags?user= 304', 'GET /flags/u_poll?user= 304', 'long-poll GET /flags?user=&wait=1', 'OFREP bulk 304'];
  const res = await Promise.all(reqs);
  const t1 = Date.now();
  res.forEach((x, i) => assert.equal(x.status, 304, `${what[i]}: ${x.status} ${x.text}`));
  const expect = [['poll304', 'u_poll', what[0]], ['poll304', 'u_poll_other', what[0]], ['pollone', 'u_poll', what[1]],
    ['polllong', 'u_poll', what[2]], ['polllong', 'u_poll_other', what[2]], ['pollofrep', 'u_poll', what[3]],
    ['pollofrep', 'u_poll_other', what[3]]];
  const got = await Promise.all(expect.map(([e, n]) => waitFor(() => seen(env.admin, n, e), SEEN_MS, 50)));
  const missing = expect.filter((x, i) => !got[i]).map(([e, n, w]) => `${n} in ${e} (${w})`);
  assert.deepEqual(missing, [], `not evaluated within ${SEEN_MS} ms: ${missing.join('; ')}`);
  expect.forEach(([e, n], i) => assertTimeOf(got[i], t0, t1, `${n} in ${e}`));
  await barrier(env.admin);
  assert.equal(await seen(env.admin, 'u_poll_other', 'pollone'), null, 'GET /flags/u_poll moved u_poll_other');
});

test('the time is the evaluation\'s; a later evaluation moves it forward, an older batch never back', async () => {
  await createFlag(env.admin, { name: 'u_time', enabled: true, percentage: 50 });
  await createFlag(env.admin, { name: 'u_time_l', enabled: true, percentage: 50 });
  const [slow] = await startServers(env.db.url, 1, { args: LONG_ARGS });
  env.extra.push(slow);
  await ready(slow);
  // The slow instance evaluates first: its batch, written at its SIGTERM, is older.
  const tl0 = Date.now();
  for (const n of ['u_time', 'u_time_l']) {
    const r = await slow.client(tok.timing).get(`/flags/${n}?user=x`);
    assert.equal(r.status, 200, r.text);
  }
  const tl1 = Date.now();
  await sleep(5); // the millisecond shown must tell the two apart

  const c = env.server.client(tok.timing);
  const history = [];
  let t0 = Date.now();
  let r = await c.get('/flags/u_time?user=x');
  let t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  const first = await waitSeen(env.admin, 'u_time', 'timing');
  assertTimeOf(first, t0, t1, 'first evaluation');
  history.push(first);

  t0 = Date.now();
  r = await c.get('/flags/u_time?user=x');
  t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  // Moves forward within an interval; never shows anything older on the way.
  const deadline = Date.now() + SEEN_MS;
  let second = first;
  while (second === first && Date.now() < deadline) {
    second = await seen(env.admin, 'u_time', 'timing');
    history.push(second);
    await sleep(50);
  }
  assert.ok(second > first, `a later evaluation did not move it forward (${new Date(first).toISOString()})`);
  assertTimeOf(second, t0, t1, 'second evaluation');
  for (let i = 1; i < history.length; i++) assert.ok(history[i] >= history[i - 1], `moved back: ${history}`);

  // The slow instance's last batch (older times) is written at SIGTERM ...
  await slow.stop();
  assertTimeOf(await writtenAtStop(slow, 'u_time_l', 'timing'), tl0, tl1, 'u_time_l (the slow instance)');
  // ... and does not move u_time back.
  assert.equal(Math.floor((await dbUsage('u_time')).timing / 1000), second, 'flag_usage keeps the later time');
  await barrier(env.admin);
  assert.equal(await seen(env.admin, 'u_time', 'timing'), second, 'the admin answer keeps the later time');
});

test('SIGTERM writes the last batch; a restart shows it and does not move it; kill -9 loses at most the unwritten marks', async () => {
  for (const n of ['u_term', 'u_kill_a', 'u_kill_b']) await createFlag(env.admin, { name: n, enabled: true, percentage: 50 });
  const s = new Server(env.db.url, { args: LONG_ARGS });
  env.extra.push(s);
  await ready(await s.start());
  const admin = s.client(env.adminToken);
  const c = () => s.client(tok.restart);

  // Evaluate, then SIGTERM at once: with a 60 s interval only the last batch can write it.
  let t0 = Date.now();
  let r = await c().get('/flags/u_term?user=x');
  let t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  await s.stop(); // exit 0 in time, no sanitizer report
  let db = await dbUsage('u_term');
  assert.deepEqual(Object.keys(db), ['restart'], `flag_usage of u_term after SIGTERM: ${JSON.stringify(db)}`);
  const written = Math.floor(db.restart / 1000);
  assertTimeOf(written, t0, t1, 'u_term as SIGTERM wrote it');

  // A restart shows it from the database.
  s.args = ARGS;
  const early = await startAskingEarly(s, '/api/flags/u_term?env=restart');
  const earlyValue = leaAll(early.json, 'restart', 'the first GET /api/flags/u_term after the restart').restart;
  assert.ok(await waitFor(async () => await seen(admin, 'u_term', 'restart') === written, SEEN_MS, 20),
    `after a restart, u_term shows ${await seen(admin, 'u_term', 'restart')}, the database ${written}`);
  // Nothing evaluates it any more: it does not move, in the answer nor in the database.
  await barrier(admin);
  assert.equal(await seen(admin, 'u_term', 'restart'), written, 'u_term moved without an evaluation');
  assert.deepEqual(await dbUsage('u_term'), db, 'the flag_usage row of u_term changed without an evaluation');

  // kill -9: what a batch wrote stays; the marks of the period not yet written
  // (u_kill_b, evaluated right before the kill) may be lost, or else are right.
  t0 = Date.now();
  r = await c().get('/flags/u_kill_a?user=x');
  t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  const a = await waitSeen(admin, 'u_kill_a', 'restart');
  assertTimeOf(a, t0, t1, 'u_kill_a');
  t0 = Date.now();
  r = await c().get('/flags/u_kill_b?user=x');
  t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  await s.kill();
  assert.equal(Math.floor((await dbUsage('u_kill_a')).restart / 1000), a, 'u_kill_a, written before the kill');
  assert.deepEqual(await dbUsage('u_term'), db, 'u_term, written before the kill');
  const b = (await dbUsage('u_kill_b')).restart;
  if (b !== undefined) assertTimeOf(Math.floor(b / 1000), t0, t1, 'u_kill_b (written before the kill)');

  await ready(await s.start());
  assert.ok(await waitFor(async () => await seen(admin, 'u_kill_a', 'restart') === a, SEEN_MS, 20),
    `after the restart u_kill_a shows ${await seen(admin, 'u_kill_a', 'restart')}, the database ${a}`);
  assert.equal(await seen(admin, 'u_term', 'restart'), written, 'u_term after the second restart');
  assert.equal(await seen(admin, 'u_kill_b', 'restart'), b === undefined ? null : Math.floor(b / 1000),
    'u_kill_b after the restart: what the database holds');
  await s.stop();

  // Last, as it fails: the first admin answer of a restarted instance says
  // "never evaluated" until its writer thread has read flag_usage.
  assert.equal(ms(earlyValue), written,
    `the first GET /api/flags/u_term?env=restart after a restart answers last_evaluated_at ${earlyValue}, ` +
    `the database holds ${new Date(written).toISOString()}`);
});

test('SIGTERM writes the last batch when the database takes no new connection (full, or refusing): the writer keeps its own', async () => {
  // What a database at max_connections does to a writer that would connect
  // only at the stop: PostgreSQL refuses the connection and the batch is
  // lost.  ALLOW_CONNECTIONS false refuses every new connection (a
  // superuser's too) and leaves open ones be.
  await createFlag(env.admin, { name: 'u_noconn', enabled: true, percentage: 50 });
  const s = new Server(env.db.url, { args: LONG_ARGS });
  env.extra.push(s);
  await ready(await s.start());
  const t0 = Date.now();
  const r = await s.client(tok.noconn).get('/flags/u_noconn?user=x');
  const t1 = Date.now();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(await dbUsage('u_noconn'), {}, 'written before the stop (the interval is 60 s)');
  await psql(PG_URL, `ALTER DATABASE "${env.db.name}" ALLOW_CONNECTIONS false`);
  try {
    await s.stop();
  } finally {
    await psql(PG_URL, `ALTER DATABASE "${env.db.name}" ALLOW_CONNECTIONS true`);
  }
  assertTimeOf(await writtenAtStop(s, 'u_noconn', 'noconn'), t0, t1, 'u_noconn');
});

test('two instances on one database: each shows what the other evaluated within two intervals', async () => {
  await createFlag(env.admin, { name: 'u_twin_a', enabled: true, percentage: 50 });
  await createFlag(env.admin, { name: 'u_twin_b', enabled: true, percentage: 50 });
  const [other] = await startServers(env.db.url, 1, { args: ARGS });
  env.extra.push(other);
  await ready(other);
  const adminB = other.client(env.adminToken);

  // u_twin_a evaluated on A, u_twin_b on B, at the same time.
  const t0 = Date.now();
  const res = await Promise.all([
    env.server.client(tok.twin).get('/flags/u_twin_a?user=x'),
    other.client(tok.twin).post('/ofrep/v1/evaluate/flags/u_twin_b', ctx),
  ]);
  const t1 = Date.now();
  for (const r of res) assert.equal(r.status, 200, r.text);
  const [aOnB, bOnA] = await Promise.all([
    waitSeen(adminB, 'u_twin_a', 'twin', null, SEEN_ELSEWHERE_MS),
    waitSeen(env.admin, 'u_twin_b', 'twin', null, SEEN_ELSEWHERE_MS),
  ]);
  assertTimeOf(aOnB, t0, t1, 'u_twin_a (evaluated on A) on B');
  assertTimeOf(bOnA, t0, t1, 'u_twin_b (evaluated on B) on A');
  // Each also shows its own evaluation, at the same time as the other does.
  assert.ok(await waitFor(async () => await seen(env.admin, 'u_twin_a', 'twin') === aOnB, SEEN_MS, 50),
    `A shows u_twin_a at ${await seen(env.admin, 'u_twin_a', 'twin')}, B at ${aOnB}`);
  assert.ok(await waitFor(async () => await seen(adminB, 'u_twin_b', 'twin') === bOnA, SEEN_MS, 50),
    `B shows u_twin_b at ${await seen(adminB, 'u_twin_b', 'twin')}, A at ${bOnA}`);
  await other.stop();
});

test('deleting a flag, or an environment, deletes its rows; the same name made again starts at null', async () => {
  await createFlag(env.admin, { name: 'u_del', enabled: true, percentage: 50 });
  const res = await Promise.all([env.server.client(tok.gone).get('/flags/u_del?user=x'),
    env.server.client(tok.doomed).get('/flags?user=x')]);
  for (const r of res) assert.equal(r.status, 200, r.text);
  const was = await waitSeen(env.admin, 'u_del', 'gone');
  await waitSeen(env.admin, 'u_del', 'doomed');
  assert.deepEqual(Object.keys(await dbUsage('u_del')), ['doomed', 'gone']);

  // An environment's deletion deletes its rows.
  const de = await env.admin.del('/api/environments/doomed');
  assert.equal(de.status, 204, de.text);
  assert.equal(await psql(env.db.url, `SELECT count(*) FROM flag_usage WHERE environment = 'doomed'`), '0',
    'the environment\'s flag_usage rows are deleted with it');
  assert.deepEqual(Object.keys(await dbUsage('u_del')), ['gone']);

  // An instance that read u_del's time at its start, and will not read
  // again for a minute, deletes it and makes it again.
  const s = new Server(env.db.url, { args: LONG_ARGS });
  env.extra.push(s);
  await ready(await s.start());
  const adminS = s.client(env.adminToken);
  assert.equal(await waitSeen(adminS, 'u_del', 'gone'), was);
  const d = await adminS.del('/api/flags/u_del');
  assert.equal(d.status, 204, d.text);
  assert.equal(await psql(env.db.url, `SELECT count(*) FROM flag_usage WHERE flag = 'u_del'`), '0',
    'the flag\'s flag_usage rows are deleted with it');
  const again = leaAll(await createFlag(adminS, { name: 'u_del', enabled: true, percentage: 50 }), 'production',
    'POST /api/flags (u_del made again)');
  const got = (await leaFlag(adminS, 'u_del', 'gone')).gone;

  await barrier(env.admin);
  assert.equal((await leaFlag(env.admin, 'u_del', 'gone')).gone, null, 'GET /api/flags/u_del on the instance that read since');
  assert.deepEqual(await dbUsage('u_del'), {}, 'no flag_usage row for the flag made again');
  // The instance that made it again answers from the times it read before the deletion.
  assert.equal(again.gone, null,
    `POST /api/flags (u_del, deleted a moment ago) answers environments.gone.last_evaluated_at ${again.gone}: the deleted flag's`);
  assert.equal(got, null, `GET /api/flags/u_del?env=gone answers ${got}: the deleted flag's`);
  await s.stop();
});

test('marks taken before a flag existed do not count for it (made after a per-user GET /flags, or deleted and made again)', async () => {
  await createFlag(env.admin, { name: 'u_again', enabled: true, percentage: 50 });
  const s = new Server(env.db.url, { args: LONG_ARGS });
  env.extra.push(s);
  await ready(await s.start());
  // Marks that only SIGTERM will write: every flag of `late`, and u_again in `again` ...
  let r = await s.client(tok.late).get('/flags?user=x');
  assert.equal(r.status, 200, r.text);
  r = await s.client(tok.again).get('/flags/u_again?user=x');
  assert.equal(r.status, 200, r.text);
  // ... then u_again is deleted and made again, and u_born is made.
  const d = await env.admin.del('/api/flags/u_again');
  assert.equal(d.status, 204, d.text);
  const again = await createFlag(env.admin, { name: 'u_again', enabled: true, percentage: 50 });
  const born = await createFlag(env.admin, { name: 'u_born', enabled: true, percentage: 50 });
  await s.stop();
  // The batch was written (the barrier flag was in `late` at the evaluation) ...
  await writtenAtStop(s, BARRIER, 'late');
  // ... but neither flag existed when it was evaluated.
  const iso = (rows) => Object.fromEntries(Object.entries(rows).map(([e, us]) => [e, new Date(us / 1000).toISOString()]));
  const got = { u_born: iso(await dbUsage('u_born')), u_again: iso(await dbUsage('u_again')) };
  assert.deepEqual(got, { u_born: {}, u_again: {} },
    `flags made after the evaluations got flag_usage rows from them (u_born created ${born.created_at}, ` +
    `u_again made again ${again.created_at}; late: a GET /flags?user= before both, again: a GET /flags/u_again of the deleted flag)`);
});

test('vexil stale shows each stale flag\'s last evaluation in the default environment', async () => {
  await createFlag(env.admin, { name: 'u_st_used', enabled: true, percentage: 100 });
  await createFlag(env.admin, { name: 'u_st_unused', enabled: true, percentage: 100 });
  const r = await env.server.client(tok.production).get('/flags/u_st_used?user=someone');
  assert.equal(r.status, 200, r.text);
  let shown;
  await waitFor(async () => {
    shown = (await env.admin.get('/api/flags/u_st_used')).json.last_evaluated_at;
    return shown !== null;
  }, SEEN_MS + 2000);
  const j = await vexil(['stale', '--days', '0', '--json', '--database', env.db.url]);
  assert.equal(j.code, 1, j.stderr);
  const flags = Object.fromEntries(JSON.parse(j.stdout).flags.map((f) => [f.name, f]));
  assert.equal(flags.u_st_used.last_evaluated_at, shown, 'the time the API shows');
  assert.equal(flags.u_st_unused.last_evaluated_at, null);
  const t = await vexil(['stale', '--days', '0', '--database', env.db.url]);
  assert.equal(t.code, 1, t.stderr);
  const lines = t.stdout.split('\n');
  const header = lines.find((l) => l.startsWith('NAME'));
  assert.ok(header.includes('LAST EVALUATED'), header);
  const at = header.indexOf('LAST EVALUATED');
  const row = (name) => lines.find((l) => l.startsWith(`${name} `));
  assert.equal(row('u_st_used').slice(at, at + 8), 'just now', t.stdout);
  assert.equal(row('u_st_unused').slice(at, at + 5), 'never', t.stdout);
});
