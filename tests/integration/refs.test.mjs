// docs/operations.md §3 "Where the code still uses a flag": `vexil refs` and
// `vexil stale --refs` against a real database and a real server.
//
// The flags: live_flag (fresh), stale_flag (created 40 days ago, moved back
// in the database), gone_flag (created, then deleted through the API), and
// rolled_flag (rolled out to 100 % 20 days ago).  A source tree in a
// temporary directory names them in the ways refs must and must not count.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  REPO, VEXIL_BIN, assertNoControls, assertNoSanitizerReport, createFlag, createToken, psql, run, startEnv, vexil,
} from './lib/harness.mjs';
import { waitFor } from './lib/cluster.mjs';

let env;
let tmp;
let tree; // the source tree: every kind of reference
let clean; // only live_flag
let staleOnly; // live_flag and stale_flag

const put = (root, rel, text) => {
  const p = path.join(root, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
};

before(async () => {
  env = await startEnv();
  await createFlag(env.admin, { name: 'live_flag', owner: 'alice' });
  await createFlag(env.admin, { name: 'stale_flag', owner: 'bob' });
  await createFlag(env.admin, { name: 'gone_flag', owner: 'carol' });
  await createFlag(env.admin, { name: 'rolled_flag', owner: 'bob', enabled: true, percentage: 100 });
  await createFlag(env.admin, { name: 'unused_old', owner: 'dave' });
  const d = await env.admin.del('/api/flags/gone_flag');
  assert.equal(d.status, 204, d.text);
  await psql(env.db.url, `
    UPDATE flags SET created_at = now() - interval '40 days' WHERE name IN ('stale_flag', 'unused_old');
    UPDATE flag_states SET rolled_out_at = now() - interval '20 days' WHERE flag = 'rolled_flag';
    SELECT pg_notify('vexil', 'reload');`);
  // The server serves from its snapshot: wait until it has reloaded.
  const ok = await waitFor(async () => {
    const r = await env.admin.get('/api/stale');
    return r.json?.flags?.length === 3;
  }, 5000, 50);
  assert.ok(ok, 'the server shows the aged flags as stale');

  tmp = mkdtempSync(path.join(os.tmpdir(), 'vexil-refs-'));
  tree = path.join(tmp, 'tree');
  put(tree, 'src/app.js', [
    "import { flags } from './flags';", // 1
    "if (flags.isOn('live_flag')) {}", // 2
    'if (flags.isOn("stale_flag")) {}', // 3
    'const old = `gone_flag`;', // 4
    '// live_flag unquoted is not a reference, nor "live_flag.v2" nor "gone_flag_2"', // 5
    'const s = "say \\"gone_flag\\" twice";', // 6: escaped quotes
    "x('rolled_flag'); y('live_flag'); z('live_flag');", // 7: live_flag once
  ].join('\n') + '\n');
  put(tree, 'src/win.py', 'a = 1\r\nif flag("gone_flag"):\r\n    pass\r\n\r\nb = "stale_flag"\r\n');
  put(tree, 'src/z/deep.go', '\n\n\nvar f = "live_flag"\n');
  put(tree, 'node_modules/lib/index.js', '"gone_flag"\n');
  put(tree, '.git/config', '"gone_flag"\n');
  put(tree, 'build/out.js', '"gone_flag"\n');
  writeFileSync(path.join(tree, 'src/blob.bin'), Buffer.concat([Buffer.from('"gone_flag"\n'), Buffer.from([0, 1, 2])]));
  symlinkSync('..', path.join(tree, 'src/z/loop'));
  clean = path.join(tmp, 'clean');
  put(clean, 'a.ts', "on('live_flag')\n");
  staleOnly = path.join(tmp, 'stale-only');
  put(staleOnly, 'a.ts', "on('live_flag')\non('stale_flag')\n");
});

after(async () => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await env?.close();
});

const refs = (args, opts) => vexil(['refs', ...args], opts);
const db = () => ['--database', env.db.url];

/** Lines of stdout with the temporary directory cut off the paths. */
const lines = (r) => r.stdout.split('\n').filter(Boolean).map((l) => l.replaceAll(tmp + '/', ''));

