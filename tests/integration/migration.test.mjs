// Migration test: a database made by vexil 0.2.0 keeps every v1 answer when a
// later `vexil serve` migrates it.
//
// fixtures/v0.2.0/ holds what 0.2.0 itself made (see its make.mjs): dump.sql,
// the database a team filled through the API, and answers.json, the answers
// 0.2.0 gave to a fixed list of v1 requests on it, with the token secrets.
// Here the dump is loaded into a fresh database, $VEXIL_BIN serves it (serve
// migrates on start), and every request is replayed with the same token:
//
// - the status must be the same, and so must the ETag where 0.2.0 sent one
//   (an ETag where it sent none is printed as a diagnostic);
// - the recorded body must be contained in the new one (compareAnswer below):
//   every key of a recorded object present with an equal value, arrays the
//   same length element by element; new keys are allowed, since a later
//   release may add fields to its objects;
// - what depends on the clock is checked against the clock instead: age_days
//   and stale are recomputed by the rules of docs/operations.md §3 from the
//   flag's own created_at and rolled_out_at, the list of GET /api/stale is
//   recomputed from the recorded flags, and a token's last_used_at and a
//   flag's last_evaluated_at may only move forward;
// - error messages (`error.message`, OFREP's `errorDetails`) are sentences
//   that docs/api.md §5 allows to change: they must still be there, and a
//   changed one is printed as a diagnostic, not counted as a failure.
//
// Then a restart on the migrated database must migrate nothing and keep every
// answer, and v1 writes (a PATCH of enabled and percentage without any
// environment field, a token create) must work and answer in v1 shape.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  PSQL, RFC3339_MS, SECRET, UUID, Server, createDatabase, evaluate, psql, tableCounts, vexil,
} from './lib/harness.mjs';

const FIXTURE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/v0.2.0');
const fixture = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'answers.json'), 'utf8'));
const DAY = 86400000;

// ------------------------------------------------------------------ the rules of the clock

/** docs/operations.md §3: whole days since created_at at time now (ms). */
function ageDays(flag, now) {
  return Math.floor(Math.max(0, now - Date.parse(flag.created_at)) / DAY);
}

/** docs/operations.md §3: the stale reasons of an admin flag at time now (ms). */
function staleReasons(flag, now, days = 30, rolledOutDays = 14) {
  const reasons = [];
  if (now - Date.parse(flag.created_at) > days * DAY) reasons.push(`older_than_${days}_days`);
  if (flag.enabled === true && flag.percentage === 100 && typeof flag.rolled_out_at === 'string' &&
      now - Date.parse(flag.rolled_out_at) > rolledOutDays * DAY) {
    reasons.push(`rolled_out_${rolledOutDays}_days`);
  }
  return reasons;
}

/**
 * The window in which an answer was made, widened by a millisecond at the
 * start: the server counts from microsecond timestamps that the API shows
 * truncated to milliseconds.
 */
function windowOf(from, to, days = 30, rolledOutDays = 14) {
  return { lo: from - 1, hi: to, days, rolledOutDays };
}

/** Thresholds of a GET /api/stale path (docs/api.md §3), else the defaults. */
function thresholdsOf(p) {
  const q = new URL(p, 'http://x').searchParams;
  return {
    days: q.has('days') ? Number(q.get('days')) : 30,
    rolledOutDays: q.has('rolled_out_days') ? Number(q.get('rolled_out_days')) : 14,
  };
}

const isStalePath = (p) => new URL(p, 'http://x').pathname === '/api/stale';

/**
 * The GET /api/stale lists the rule allows in clock window w, made of the
 * admin flags `flags`: one list, or two when a flag became stale during the
 * window.
 */
function expectedStaleLists(flags, w) {
  const at = (now) => flags.filter((f) => staleReasons(f, now, w.days, w.rolledOutDays).length > 0);
  const lo = at(w.lo);
  const hi = at(w.hi);
  return lo.length === hi.length ? [lo] : [lo, hi];
}

// ------------------------------------------------------------------ the comparison

