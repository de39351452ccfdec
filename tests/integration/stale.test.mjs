// docs/operations.md §3 flag age and cleanup (issue "Keep flag debt down"): GET /api/stale
// with its reasons, thresholds and parameters; age_days and stale on every
// admin flag; `vexil stale` on the command line; and the rolled_out_at rule
// of docs/decisions.md on every write path (create, update, revert, restore).
//
// Flags are aged by moving their timestamps back in the database; the daemon
// serves from its snapshot, so each edit is followed by NOTIFY vexil, 'tokens'
// (which makes the listener reload) and a wait until the snapshot shows it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  assertNoControls, RFC3339_MS, VEXIL_BIN, assertError, createDatabase, createFlag, psql, startEnv, vexil, assertNoSanitizerReport,
} from './lib/harness.mjs';
import { waitFor } from './lib/cluster.mjs';

const DAY = 86400000;
let env;

before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

const ts = (col) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Move timestamps of flags back: ages = {name: {created: '30 days', rolled: '14 days'}}
 * (PostgreSQL intervals, counted back from now, truncated to milliseconds).
 * Then make the daemon reload and wait until it serves the new values.
 * Returns {name: {created_at, rolled_out_at}} as the API must show them.
 */
async function age(ages) {
  const sets = [];
  for (const [name, a] of Object.entries(ages)) {
    const parts = [];
    if (a.created) parts.push(`created_at = date_trunc('milliseconds', now() - interval '${a.created}')`);
    if (parts.length) sets.push(`UPDATE flags SET ${parts.join(', ')} WHERE name = '${name}';`);
    if (a.rolled) {
      sets.push(`UPDATE flag_states SET rolled_out_at = date_trunc('milliseconds', now() - interval '${a.rolled}') ` +
        `WHERE flag = '${name}' AND environment = 'production';`);
    }
  }
  const names = Object.keys(ages).map((n) => `'${n}'`).join(',');
  const out = await psql(env.db.url, `${sets.join('\n')}
    SELECT name, ${ts('created_at')}, coalesce(${ts('rolled_out_at')}, '')
    FROM flags JOIN flag_states ON flag = name AND environment = 'production' WHERE name IN (${names});`);
  const want = {};
  for (const line of out.split('\n').filter((l) => l.split('|').length === 3)) { // not the UPDATE n lines
    const [name, created, rolled] = line.split('|');
    want[name] = { created_at: created, rolled_out_at: rolled || null };
  }
  assert.equal(Object.keys(want).length, Object.keys(ages).length, `aged ${out}`);
  await reload(want);
  return want;
}

/** NOTIFY the daemon to reload and wait until /api/flags shows `want`. */
async function reload(want) {
  await psql(env.db.url, "SELECT pg_notify('vexil', 'tokens')");
  let last;
  const ok = await waitFor(async () => {
    const r = await env.admin.get('/api/flags');
    last = r.json;
    return Object.entries(want).every(([n, w]) => {
      const f = r.json.flags.find((x) => x.name === n);
      return f && f.created_at === w.created_at && f.rolled_out_at === w.rolled_out_at;
    });
  }, 3000);
  assert.ok(ok, `the daemon did not reload within 3 s of NOTIFY vexil, 'tokens': ${JSON.stringify(last)}`);
}

async function stale(q = '') {
  const r = await env.admin.get('/api/stale' + q);
  assert.equal(r.status, 200, `GET /api/stale${q}: ${r.text}`);
  assert.deepEqual(Object.keys(r.json), ['flags']);
  const byName = {};
  for (const f of r.json.flags) byName[f.name] = f;
  assert.equal(Object.keys(byName).length, r.json.flags.length, 'no flag listed twice');
  return byName;
}

/** Reasons per stale flag, sorted: {name: [reasons]}. */
async function reasons(q = '') {
  const s = await stale(q);
  return Object.fromEntries(Object.entries(s).map(([n, f]) => [n, [...f.stale].sort()]));
}