/** Assert exit 2 with exactly one line on stderr and nothing on stdout. */
function assertBadUse(r, what) {
  assertNoSanitizerReport(r.stderr, what);
  assert.equal(r.code, 2, `${what}: exit status (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').filter(Boolean).length, 1, `${what}: one line on stderr:\n${r.stderr}`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
}

const TREE_REFS = [
  'tree/src/app.js:2: live_flag',
  'tree/src/app.js:3: stale_flag (stale: older_than_30_days)',
  'tree/src/app.js:4: gone_flag (unknown: not a flag)',
  'tree/src/app.js:7: rolled_flag (stale: rolled_out_14_days)',
  'tree/src/app.js:7: live_flag',
  'tree/src/win.py:2: gone_flag (unknown: not a flag)',
  'tree/src/win.py:5: stale_flag (stale: older_than_30_days)',
  'tree/src/z/deep.go:4: live_flag',
];

describe('vexil refs --database', () => {
  test('every reference, in walk order, with its mark; skipped folders, binary files, a link loop', async () => {
    const r = await refs([...db(), tree]);
    assertNoSanitizerReport(r.stderr, 'vexil refs');
    assert.deepEqual(lines(r), TREE_REFS);
    assert.equal(r.code, 1, `a deleted flag is named: exit 1 (stderr: ${r.stderr})`);
    assert.equal(r.stderr, '');
  });

  test('--fail-on: unknown (default) and stale fail on a deleted flag, none never', async () => {
    for (const [arg, code] of [[[], 1], [['--fail-on', 'unknown'], 1], [['--fail-on', 'stale'], 1], [['--fail-on', 'none'], 0]]) {
      const r = await refs([...db(), ...arg, tree]);
      assert.equal(r.code, code, `${arg.join(' ')}: ${r.stderr}`);
      assert.deepEqual(lines(r), TREE_REFS, 'the same output whatever fails');
    }
  });

  test('--fail-on with stale references only: stale fails, unknown and none do not', async () => {
    for (const [arg, code] of [[[], 0], [['--fail-on', 'stale'], 1], [['--fail-on', 'none'], 0]]) {
      const r = await refs([...db(), ...arg, staleOnly]);
      assert.equal(r.code, code, `${arg.join(' ')}: ${r.stderr}`);
      assert.deepEqual(lines(r), ['stale-only/a.ts:1: live_flag', 'stale-only/a.ts:2: stale_flag (stale: older_than_30_days)']);
    }
  });

  test('only live flags: exit 0 with every --fail-on', async () => {
    for (const fail of ['unknown', 'stale', 'none']) {
      const r = await refs([...db(), '--fail-on', fail, clean]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(lines(r), ['clean/a.ts:1: live_flag']);
    }
  });

  test('--days and --rolled-out-days move the thresholds', async () => {
    const r = await refs([...db(), '--days', '100', '--rolled-out-days', '10', '--fail-on', 'stale', staleOnly, path.join(tree, 'src/app.js')]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(lines(r), [
      'stale-only/a.ts:1: live_flag',
      'stale-only/a.ts:2: stale_flag',
      'tree/src/app.js:2: live_flag',
      'tree/src/app.js:3: stale_flag',
      'tree/src/app.js:4: gone_flag (unknown: not a flag)',
      'tree/src/app.js:7: rolled_flag (stale: rolled_out_10_days)',
      'tree/src/app.js:7: live_flag',
    ]);
  });

  test('--json: {references: [{path, line, name, flag}], files_scanned}', async () => {
    const r = await refs([...db(), '--json', tree]);
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j), ['references', 'files_scanned']);
    assert.equal(j.files_scanned, 3, 'app.js, win.py, deep.go (not the binary, not skipped folders)');
    for (const ref of j.references) assert.deepEqual(Object.keys(ref), ['path', 'line', 'name', 'flag']);
    assert.deepEqual(j.references.map((x) => `${x.path.replace(tmp + '/', '')}:${x.line}:${x.name}:${x.flag}`), [
      'tree/src/app.js:2:live_flag:ok',
      'tree/src/app.js:3:stale_flag:stale',
      'tree/src/app.js:4:gone_flag:unknown',
      'tree/src/app.js:7:rolled_flag:stale',
      'tree/src/app.js:7:live_flag:ok',
      'tree/src/win.py:2:gone_flag:unknown',
      'tree/src/win.py:5:stale_flag:stale',
      'tree/src/z/deep.go:4:live_flag:ok',
    ]);
    const none = await refs([...db(), '--json', path.join(tmp, 'clean')]);
    assert.deepEqual(JSON.parse(none.stdout), {
      references: [{ path: path.join(clean, 'a.ts'), line: 1, name: 'live_flag', flag: 'ok' }], files_scanned: 1,
    });
  });

  test('a flag created again after its delete is live, not unknown', async () => {
    const e = await startEnv();
    try {
      await createFlag(e.admin, { name: 'phoenix' });
      assert.equal((await e.admin.del('/api/flags/phoenix')).status, 204);
      const file = writeTmp('phoenix.js', "'phoenix'\n");
      let r = await refs(['--database', e.db.url, '--json', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(JSON.parse(r.stdout).references[0].flag, 'unknown');
      await createFlag(e.admin, { name: 'phoenix' });
      r = await refs(['--database', e.db.url, '--json', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).references[0].flag, 'ok');
    } finally {
      await e.close();
    }
  });

  test('a role that may only read (the grants of docs/operations.md, "In CI") is enough', async () => {
    const role = `vexil_ci_${process.pid}_${Date.now()}`;
    await psql(env.db.url, `CREATE ROLE ${role} LOGIN;
      GRANT CONNECT ON DATABASE "${env.db.name}" TO ${role};
      GRANT SELECT ON flags, flag_states, environments, flag_events TO ${role};`);
    try {
      const url = new URL(env.db.url);
      url.username = role;
      const r = await refs(['--database', url.toString(), tree]);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(lines(r), TREE_REFS);
    } finally {
      await psql(env.db.url, `DROP OWNED BY ${role}; DROP ROLE ${role};`);
    }
  });

  test('$VEXIL_DATABASE_URL is the default source', async () => {
    const r = await refs([clean], { env: { VEXIL_DATABASE_URL: env.db.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r), ['clean/a.ts:1: live_flag']);
  });

  test('an unreachable database: exit 2, one line', async () => {
    const r = await refs(['--database', 'postgresql://postgres@127.0.0.1:1/none?connect_timeout=2', clean]);
    assertBadUse(r, 'unreachable database');
  });
});

function writeTmp(rel, text) {
  const p = path.join(tmp, rel);
  writeFileSync(p, text);
  return p;
}

describe('vexil refs --server', () => {
  const server = () => ['--server', env.server.base, '--token', env.adminToken];

  test('live and stale flags from the API; a deleted flag is not seen, and a note says so', async () => {
    const r = await refs([...server(), tree]);
    assertNoSanitizerReport(r.stderr, 'vexil refs --server');
    assert.equal(r.code, 0, `no reference is unknown through a server (stderr: ${r.stderr})`);
    assert.deepEqual(lines(r), TREE_REFS.filter((l) => !l.includes('gone_flag')));
    assert.match(r.stderr, /note: .*deleted flags/);
  });

  test('--fail-on stale fails on the stale references; no note', async () => {
    const r = await refs([...server(), '--fail-on', 'stale', staleOnly]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(lines(r), ['stale-only/a.ts:1: live_flag', 'stale-only/a.ts:2: stale_flag (stale: older_than_30_days)']);
  });

  test('--json, the token from $VEXIL_TOKEN, a URL ending in /, thresholds passed to /api/stale', async () => {
    const r = await refs(['--server', env.server.base + '/', '--json', '--days', '100', '--fail-on', 'none', staleOnly],
      { env: { VEXIL_TOKEN: env.adminToken } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).references.map((x) => x.flag), ['ok', 'ok']);
  });

  test('the same answer as --database for the live flags', async () => {
    const a = await refs([...server(), '--json', '--fail-on', 'none', tree]);
    const b = await refs([...db(), '--json', '--fail-on', 'none', tree]);
    const strip = (r) => JSON.parse(r.stdout).references.filter((x) => x.flag !== 'unknown');
    assert.deepEqual(strip(a), strip(b));
  });

  test('a client token is refused (403), a wrong one too (401): exit 2, one line', async () => {
    let r = await refs(['--server', env.server.base, '--token', env.clientToken, clean]);
    assertBadUse(r, 'client token');
    assert.match(r.stderr, /HTTP 403/);
    r = await refs(['--server', env.server.base, '--token', 'vx_wrong', clean]);
    assertBadUse(r, 'wrong token');
    assert.match(r.stderr, /HTTP 401/);
    assert.ok(!r.stderr.includes('vx_wrong'), 'the token is not printed');
  });

  test('a server that is not there: exit 2, one line', async () => {
    const r = await refs(['--server', 'http://127.0.0.1:1', '--token', env.adminToken, clean]);
    assertBadUse(r, 'no server');
  });

  test('an answer that is not a list of flags: exit 2, one line', async () => {
    // /healthz answers 200 with {"status":"ok"}: a base URL under which /api/flags is that.
    const http = await import('node:http');
    const srv = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(req.url.startsWith('/api/stale') ? '{"flags":[]}' : '{"status":"ok"}');
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const r = await refs(['--server', `http://127.0.0.1:${srv.address().port}`, '--token', 'vx_x', clean]);
      assertBadUse(r, 'not a list');
      assert.match(r.stderr, /not a list of flags/);
    } finally {
      srv.close();
    }
  });
});