/**
 * Whether `actual` still says everything `recorded` said.  Returns
 * {problems, notes}: each problem is a string naming the place ($.flags[2].owner)
 * and what differs; notes name prose that changed (allowed).  `w` is the
 * clock window of the new answer (windowOf()).
 */
function compareAnswer(recorded, actual, w, where = '$', out = { problems: [], notes: [] }) {
  const show = (v) => (v === undefined ? 'nothing' : JSON.stringify(v));
  if (recorded === null || typeof recorded !== 'object') {
    if (!Object.is(recorded, actual)) out.problems.push(`${where}: recorded ${show(recorded)}, now ${show(actual)}`);
    return out;
  }
  if (Array.isArray(recorded)) {
    if (!Array.isArray(actual)) {
      out.problems.push(`${where}: recorded an array, now ${show(actual)}`);
      return out;
    }
    if (actual.length !== recorded.length) {
      out.problems.push(`${where}: recorded ${recorded.length} elements, now ${actual.length}`);
      return out;
    }
    recorded.forEach((v, i) => compareAnswer(v, actual[i], w, `${where}[${i}]`, out));
    return out;
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
    out.problems.push(`${where}: recorded an object, now ${show(actual)}`);
    return out;
  }
  const isFlag = typeof recorded.created_at === 'string' && 'revision' in recorded;
  for (const [k, v] of Object.entries(recorded)) {
    const at = `${where}.${k}`;
    if (!(k in actual)) {
      out.problems.push(`${at}: missing (recorded ${show(v)})`);
      continue;
    }
    const a = actual[k];
    if (isFlag && k === 'age_days') {
      const lo = ageDays(actual, w.lo);
      const hi = ageDays(actual, w.hi);
      if (!Number.isInteger(a) || a < lo || a > hi) {
        out.problems.push(`${at}: ${show(a)}, but created_at ${actual.created_at} makes it ${lo === hi ? lo : `${lo}..${hi}`} now`);
      }
    } else if (isFlag && k === 'stale') {
      const lo = staleReasons(actual, w.lo, w.days, w.rolledOutDays);
      const hi = staleReasons(actual, w.hi, w.days, w.rolledOutDays);
      const same = (x) => JSON.stringify(x) === JSON.stringify(a);
      if (!same(lo) && !same(hi)) out.problems.push(`${at}: ${show(a)}, but the rule makes it ${show(hi)} now`);
    } else if (k === 'last_used_at' || k === 'last_evaluated_at') {
      if (v === null) {
        if (a !== null && !(typeof a === 'string' && RFC3339_MS.test(a))) out.problems.push(`${at}: ${show(a)} is not a time or null`);
      } else if (typeof a !== 'string' || !RFC3339_MS.test(a) || Date.parse(a) < Date.parse(v)) {
        out.problems.push(`${at}: recorded ${v}, now ${show(a)} (it may only move forward)`);
      }
    } else if ((k === 'message' && /\.error$/.test(where)) || k === 'errorDetails') {
      if (typeof a !== 'string' || a.length === 0) out.problems.push(`${at}: recorded ${show(v)}, now ${show(a)}`);
      else if (a !== v) out.notes.push(`${at}: ${show(v)} is now ${show(a)}`);
    } else {
      compareAnswer(v, a, w, at, out);
    }
  }
  return out;
}

/**
 * Compare a whole replayed answer {status, etag, text, json, from, to} with
 * its recorded request.  `adminFlags` are the recorded GET /api/flags flags
 * (from which the GET /api/stale lists are recomputed).
 */