async function flag(name) {
  const r = await env.admin.get(`/api/flags/${name}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function patch(name, body) {
  const r = await env.admin.patch(`/api/flags/${name}`, body);
  assert.equal(r.status, 200, `PATCH ${name} ${JSON.stringify(body)}: ${r.text}`);
  return r.json;
}

async function lastEvent(name) {
  const r = await env.admin.get(`/api/flags/${name}/history`);
  assert.equal(r.status, 200, r.text);
  return r.json.events[0];
}

async function revert(name, event) {
  const r = await env.admin.post(`/api/flags/${name}/revert`, { event });
  assert.equal(r.status, 200, `revert ${name} to ${event}: ${r.text}`);
  return r.json;
}

/** Assert an RFC 3339 timestamp lies within [t0 - slack, t1 + slack] (ms since epoch). */
function assertNow(stamp, t0, t1, what, slack = 1000) {
  assert.match(stamp ?? '', RFC3339_MS, `${what}: ${stamp}`);
  const t = Date.parse(stamp);
  assert.ok(t >= t0 - slack && t <= t1 + slack, `${what} = ${stamp} is not the time of the write`);
}

// The flag set for the threshold tests.  Names say the age: c = created,
// r = rolled out; "m" a minute less, "p" a minute more.
const SET = {
  c29: { f: { owner: 'alice' }, age: { created: '29 days' } },
  c30m: { f: { owner: 'alice' }, age: { created: '30 days' } }, // minus 1 minute below
  c30p: { f: { owner: 'bob' }, age: { created: '30 days 1 minute' } },
  c31: { f: { owner: 'bob' }, age: { created: '31 days' } },
  fresh: { f: { owner: 'alice' }, age: null },
  r13: { f: { owner: 'carol', enabled: true, percentage: 100 }, age: { created: '20 days', rolled: '13 days' } },
  r14m: { f: { owner: 'carol', enabled: true, percentage: 100 }, age: { created: '20 days', rolled: '13 days 23 hours 59 minutes' } },
  r14p: { f: { owner: 'carol', enabled: true, percentage: 100 }, age: { created: '20 days', rolled: '14 days 1 minute' } },
  r15: { f: { owner: '', enabled: true, percentage: 100 }, age: { created: '20 days', rolled: '15 days' } },
  both: { f: { owner: 'bob', enabled: true, percentage: 100 }, age: { created: '40 days', rolled: '20 days' } },
  off100: { f: { owner: 'alice', enabled: false, percentage: 100 }, age: { created: '20 days' } },
  half: { f: { owner: 'alice', enabled: true, percentage: 50 }, age: { created: '20 days' } },
};
SET.c30m.age.created = '29 days 23 hours 59 minutes';

// Expected under the defaults (30 / 14).
const DEFAULT_STALE = {
  c30p: ['older_than_30_days'],
  c31: ['older_than_30_days'],
  r14p: ['rolled_out_14_days'],
  r15: ['rolled_out_14_days'],
  both: ['older_than_30_days', 'rolled_out_14_days'],
};
const AGE_DAYS = { c29: 29, c30m: 29, c30p: 30, c31: 31, fresh: 0, r13: 20, r14m: 20, r14p: 20, r15: 20, both: 40, off100: 20, half: 20 };

describe('GET /api/stale and the derived fields', () => {
  before(async () => {
    for (const [name, { f }] of Object.entries(SET)) {
      const made = await createFlag(env.admin, { name, ...f });
      assert.equal(made.age_days, 0, 'a new flag is 0 days old');
      assert.deepEqual(made.stale, [], 'a new flag is not stale');
    }
    const ages = {};
    for (const [name, { age: a }] of Object.entries(SET)) if (a) ages[name] = a;
    await age(ages);
  });

  test('defaults (30 / 14): exactly the flags past a threshold, with their reasons', async () => {
    assert.deepEqual(await reasons(), DEFAULT_STALE);
    assert.deepEqual(await reasons('?days=30&rolled_out_days=14'), DEFAULT_STALE, 'explicit defaults');
  });

  test('every stale entry is a whole admin flag with age_days and stale', async () => {
    const s = await stale();
    for (const f of Object.values(s)) {
      assert.deepEqual(Object.keys(f).sort(), ['age_days', 'created_at', 'description', 'enabled', 'environments',
        'last_evaluated_at', 'name', 'owner', 'percentage', 'revision', 'rolled_out_at', 'segments', 'stale',
        'updated_at', 'users']);
      assert.equal(f.age_days, AGE_DAYS[f.name], `${f.name} age_days`);
      assert.equal(f.owner, SET[f.name].f.owner);
    }
  });

  test('the boundary: a minute under N days is not stale, a minute over is; age_days counts whole days', async () => {
    const a = await flag('c30m');
    const b = await flag('c30p');
    assert.equal(a.age_days, 29, '30 days less a minute is 29 whole days');
    assert.deepEqual(a.stale, []);
    assert.equal(b.age_days, 30);
    assert.deepEqual(b.stale, ['older_than_30_days']);
    assert.deepEqual((await flag('r14m')).stale, [], 'rolled out 14 days less a minute');
    assert.deepEqual((await flag('r14p')).stale, ['rolled_out_14_days'], 'rolled out 14 days and a minute');
  });

  test('one day either side of the boundary', async () => {
    assert.deepEqual((await flag('c29')).stale, [], '29 days old');
    assert.deepEqual((await flag('c31')).stale, ['older_than_30_days'], '31 days old');
    assert.deepEqual((await flag('r13')).stale, [], 'rolled out 13 days');
    assert.deepEqual((await flag('r15')).stale, ['rolled_out_14_days'], 'rolled out 15 days');
  });

  test('"strictly more than N days": a flag N days and a minute old is stale at days=N, not at days=N+1', async () => {
    const at30 = await reasons('?days=30&rolled_out_days=100000');
    const at31 = await reasons('?days=31&rolled_out_days=100000');
    assert.ok('c30p' in at30);
    assert.ok(!('c30p' in at31), 'c30p (30 days 1 minute) is not older than 31 days');
    // c31 was set to exactly 31 days before now(); by the time of the
    // request it is 31 days and a little more: strictly more, so stale.
    assert.ok('c31' in at31, 'c31 (31 days and the seconds since) is older than 31 days');
    assert.ok(!('c29' in at30) && !('c30m' in at30));
  });

  test('days and rolled_out_days name the reasons and move the thresholds', async () => {
    assert.deepEqual(await reasons('?days=29'), {
      c29: ['older_than_29_days'], // 29 days and the seconds since
      c30m: ['older_than_29_days'],
      c30p: ['older_than_29_days'],
      c31: ['older_than_29_days'],
      r14p: ['rolled_out_14_days'],
      r15: ['rolled_out_14_days'],
      both: ['older_than_29_days', 'rolled_out_14_days'],
    });
    assert.deepEqual(await reasons('?rolled_out_days=13'), {
      c30p: ['older_than_30_days'],
      c31: ['older_than_30_days'],
      r13: ['rolled_out_13_days'],
      r14m: ['rolled_out_13_days'],
      r14p: ['rolled_out_13_days'],
      r15: ['rolled_out_13_days'],
      both: ['older_than_30_days', 'rolled_out_13_days'],
    });
    assert.deepEqual(await reasons('?days=100000&rolled_out_days=100000'), {}, 'nothing is that old');
    assert.deepEqual(await reasons('?days=100000&rolled_out_days=19'), { both: ['rolled_out_19_days'] });
  });

  test('days=0 makes every flag stale; rolled_out_days=0 every rolled-out flag; off or <100 % never rolled out', async () => {
    const all = await reasons('?days=0&rolled_out_days=100000');
    assert.deepEqual(Object.keys(all).sort(), Object.keys(SET).sort());
    for (const r of Object.values(all)) assert.deepEqual(r, ['older_than_0_days']);
    const ro = await reasons('?days=100000&rolled_out_days=0');
    assert.deepEqual(Object.keys(ro).sort(), ['both', 'r13', 'r14m', 'r14p', 'r15']);
    for (const r of Object.values(ro)) assert.deepEqual(r, ['rolled_out_0_days']);
    assert.equal((await flag('off100')).rolled_out_at, null, 'disabled at 100 % is not rolled out');
    assert.equal((await flag('half')).rolled_out_at, null, 'enabled at 50 % is not rolled out');
  });

  for (const key of ['days', 'rolled_out_days']) {
    for (const bad of ['-1', '1.5', 'abc', '', '1e3', '0x10', ' 5', '99999999999999999999', '9223372036854775808', '-0.5']) {
      test(`${key}=${JSON.stringify(bad)} → 400`, async () => {
        const r = await env.admin.get(`/api/stale?${key}=${encodeURIComponent(bad)}`);
        assertError(r, 400, ['invalid_value', 'bad_request']);
      });
    }
    test(`${key}=1000000000 (beyond any flag's age): 400, or 200 with nothing stale for it`, async () => {
      const r = await env.admin.get(`/api/stale?${key}=1000000000`);
      if (r.status === 400) return assertError(r, 400, ['invalid_value', 'bad_request']);
      assert.equal(r.status, 200, r.text);
      for (const f of r.json.flags) {
        assert.ok(!f.stale.some((x) => x.startsWith(key === 'days' ? 'older_than_' : 'rolled_out_')),
          `${f.name}: ${f.stale}`);
      }
    });
  }

  test('GET /api/flags: age_days and stale (defaults) on every flag', async () => {
    const r = await env.admin.get('/api/flags');
    assert.equal(r.status, 200);
    assert.equal(r.json.flags.length, Object.keys(SET).length);
    for (const f of r.json.flags) {
      assert.ok(Number.isInteger(f.age_days), `${f.name} age_days ${f.age_days}`);
      assert.equal(f.age_days, AGE_DAYS[f.name], `${f.name} age_days`);
      assert.deepEqual([...f.stale].sort(), DEFAULT_STALE[f.name] ?? [], `${f.name} stale`);
    }
  });

  test('GET /api/flags/<name>, PATCH and the public API', async () => {
    const g = await flag('both');
    assert.equal(g.age_days, 40);
    assert.deepEqual([...g.stale].sort(), ['older_than_30_days', 'rolled_out_14_days']);
    const p = await patch('c31', { description: 'still here' });
    assert.equal(p.age_days, 31, 'PATCH answers with the stored created_at');
    assert.deepEqual(p.stale, ['older_than_30_days']);
    const pub = await env.client.get('/flags');
    for (const f of pub.json.flags) {
      assert.ok(!('age_days' in f) && !('stale' in f), `public /flags shows admin-only fields: ${JSON.stringify(f)}`);
    }
  });

  test('stale requires an admin token', async () => {
    assert.equal((await env.client.get('/api/stale')).status, 403);
    assert.equal((await env.anon.get('/api/stale')).status, 401);
  });
});