describe('vexil refs --names', () => {
  test('names from a file are live and not stale; comments and blank lines skipped', async () => {
    const file = writeTmp('names.txt', '# flags the code may use\n\n  gone_flag  \r\nstale_flag\n');
    const r = await refs(['--names', file, '--fail-on', 'stale', path.join(tree, 'src')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r), [
      'tree/src/app.js:3: stale_flag',
      'tree/src/app.js:4: gone_flag',
      'tree/src/win.py:2: gone_flag',
      'tree/src/win.py:5: stale_flag',
    ]);
  });

  test('a line that is not a flag name: exit 2 naming the line', async () => {
    const file = writeTmp('bad-names.txt', 'ok_name\nnot a name\u001b[2J\n');
    const r = await refs(['--names', file, clean]);
    assertBadUse(r, 'bad names file');
    assert.match(r.stderr, /bad-names\.txt:2: not a flag name: not a name\\x1b\[2J/);
    assertBadUse(await refs(['--names', path.join(tmp, 'missing.txt'), clean]), 'missing names file');
  });

  test('--max-file-size skips larger files; --threads gives the same answer', async () => {
    const file = writeTmp('names2.txt', 'live_flag\n');
    const big = await refs(['--names', file, '--json', '--max-file-size', '17', clean]);
    assert.deepEqual(JSON.parse(big.stdout), { references: [{ path: path.join(clean, 'a.ts'), line: 1, name: 'live_flag', flag: 'ok' }], files_scanned: 1 });
    const small = await refs(['--names', file, '--json', '--max-file-size', '15', clean]);
    assert.deepEqual(JSON.parse(small.stdout), { references: [], files_scanned: 0 });
    const one = await refs(['--names', file, '--threads', '1', tree]);
    const four = await refs(['--names', file, '--threads', '4', tree]);
    assert.equal(one.stdout, four.stdout);
    assert.equal(one.code, 0);
  });

  test('control characters in a file name are shown escaped; --json has the name', async () => {
    const dir = path.join(tmp, 'ctl');
    put(dir, 'a\u001b[31m\r\n.js', '"live_flag"\n');
    const file = writeTmp('names3.txt', 'live_flag\n');
    const r = spawnSync(VEXIL_BIN, ['refs', '--names', file, dir], { encoding: 'buffer', timeout: 30000 });
    assert.equal(r.status, 0, r.stderr.toString());
    const text = assertNoControls(r.stdout, 'vexil refs');
    assert.equal(text, `${dir}/a\\x1b[31m\\r\\n.js:1: live_flag\n`);
    const j = spawnSync(VEXIL_BIN, ['refs', '--names', file, '--json', dir], { encoding: 'buffer', timeout: 30000 });
    assertNoControls(j.stdout, 'vexil refs --json');
    assert.equal(JSON.parse(j.stdout.toString('utf8')).references[0].path, path.join(dir, 'a\u001b[31m\r\n.js'));
  });
});

describe('vexil refs: bad use', () => {
  const names = () => writeTmp('n.txt', 'live_flag\n');
  const cases = [
    ['no path', () => ['--names', names()]],
    ['a path that does not exist', () => ['--names', names(), path.join(tmp, 'nope')]],
    ['two sources', () => ['--names', names(), '--database', env.db.url, clean]],
    ['server and database', () => ['--server', env.server.base, '--token', 't', '--database', env.db.url, clean]],
    ['--server without a token', () => ['--server', env.server.base, clean]],
    ['--server not http', () => ['--server', 'ftp://x', '--token', 't', clean]],
    ['--token with a space', () => ['--server', env.server.base, '--token', 'a b', clean]],
    ['--fail-on something else', () => ['--names', names(), '--fail-on', 'always', clean]],
    ['--threads 0', () => ['--names', names(), '--threads', '0', clean]],
    ['--max-file-size 0', () => ['--names', names(), '--max-file-size', '0', clean]],
    ['unknown option', () => ['--frob', clean]],
  ];
  for (const [what, args] of cases) {
    test(`${what}: exit 2, one line on stderr`, async () => {
      assertBadUse(await refs(args(), { env: { VEXIL_TOKEN: '' } }), what);
    });
  }

  test('--help prints the usage and exits 0', async () => {
    const r = await refs(['--help']);
    assert.equal(r.code, 0);
    for (const opt of ['--fail-on', '--server', '--names', '--database', '--json']) assert.ok(r.stdout.includes(opt), opt);
    assert.ok((await vexil(['--help'])).stdout.includes('refs'), 'vexil --help lists refs');
  });
});

describe('vexil stale --refs', () => {
  test('the table lists the references under each stale flag', async () => {
    const r = await vexil(['stale', ...db(), '--refs', path.join(tree, 'src'), '--refs', staleOnly]);
    assertNoSanitizerReport(r.stderr, 'vexil stale --refs');
    assert.equal(r.code, 1, r.stderr);
    const out = r.stdout.replaceAll(tmp + '/', '');
    const block = (name) => {
      const ls = out.split('\n');
      const i = ls.findIndex((l) => l.startsWith(name + ' '));
      assert.ok(i >= 0, `a row for ${name}:\n${out}`);
      const refsOf = [];
      for (let k = i + 1; k < ls.length && ls[k].startsWith('  '); k++) refsOf.push(ls[k]);
      return refsOf;
    };
    assert.deepEqual(block('stale_flag'), ['  tree/src/app.js:3', '  tree/src/win.py:5', '  stale-only/a.ts:2']);
    assert.deepEqual(block('rolled_flag'), ['  tree/src/app.js:7']);
    assert.deepEqual(block('unused_old'), ['  (no references)']);
    assert.ok(!out.includes('live_flag') && !out.includes('gone_flag'), out);
  });

  test('--json: a references array on each stale flag', async () => {
    const r = await vexil(['stale', ...db(), '--json', '--refs', tree]);
    assert.equal(r.code, 1, r.stderr);
    const byName = Object.fromEntries(JSON.parse(r.stdout).flags.map((f) => [f.name, f.references]));
    const rel = (list) => list.map((x) => ({ ...x, path: x.path.replace(tmp + '/', '') }));
    assert.deepEqual(rel(byName.stale_flag), [{ path: 'tree/src/app.js', line: 3 }, { path: 'tree/src/win.py', line: 5 }]);
    assert.deepEqual(rel(byName.rolled_flag), [{ path: 'tree/src/app.js', line: 7 }]);
    assert.deepEqual(byName.unused_old, []);
  });

  test('without --refs there is no references field; a missing path is exit 2', async () => {
    const r = await vexil(['stale', ...db(), '--json']);
    assert.ok(JSON.parse(r.stdout).flags.every((f) => !('references' in f)));
    assertBadUse(await vexil(['stale', ...db(), '--refs', path.join(tmp, 'nope')]), 'stale --refs missing');
    assertBadUse(await vexil(['stale', ...db(), '--refs', '']), 'stale --refs empty');
  });

  test('the token used for --server is an admin one: the CLI token works as well', async () => {
    // createToken from the command line, then --server with it.
    const t = await createToken(env.db.url, 'refs-ci', 'admin');
    const r = await refs(['--server', env.server.base, '--token', t, '--fail-on', 'none', clean]);
    assert.equal(r.code, 0, r.stderr);
  });
});

// deploy/ci/vexil-refs.sh: the CI step that fails a build naming a deleted flag.
describe('deploy/ci/vexil-refs.sh', () => {
  const SCRIPT = path.join(REPO, 'deploy/ci/vexil-refs.sh');
  const ci = (args, e) => run(SCRIPT, args, {
    env: { VEXIL_BIN, VEXIL_DATABASE_URL: '', VEXIL_SERVER_URL: '', VEXIL_TOKEN: '', VEXIL_REFS_FAIL_ON: '', ...e },
  });

  test('with the database: a deleted flag fails the build, listed with the stale ones; exit 1', async () => {
    const r = await ci([tree], { VEXIL_DATABASE_URL: env.db.url });
    assert.equal(r.code, 1, r.stderr);
    const out = r.stdout.replaceAll(tmp + '/', '');
    assert.ok(out.startsWith('Deleted flags the code still names (they evaluate to off):\n' +
      'tree/src/app.js:4: gone_flag (unknown: not a flag)\ntree/src/win.py:2: gone_flag (unknown: not a flag)\n'), out);
    assert.match(out, /Flags due for removal .*\n(tree\/src\/\S+ (stale|rolled)_flag \(stale: .*\)\n){3}/);
    assert.match(out, /vexil-refs: 8 references to flags in the code: 2 to deleted flags, 3 to flags due for removal/);
    assert.match(out, /failing the build/);
  });

  test('clean code passes (exit 0), the current directory by default', async () => {
    const r = await run('bash', ['-c', 'cd "$1" && exec "$2"', 'bash', clean, SCRIPT],
      { env: { VEXIL_BIN, VEXIL_DATABASE_URL: env.db.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 references to flags in the code: 0 to deleted flags, 0 to flags due for removal/);
    assert.ok(!r.stdout.includes('failing'));
  });

  test('with a server and VEXIL_REFS_FAIL_ON=stale: stale flags fail the build', async () => {
    const r = await ci([staleOnly], { VEXIL_SERVER_URL: env.server.base, VEXIL_TOKEN: env.adminToken, VEXIL_REFS_FAIL_ON: 'stale' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /stale-only\/a\.ts:2: stale_flag \(stale: older_than_30_days\)/);
    const pass = await ci([staleOnly], { VEXIL_SERVER_URL: env.server.base, VEXIL_TOKEN: env.adminToken });
    assert.equal(pass.code, 0, 'stale references alone do not fail by default');
    assert.match(pass.stderr, /deleted flags are not seen/, 'the note on what a server cannot see');
  });

  test('bad settings and a failing vexil: exit 2', async () => {
    assert.equal((await ci([clean], {})).code, 2, 'no source');
    assert.equal((await ci([clean], { VEXIL_SERVER_URL: env.server.base })).code, 2, 'server without token');
    assert.equal((await ci([clean], { VEXIL_DATABASE_URL: env.db.url, VEXIL_REFS_FAIL_ON: 'sometimes' })).code, 2);
    const r = await ci([path.join(tmp, 'nope')], { VEXIL_DATABASE_URL: env.db.url });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /No such file/);
    assert.equal((await ci(['--help'], {})).code, 0);
  });
});