function checkAnswer(req, got, adminFlags) {
  const rec = req.answer;
  const out = { problems: [], notes: [] };
  if (got.status !== rec.status) out.problems.push(`status: recorded ${rec.status}, now ${got.status}`);
  if (rec.etag !== null && got.etag !== rec.etag) out.problems.push(`ETag: recorded ${rec.etag}, now ${got.etag}`);
  if (rec.etag === null && got.etag !== null) out.notes.push(`ETag: none recorded, now ${got.etag}`);
  if (rec.body === null) {
    if (got.text !== '') out.problems.push(`body: recorded none, now ${JSON.stringify(got.text.slice(0, 300))}`);
    return out;
  }
  if (got.json === undefined) {
    out.problems.push(`body: recorded JSON, now ${JSON.stringify(got.text.slice(0, 300))}`);
    return out;
  }
  if (isStalePath(req.path) && rec.status === 200) {
    const th = thresholdsOf(req.path);
    const w = windowOf(got.from, got.to, th.days, th.rolledOutDays);
    // The list grows with time: compare with what the rule makes of the
    // recorded flags now (the recorded list itself is checked at its own time
    // by the self-test).
    let best;
    for (const list of expectedStaleLists(adminFlags, w)) {
      const r = compareAnswer({ ...rec.body, flags: list }, got.json, w);
      if (!best || r.problems.length < best.problems.length) best = r;
    }
    out.problems.push(...best.problems);
    out.notes.push(...best.notes);
    return out;
  }
  const r = compareAnswer(rec.body, got.json, windowOf(got.from, got.to));
  out.problems.push(...r.problems);
  out.notes.push(...r.notes);
  return out;
}

// ------------------------------------------------------------------ replay

/** Send a recorded request to server; returns {status, etag, text, json, from, to}. */
async function replay(server, req) {
  const secret = req.token === null ? null : fixture.tokens[req.token].secret;
  const opts = { headers: req.headers };
  if (req.body !== null) opts.body = req.body;
  const from = Date.now();
  const r = await server.client(secret).request(req.method, req.path, opts);
  const to = Date.now();
  return { status: r.status, etag: r.headers.get('etag'), text: r.text, json: r.json, from, to };
}

function describeFailure(req, got, problems) {
  return [
    `${req.method} ${req.path} (${req.id}; token: ${req.token ?? 'none'}${Object.keys(req.headers).length ? `; headers ${JSON.stringify(req.headers)}` : ''}${req.body !== null ? `; body ${JSON.stringify(req.body)}` : ''})`,
    ...problems.map((p) => `  ${p}`),
    `  recorded: ${req.answer.status} ETag ${req.answer.etag} ${JSON.stringify(req.answer.body).slice(0, 800)}`,
    `  now:      ${got.status} ETag ${got.etag} ${got.text.slice(0, 800)}`,
  ].join('\n');
}

const recordedAdminFlags = () => {
  const r = fixture.requests.find((q) => q.method === 'GET' && q.path === '/api/flags' && q.answer.status === 200);
  assert.ok(r, 'the fixture records GET /api/flags');
  return r.answer.body.flags;
};