describe('vexil stale (command line)', () => {
  const run = (args) => vexil(['stale', ...args]);

  test('plain: a table of the stale flags with owner, age and reasons; exit 1', async () => {
    const r = await run(['--database', env.db.url]);
    assertNoSanitizerReport(r.stderr, 'vexil stale');
    assert.equal(r.code, 1, `exit status with stale flags: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    for (const [name, why] of Object.entries(DEFAULT_STALE)) {
      const line = lines.find((l) => l.split(/\s+/).includes(name));
      assert.ok(line, `no line for ${name} in:\n${r.stdout}`);
      const owner = SET[name].f.owner;
      if (owner) assert.ok(line.includes(owner), `${name}: owner ${owner} missing: ${line}`);
      assert.match(line, new RegExp(`\\b${AGE_DAYS[name]}\\b`), `${name}: age missing: ${line}`);
      for (const w of why) assert.ok(line.includes(w), `${name}: reason ${w} missing: ${line}`);
    }
    for (const name of Object.keys(SET).filter((n) => !(n in DEFAULT_STALE))) {
      assert.ok(!lines.some((l) => l.split(/\s+/).includes(name)), `${name} is not stale but listed:\n${r.stdout}`);
    }
  });

  test('--json: valid JSON, the same flags and fields as GET /api/stale', async () => {
    const r = await run(['--json', '--database', env.db.url]);
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j), ['flags']);
    const api = await stale();
    assert.deepEqual(j.flags.map((f) => f.name).sort(), Object.keys(api).sort());
    for (const f of j.flags) {
      const { updated_at: _u, revision: _r, description: _d, ...cli } = f;
      // The command line reports the default environment's state, without
      // the map of every environment's.
      const { updated_at: _u2, revision: _r2, description: _d2, environments: _e2, ...ref } = api[f.name];
      assert.deepEqual({ ...cli, stale: [...cli.stale].sort() }, { ...ref, stale: [...ref.stale].sort() });
    }
  });

  test('--days / --rolled-out-days', async () => {
    const r = await run(['--json', '--days', '29', '--rolled-out-days', '13', '--database', env.db.url]);
    assert.equal(r.code, 1, r.stderr);
    const got = Object.fromEntries(JSON.parse(r.stdout).flags.map((f) => [f.name, [...f.stale].sort()]));
    assert.deepEqual(got, await reasons('?days=29&rolled_out_days=13'));
    assert.ok(got.c29.includes('older_than_29_days'));
  });

  test('--owner: only that owner\'s flags; exit 0 for an owner with none', async () => {
    const r = await run(['--json', '--owner', 'bob', '--database', env.db.url]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).flags.map((f) => f.name).sort(), ['both', 'c30p', 'c31']);
    const p = await run(['--owner', 'carol', '--database', env.db.url]);
    assert.equal(p.code, 1);
    assert.ok(p.stdout.includes('r14p') && !p.stdout.includes('c31'), p.stdout);
    const none = await run(['--json', '--owner', 'alice', '--database', env.db.url]);
    assert.equal(none.code, 0, 'alice has no stale flag under the defaults');
    assert.deepEqual(JSON.parse(none.stdout), { flags: [] });
    const nobody = await run(['--owner', 'nobody-at-all', '--database', env.db.url]);
    assert.equal(nobody.code, 0);
  });

  test('nothing stale: exit 0, no flag printed; --json prints {"flags": []}', async () => {
    const args = ['--days', '100000', '--rolled-out-days', '100000', '--database', env.db.url];
    const r = await run(args);
    assert.equal(r.code, 0, r.stderr);
    for (const name of Object.keys(SET)) assert.ok(!r.stdout.includes(name), r.stdout);
    const j = await run(['--json', ...args]);
    assert.equal(j.code, 0);
    assert.deepEqual(JSON.parse(j.stdout), { flags: [] });
  });

  test('the database URL from VEXIL_DATABASE_URL', async () => {
    const r = await vexil(['stale', '--json'], { env: { VEXIL_DATABASE_URL: env.db.url } });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).flags.length, Object.keys(DEFAULT_STALE).length);
  });

  const BAD = [
    ['an unknown option', ['--bogus']],
    ['--days negative', ['--days', '-1']],
    ['--days not a number', ['--days', 'abc']],
    ['--days without a value', ['--days']],
    ['--rolled-out-days fractional', ['--rolled-out-days', '1.5']],
    ['an extra argument', ['extra']],
  ];
  for (const [what, args] of BAD) {
    test(`exit 2 on bad use: ${what}; one line on stderr, nothing on stdout`, async () => {
      const r = await run([...args, '--database', env.db.url]);
      assert.equal(r.code, 2, `${what}: exit ${r.code}, stdout ${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    });
  }

  test('exit 2 when the database is unreachable', async () => {
    const r = await run(['--database', 'postgresql://postgres@127.0.0.1:1/none?connect_timeout=2']);
    assert.equal(r.code, 2, r.stdout);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.trim().length > 0);
    const j = await run(['--json', '--database', 'postgresql://postgres@127.0.0.1:1/none?connect_timeout=2']);
    assert.equal(j.code, 2, 'also with --json');
    assert.equal(j.stdout, '', 'no half JSON on stdout');
  });

  test('exit 2 on a database that vexil never migrated', async () => {
    const db = await createDatabase();
    try {
      const r = await run(['--json', '--database', db.url]);
      assert.equal(r.code, 2, `${r.stdout} ${r.stderr}`);
      assert.equal(r.stdout, '');
    } finally {
      await db.drop();
    }
  });
});

describe('rolled_out_at follows one rule (docs/decisions.md)', () => {
  test('create: set when created enabled at 100 %, else null', async () => {
    const t0 = Date.now();
    const a = await createFlag(env.admin, { name: 'ro_born', enabled: true, percentage: 100 });
    const t1 = Date.now();
    assertNow(a.rolled_out_at, t0, t1, 'rolled_out_at at create');
    assert.equal(a.rolled_out_at, a.created_at);
    const b = await createFlag(env.admin, { name: 'ro_life', enabled: false, percentage: 100, owner: 'dora' });
    assert.equal(b.rolled_out_at, null);
    const c = await createFlag(env.admin, { name: 'ro_half', enabled: true, percentage: 99 });
    assert.equal(c.rolled_out_at, null);
  });

  test('update: set on reaching enabled + 100 %, kept while unchanged, cleared when disabled or lowered', async () => {
    let t0 = Date.now();
    let f = await patch('ro_life', { enabled: true });
    assertNow(f.rolled_out_at, t0, Date.now(), 'rolled_out_at when enabled at 100 %');
    // Push it back 20 days so "kept" and "set anew" can be told apart.
    const aged = (await age({ ro_life: { rolled: '20 days' } })).ro_life.rolled_out_at;
    assert.deepEqual((await flag('ro_life')).stale, ['rolled_out_14_days']);
    for (const body of [{ description: 'edited' }, { owner: 'erin' }, { users: ['u1'] }, { percentage: 100 },
      { enabled: true }, { description: 'again', percentage: 100, enabled: true }]) {
      f = await patch('ro_life', body);
      assert.equal(f.rolled_out_at, aged, `kept across ${JSON.stringify(body)}`);
      assert.deepEqual(f.stale, ['rolled_out_14_days']);
    }
    assert.equal((await flag('ro_life')).rolled_out_at, aged, 'and in the snapshot');

    f = await patch('ro_life', { percentage: 99 });
    assert.equal(f.rolled_out_at, null, 'lowered below 100 %');
    assert.deepEqual(f.stale, []);
    t0 = Date.now();
    f = await patch('ro_life', { percentage: 100 });
    assertNow(f.rolled_out_at, t0, Date.now(), 'raised to 100 % again: set anew');
    f = await patch('ro_life', { enabled: false });
    assert.equal(f.rolled_out_at, null, 'disabled');
    f = await patch('ro_life', { percentage: 50 });
    f = await patch('ro_life', { enabled: true });
    assert.equal(f.rolled_out_at, null, 'enabled at 50 %');
    t0 = Date.now();
    f = await patch('ro_life', { percentage: 100 });
    assertNow(f.rolled_out_at, t0, Date.now(), 'enabled and raised to 100 %');
    const db = await psql(env.db.url, `SELECT ${ts('rolled_out_at')} FROM flag_states WHERE flag = 'ro_life' AND environment = 'production'`);
    assert.equal(db, f.rolled_out_at, 'stored as shown');
  });

  test('revert to a not-rolled-out state clears it', async () => {
    const t0 = Date.now();
    const up = await patch('ro_half', { percentage: 100 }); // event: before at 99 %, enabled
    assertNow(up.rolled_out_at, t0, Date.now(), 'ro_half rolled out');
    const e = await lastEvent('ro_half');
    const r = await revert('ro_half', e.id);
    assert.equal(r.percentage, 99);
    assert.equal(r.rolled_out_at, null, 'reverted to 99 %');
  });

  test('revert that re-enables a rolled-out state sets it to the time of the revert', async () => {
    // ro_born: rolled out since creation; make that 20 days ago, then disable.
    const aged = (await age({ ro_born: { rolled: '20 days' } })).ro_born.rolled_out_at;
    await patch('ro_born', { enabled: false });
    const e = await lastEvent('ro_born');
    assert.equal(e.before.rolled_out_at, aged, 'the event recorded the old rolled_out_at');
    const t0 = Date.now();
    const r = await revert('ro_born', e.id);
    assert.equal(r.enabled, true);
    assertNow(r.rolled_out_at, t0, Date.now(), 'rolled out again by the revert: now, not the event\'s value');
    assert.deepEqual(r.stale, []);
  });

  test('revert between two rolled-out states keeps the current rolled_out_at', async () => {
    const aged = (await age({ ro_born: { rolled: '20 days' } })).ro_born.rolled_out_at;
    await patch('ro_born', { percentage: 50, description: 'lowered' });
    const e = await lastEvent('ro_born'); // before: 100 %, rolled out since `aged`
    assert.equal(e.before.rolled_out_at, aged);
    const t0 = Date.now();
    const up = await patch('ro_born', { percentage: 100 });
    assertNow(up.rolled_out_at, t0, Date.now(), 'raised again');
    const r = await revert('ro_born', e.id);
    assert.equal(r.description, '', 'the event\'s before state is back');
    assert.equal(r.percentage, 100);
    assert.equal(r.rolled_out_at, up.rolled_out_at, 'rolled out before and after the revert: kept');
  });

  test('restoring a deleted rolled-out flag: created_at kept, rolled_out_at set at the restore', async () => {
    const aged = await age({ ro_born: { created: '50 days', rolled: '20 days' } });
    const d = await env.admin.del('/api/flags/ro_born');
    assert.equal(d.status, 204, d.text);
    const e = await lastEvent('ro_born');
    assert.equal(e.action, 'delete');
    const t0 = Date.now();
    const r = await revert('ro_born', e.id);
    assert.equal(r.created_at, aged.ro_born.created_at, 'created_at comes back');
    assert.equal(r.age_days, 50);
    assertNow(r.rolled_out_at, t0, Date.now(), 'rolled_out_at of the restored flag');
    assert.deepEqual(r.stale, ['older_than_30_days']);
    const g = await flag('ro_born');
    assert.equal(g.rolled_out_at, r.rolled_out_at, 'the snapshot agrees');
  });
});