/** Load dump.sql into the database at url with psql (stops at the first error). */
function loadDump(url) {
  return new Promise((resolve, reject) => {
    execFile(PSQL, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', path.join(FIXTURE_DIR, 'dump.sql')],
      { timeout: 60000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql -f dump.sql failed: ${stderr || err.message}`));
        else resolve();
      });
  });
}

/** Columns of every table of the public schema: the shape of the database. */
function schemaOf(url) {
  return psql(url, `SELECT table_name || '.' || column_name || ' ' || data_type
                      FROM information_schema.columns WHERE table_schema = 'public'
                     ORDER BY table_name, column_name`);
}

/** The migrations `vexil serve` says it applied (0 when it says nothing). */
function appliedMigrations(server) {
  const line = server.logs().find((l) => /applied \d+ migration/.test(l.msg || ''));
  return line ? Number(line.msg.match(/applied (\d+) migration/)[1]) : 0;
}

// ------------------------------------------------------------------ self-test of the comparison

describe('compareAnswer (self-test: it must be able to fail)', () => {
  const w = windowOf(Date.parse('2026-03-01T12:00:00.000Z'), Date.parse('2026-03-01T12:00:00.050Z'));
  const flag = {
    name: 'f', description: 'ü', owner: 'o', enabled: true, percentage: 100, users: ['a', 'b'],
    created_at: '2026-01-01T12:00:00.000Z', updated_at: '2026-02-01T12:00:00.000Z',
    rolled_out_at: '2026-02-10T12:00:00.000Z', revision: 3, age_days: 59,
    stale: ['older_than_30_days', 'rolled_out_14_days'],
  };
  const body = { version: 7, flags: [flag] };
  const copy = () => structuredClone(body);
  const problems = (rec, act) => compareAnswer(rec, act, w).problems;

  test('an equal answer passes, and so does one with new keys', () => {
    assert.deepEqual(problems(body, copy()), []);
    const more = copy();
    more.environments = [{ name: 'production' }];
    more.flags[0].segments = [];
    more.flags[0].environments = { production: { enabled: true } };
    assert.deepEqual(problems(body, more), []);
  });

  test('a value that differs fails, at any depth', () => {
    const a = copy();
    a.flags[0].revision = 4;
    assert.deepEqual(problems(body, a), ['$.flags[0].revision: recorded 3, now 4']);
    const b = copy();
    b.flags[0].users[1] = 'B';
    assert.equal(problems(body, b).length, 1);
    const c = copy();
    c.version = '7';
    assert.deepEqual(problems(body, c), ['$.version: recorded 7, now "7"']);
    const d = copy();
    d.flags[0].rolled_out_at = null;
    assert.ok(problems(body, d).some((x) => x.startsWith('$.flags[0].rolled_out_at: recorded "2026-02-10')), 'rolled_out_at null');
  });

  test('a missing key fails', () => {
    const a = copy();
    delete a.flags[0].owner;
    assert.deepEqual(problems(body, a), ['$.flags[0].owner: missing (recorded "o")']);
    assert.equal(problems({ x: null }, {}).length, 1, 'a recorded null must still be there');
  });

  test('arrays must keep their length, and types their kind', () => {
    const a = copy();
    a.flags[0].users.push('c');
    assert.deepEqual(problems(body, a), ['$.flags[0].users: recorded 2 elements, now 3']);
    assert.equal(problems({ f: [] }, { f: {} }).length, 1);
    assert.equal(problems({ f: {} }, { f: [] }).length, 1);
    assert.equal(problems({ f: {} }, { f: null }).length, 1);
    assert.equal(problems({ f: null }, { f: {} }).length, 1);
  });

  test('age_days and stale follow the clock, not the recorded value', () => {
    const later = copy();
    later.flags[0].age_days = 59; // 2026-01-01 12:00 to 2026-03-01 12:00
    assert.deepEqual(problems({ ...body, flags: [{ ...flag, age_days: 3, stale: [] }] }, later), []);
    for (const age of [57, 60, '59', null]) {
      const wrongAge = copy();
      wrongAge.flags[0].age_days = age;
      assert.equal(problems(body, wrongAge).length, 1, `age_days ${age}`);
    }
    const wrongStale = copy();
    wrongStale.flags[0].stale = ['older_than_30_days'];
    assert.equal(problems(body, wrongStale).length, 1);
    const below = copy();
    below.flags[0].percentage = 99; // not rolled out: one reason only, and percentage differs
    below.flags[0].stale = ['older_than_30_days'];
    assert.deepEqual(problems(body, below), ['$.flags[0].percentage: recorded 100, now 99']);
  });

  test('last_used_at may move forward, not back', () => {
    const rec = { tokens: [{ id: 'x', last_used_at: '2026-02-01T00:00:00.000Z' }, { id: 'y', last_used_at: null }] };
    const ok = { tokens: [{ id: 'x', last_used_at: '2026-02-02T00:00:00.000Z' }, { id: 'y', last_used_at: '2026-02-02T00:00:00.000Z' }] };
    assert.deepEqual(problems(rec, ok), []);
    const back = structuredClone(ok);
    back.tokens[0].last_used_at = '2026-01-31T23:59:59.999Z';
    assert.equal(problems(rec, back).length, 1);
    const gone = structuredClone(ok);
    gone.tokens[0].last_used_at = null;
    assert.equal(problems(rec, gone).length, 1);
  });

  test('an error message may change but not go; its code may not change', () => {
    const rec = { error: { code: 'not_found', message: "no flag named 'x'" } };
    const r = compareAnswer(rec, { error: { code: 'not_found', message: 'no flag x in production' } }, w);
    assert.deepEqual(r.problems, []);
    assert.equal(r.notes.length, 1);
    assert.equal(problems(rec, { error: { code: 'not_found', message: '' } }).length, 1);
    assert.equal(problems(rec, { error: { code: 'forbidden', message: "no flag named 'x'" } }).length, 1);
  });

  test('a whole answer: status, ETag and a body where none was fail', () => {
    const req = { path: '/flags', answer: { status: 304, etag: '"7"', body: null } };
    const got = { status: 304, etag: '"7"', text: '', json: undefined, from: w.lo, to: w.hi };
    assert.deepEqual(checkAnswer(req, got, []).problems, []);
    assert.equal(checkAnswer(req, { ...got, status: 200 }, []).problems.length, 1);
    assert.equal(checkAnswer(req, { ...got, etag: '"8"' }, []).problems.length, 1);
    assert.equal(checkAnswer(req, { ...got, etag: null }, []).problems.length, 1);
    assert.equal(checkAnswer(req, { ...got, text: '{}', json: {} }, []).problems.length, 1);
  });

  test('GET /api/stale is recomputed from the flags, so a missing or extra flag fails', () => {
    const fresh = { ...flag, name: 'g', created_at: '2026-02-28T12:00:00.000Z', rolled_out_at: null, percentage: 5 };
    const req = { path: '/api/stale', answer: { status: 200, etag: null, body: { flags: [] } } };
    const got = { status: 200, etag: null, text: 'x', json: { flags: [flag] }, from: w.lo + 1, to: w.hi };
    assert.deepEqual(checkAnswer(req, got, [flag, fresh]).problems, []);
    assert.equal(checkAnswer(req, { ...got, json: { flags: [] } }, [flag, fresh]).problems.length, 1);
    assert.equal(checkAnswer(req, { ...got, json: { flags: [flag, fresh] } }, [flag, fresh]).problems.length, 1);
  });

  test('the rules reproduce every age_days, stale and /api/stale list 0.2.0 recorded, at its time', () => {
    const flags = recordedAdminFlags();
    let checked = 0;
    for (const req of fixture.requests) {
      if (req.answer.status !== 200 || req.answer.body === null) continue;
      const [from, to] = req.at;
      const th = isStalePath(req.path) ? thresholdsOf(req.path) : { days: 30, rolledOutDays: 14 };
      const wr = windowOf(from, to, th.days, th.rolledOutDays);
      // Recorded against itself: only the clock rules can fail here.
      const r = compareAnswer(req.answer.body, req.answer.body, wr);
      assert.deepEqual(r.problems, [], `${req.id}: the rules disagree with 0.2.0`);
      if (isStalePath(req.path)) {
        const lists = expectedStaleLists(flags, wr).map((l) => l.map((f) => f.name));
        assert.ok(lists.some((l) => JSON.stringify(l) === JSON.stringify(req.answer.body.flags.map((f) => f.name))),
          `${req.id}: recorded ${req.answer.body.flags.map((f) => f.name)}, the rule makes ${lists[0]}`);
      }
      checked++;
    }
    assert.ok(checked > 40, `${checked} answers checked`);
    const staleCount = flags.filter((f) => f.stale.length > 0).length;
    assert.ok(staleCount > 0 && staleCount < flags.length, 'the fixture has stale and fresh flags');
  });

  test('the fixture is the one 0.2.0 made, and covers what it should', () => {
    assert.equal(fixture.vexil, '0.2.0');
    assert.ok(fixture.requests.length >= 60, `${fixture.requests.length} requests`);
    for (const req of fixture.requests) {
      assert.ok(req.token === null || fixture.tokens[req.token], `${req.id}: token ${req.token}`);
    }
    const statuses = new Set(fixture.requests.map((r) => r.answer.status));
    for (const s of [200, 304, 401, 403, 404]) assert.ok(statuses.has(s), `a recorded ${s}`);
    assert.equal(new Set(fixture.requests.map((r) => r.id)).size, fixture.requests.length, 'ids are unique');
  });
});

// ------------------------------------------------------------------ the migrated database

describe('a v0.2.0 database served by this vexil', () => {
  let db;
  let server;
  const first = new Map(); // request id -> first replay's answer
  const admin = () => server.client(fixture.tokens.admin.secret);
  const client = () => server.client(fixture.tokens.client.secret);

  before(async () => {
    db = await createDatabase();
    await loadDump(db.url);
    server = new Server(db.url);
    await server.start();
  });
  after(async () => {
    try {
      if (server) await server.stop();
    } finally {
      await server?.kill();
      await db?.drop();
    }
  });

  test('vexil serve migrates the database and serves it', (t) => {
    // 0.2.0 itself applies nothing; a later release applies its new migrations.
    t.diagnostic(`vexil serve applied ${appliedMigrations(server)} migration(s) to the v0.2.0 database`);
    assert.equal(server.exit, null);
  });

  test('every recorded v1 request gets its v1 answer', async (t) => {
    const flags = recordedAdminFlags();
    let replayed = 0;
    for (const req of fixture.requests) {
      await t.test(`${req.method} ${req.path} (${req.id})`, async (st) => {
        const got = await replay(server, req);
        first.set(req.id, got);
        const { problems, notes } = checkAnswer(req, got, flags);
        for (const n of notes) st.diagnostic(`allowed change: ${n}`);
        assert.ok(problems.length === 0, describeFailure(req, got, problems));
      });
      replayed++;
    }
    assert.equal(replayed, fixture.requests.length);
  });

  test('a restart migrates nothing and keeps every answer', async (t) => {
    assert.equal(first.size, fixture.requests.length, 'the replay ran first');
    const schema = await schemaOf(db.url);
    await server.stop();
    // Counted once the server has stopped: SIGTERM writes its last
    // evaluations (flag_usage), which is not a migration.
    const counts = await tableCounts(db.url);
    // `vexil migrate` on the migrated database finds nothing to do either.
    const m = await vexil(['migrate', '--database', db.url]);
    assert.equal(m.code, 0, m.stderr);
    t.diagnostic(`vexil migrate: ${m.stdout.trim()}`);
    server = new Server(db.url);
    await server.start();
    assert.equal(appliedMigrations(server), 0, 'a restart applies no migration');
    assert.deepEqual(await tableCounts(db.url), counts, 'rows per table after the restart');
    assert.equal(await schemaOf(db.url), schema, 'columns after the restart');

    const flags = recordedAdminFlags();
    const failures = [];
    for (const req of fixture.requests) {
      const got = await replay(server, req);
      const problems = checkAnswer(req, got, flags).problems;
      // And the same as before the restart (in both directions: nothing added either).
      const prev = first.get(req.id);
      if (prev.status !== got.status || prev.etag !== got.etag) problems.push(`before the restart: ${prev.status} ${prev.etag}`);
      if (prev.json !== undefined) {
        const th = isStalePath(req.path) ? thresholdsOf(req.path) : { days: 30, rolledOutDays: 14 };
        const w = windowOf(got.from, got.to, th.days, th.rolledOutDays);
        problems.push(...compareAnswer(prev.json, got.json, w).problems.map((p) => `vs before the restart: ${p}`));
        problems.push(...compareAnswer(got.json, prev.json, windowOf(prev.from, prev.to, w.days, w.rolledOutDays)).problems
          .filter((p) => !/last_used_at|last_evaluated_at/.test(p))
          .map((p) => `new since the restart: ${p}`));
      } else if (got.text !== prev.text) {
        problems.push(`body before the restart ${JSON.stringify(prev.text)}`);
      }
      if (problems.length) failures.push(describeFailure(req, got, problems));
    }
    assert.equal(failures.length, 0, `${failures.length} answers changed after the restart:\n${failures.join('\n')}`);
  });

  test('a v1 PATCH of enabled and percentage works and answers in v1 shape', async () => {
    const name = 'invoice-pdf-v2';
    const v0 = await client().get('/flags');
    assert.equal(v0.status, 200, v0.text);
    const version = v0.json.version;
    const was = await admin().get(`/api/flags/${name}`);
    assert.equal(was.status, 200, was.text);
    assert.equal(was.json.enabled, false);

    const r = await admin().patch(`/api/flags/${name}`, { enabled: true, percentage: 15 },
      { headers: { 'If-Match': `"${was.json.revision}"` } });
    assert.equal(r.status, 200, r.text);
    const f = r.json;
    const types = {
      name: 'string', description: 'string', owner: 'string', enabled: 'boolean', percentage: 'number',
      users: 'object', created_at: 'string', updated_at: 'string', rolled_out_at: 'object', revision: 'number',
      age_days: 'number', stale: 'object',
    };
    for (const [k, ty] of Object.entries(types)) assert.equal(typeof f[k], ty, `${k} in ${r.text}`);
    assert.ok(Array.isArray(f.users) && Array.isArray(f.stale));
    assert.equal(f.enabled, true);
    assert.equal(f.percentage, 15);
    assert.equal(f.revision, was.json.revision + 1);
    assert.equal(r.headers.get('etag'), `"${f.revision}"`);
    for (const k of ['name', 'description', 'owner', 'users', 'created_at', 'rolled_out_at']) {
      assert.deepEqual(f[k], was.json[k], k);
    }
    assert.match(f.updated_at, RFC3339_MS);
    assert.ok(Date.parse(f.updated_at) > Date.parse(was.json.updated_at));

    const now = await client().get('/flags');
    assert.equal(now.status, 200, now.text);
    assert.equal(now.json.version, version + 1);
    assert.equal(now.headers.get('etag'), `"${version + 1}"`);
    const listed = now.json.flags.find((x) => x.name === name);
    assert.ok(listed, `${name} in GET /flags`);
    assert.equal(listed.enabled, true);
    assert.equal(listed.percentage, 15);
    assert.equal(listed.revision, f.revision);
    for (const u of ['alice', 'carol', 'zoë', '渡辺']) {
      const e = await client().get(`/flags/${name}?user=${encodeURIComponent(u)}`);
      assert.equal(e.status, 200, e.text);
      assert.deepEqual({ name: e.json.name, on: e.json.on, version: e.json.version },
        { name, on: evaluate(listed, u), version: version + 1 }, u);
    }
    const h = await admin().get(`/api/flags/${name}/history?limit=1`);
    assert.equal(h.status, 200, h.text);
    const e = h.json.events[0];
    assert.equal(e.action, 'update');
    assert.equal(e.actor, fixture.tokens.admin.name);
    assert.equal(e.before.percentage, 10);
    assert.equal(e.after.percentage, 15);
    assert.equal(e.after.revision, f.revision);
  });

  test('a v1 token create answers in v1 shape, and the token works', async () => {
    const r = await admin().post('/api/tokens', { name: 'after-migration', role: 'client' });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.id, UUID, r.text);
    assert.equal(r.json.name, 'after-migration');
    assert.equal(r.json.role, 'client');
    assert.match(r.json.token ?? '', SECRET, `the secret is in "token" (docs/api.md §3): ${r.text}`);
    const use = await server.client(r.json.token).get('/flags?user=alice');
    assert.equal(use.status, 200, use.text);
    const list = await admin().get('/api/tokens');
    assert.equal(list.status, 200, list.text);
    const t = list.json.tokens.find((x) => x.id === r.json.id);
    assert.ok(t, 'listed');
    for (const k of ['id', 'name', 'role', 'created_at', 'last_used_at']) assert.ok(k in t, k);
    assert.equal(list.json.tokens.some((x) => 'token' in x || 'secret' in x), false, 'no secret listed');
  });
});