// docs/decisions.md "Text for people": an owner or a description is free text
// (the API takes any character but NUL), so it may hold terminal controls.
// The table shows them escaped, with its columns still lined up; --json
// stays JSON and gives the exact text back.
describe('vexil stale: control characters in owners and descriptions', () => {
  const OWNER = '\u001b[31mred\u001b[0m\r\nBcc: x\u009b2J\u007f\tend';
  const DESC = 'desc \u001b]0;title\u0007 \u009b6n \r\n line2';
  const SHOWN = '\\x1b[31mred\\x1b[0m\\r\\nBcc: x\\u009b2J\\x7f\\tend';
  let cenv;

  before(async () => {
    cenv = await startEnv();
    // The API lets these through (owner and description: any text but NUL).
    await createFlag(cenv.admin, { name: 'ctl_flag', owner: OWNER, description: DESC });
    await createFlag(cenv.admin, { name: 'plain_flag_with_a_long_name', owner: 'bob' });
    // As a hand edit or an older version could have left it: C1 and a
    // bidirectional override straight into the database.
    await createFlag(cenv.admin, { name: 'db_flag' });
    await psql(cenv.db.url, `UPDATE flags SET owner = E'x\\u009b31m\\u202eevil\\u0085', description = E'\\x1b[2J'
      WHERE name = 'db_flag'`);
    await psql(cenv.db.url, "UPDATE flags SET created_at = now() - interval '40 days'");
  });
  after(async () => {
    await cenv?.close();
  });

  /** `vexil stale args`, stdout as bytes. */
  const runBytes = (args) => {
    const r = spawnSync(VEXIL_BIN, ['stale', ...args, '--database', cenv.db.url], { encoding: 'buffer', timeout: 30000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
  };

  test('the table shows them escaped; nothing but its own newlines below 0x20', () => {
    const r = runBytes([]);
    assertNoSanitizerReport(r.stderr, 'vexil stale');
    assert.equal(r.code, 1, r.stderr);
    const text = assertNoControls(r.stdout, 'vexil stale');
    const lines = text.split('\n');
    const row = lines.find((l) => l.startsWith('ctl_flag '));
    assert.ok(row, `a row for ctl_flag:\n${text}`);
    assert.ok(row.includes(SHOWN), `owner shown escaped: ${row}`);
    const db = lines.find((l) => l.startsWith('db_flag '));
    assert.ok(db.includes('x\\u009b31m\\u202eevil\\u0085'), `C1 and U+202E shown escaped: ${db}`);
    assert.ok(!text.includes('desc'), 'the description is not in the table');
    // Columns line up: every row has its age where the header has AGE.
    const header = lines.find((l) => l.startsWith('NAME'));
    const ageAt = [...header].join('').indexOf('AGE (DAYS)');
    const rows = lines.filter((l) => /^(ctl_flag|db_flag|plain_flag_with_a_long_name) /.test(l));
    assert.equal(rows.length, 3, text);
    for (const l of rows) {
      const chars = [...l];
      assert.equal(chars.slice(ageAt, ageAt + 2).join(''), '40', `age column of ${JSON.stringify(l)} in:\n${text}`);
      assert.equal(chars[ageAt - 1], ' ');
    }
  });

  test('--json stays JSON, has no raw control character, and gives the exact owner and description back', async () => {
    const r = runBytes(['--json']);
    assert.equal(r.code, 1, r.stderr);
    const text = assertNoControls(r.stdout, 'vexil stale --json');
    const flags = Object.fromEntries(JSON.parse(text).flags.map((f) => [f.name, f]));
    assert.equal(flags.ctl_flag.owner, OWNER);
    assert.equal(flags.ctl_flag.description, DESC);
    assert.equal(flags.db_flag.owner, 'x\u009b31m\u202eevil\u0085');
    assert.equal(flags.db_flag.description, '\u001b[2J');
    const api = (await cenv.admin.get('/api/flags/ctl_flag')).json;
    assert.equal(api.owner, OWNER, 'the API stores the text as given');
    const byOwner = runBytes(['--json', '--owner', OWNER]);
    assert.equal(byOwner.code, 1, byOwner.stderr);
    assert.deepEqual(JSON.parse(byOwner.stdout.toString('utf8')).flags.map((f) => f.name), ['ctl_flag'],
      '--owner matches the exact text');
  });
});

// docs/operations.md §3: staleness by rollout is judged in the default
// environment alone -- a flag rolled out long ago in staging but not in
// production is still being released, not debt.
describe('rollout is judged in the default environment', () => {
  let e;
  before(async () => {
    e = await startEnv();
    const r = await e.admin.post('/api/environments', { name: 'staging' });
    assert.equal(r.status, 201, r.text);
    await createFlag(e.admin, { name: 'where_rolled', enabled: true, percentage: 50,
      environments: { staging: { enabled: true, percentage: 100 } } });
  });
  after(async () => {
    await e?.close();
  });

  const apiStale = async () => {
    const r = await e.admin.get('/api/stale');
    assert.equal(r.status, 200, r.text);
    return r.json.flags.map((f) => [f.name, f.stale]);
  };
  const cliStale = async () => {
    const r = await vexil(['stale', '--json', '--database', e.db.url]);
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    return [r.code, JSON.parse(r.stdout).flags.map((f) => f.name)];
  };
  // Age a state straight in the database, then have the server load in full.
  const ageRollout = async (envName) => {
    await psql(e.db.url, `UPDATE flag_states SET rolled_out_at = now() - interval '20 days'
      WHERE flag = 'where_rolled' AND environment = '${envName}'; SELECT pg_notify('vexil', 'reload');`);
  };

  test('rolled out 20 days ago in staging only: not stale, by the API or vexil stale', async () => {
    await ageRollout('staging');
    await waitFor(async () => {
      const f = (await e.admin.get('/api/flags/where_rolled')).json;
      return f.environments.staging.rolled_out_at < new Date(Date.now() - 19 * DAY).toISOString();
    }, 3000, 50);
    assert.deepEqual(await apiStale(), []);
    assert.deepEqual(await cliStale(), [0, []]);
  });

  test('rolled out 20 days ago in the default environment: stale', async () => {
    const p = await e.admin.patch('/api/flags/where_rolled', { percentage: 100 });
    assert.equal(p.status, 200, p.text);
    await ageRollout('production');
    assert.ok(await waitFor(async () => (await apiStale()).length === 1, 3000, 50), 'listed by the API');
    assert.deepEqual(await apiStale(), [['where_rolled', ['rolled_out_14_days']]]);
    assert.deepEqual(await cliStale(), [1, ['where_rolled']]);
  });
});
