// docs/operations.md §1 and docs/decisions.md "Command line": version, help, bad use, migrate,
// tokens from the command line, stale; `serve` migrates by itself.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import {
  SECRET, Server, VEXIL_BIN, assertNoSanitizerReport, createDatabase, createToken, freePort, migrate,
  projectVersion, psql, sleep, vexil,
} from './lib/harness.mjs';

let db;
before(async () => {
  db = await createDatabase();
});
after(async () => {
  await db?.drop();
});

/** Assert exit 2 with exactly one line on stderr. */
function assertBadUse(r, what) {
  assert.equal(r.code, 2, `${what}: exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assertNoSanitizerReport(r.stderr, what);
}

describe('version and help', () => {
  test('vexil version prints the project version and exits 0', async () => {
    const r = await vexil(['version']);
    assert.equal(r.code, 0, r.stderr);
    const v = projectVersion();
    assert.ok(v, 'version found in meson.build');
    assert.ok(r.stdout.includes(v), `stdout ${JSON.stringify(r.stdout)} mentions ${v}`);
  });

  test('vexil --help lists every command on stdout and exits 0', async () => {
    const r = await vexil(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['serve', 'migrate', 'stale', 'refs', 'token', 'version']) {
      assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`), `--help mentions ${cmd}`);
    }
  });

  for (const args of [
    ['serve', '--help'], ['migrate', '--help'], ['stale', '--help'], ['refs', '--help'], ['token', '--help'],
    ['token', 'create', '--help'], ['token', 'list', '--help'], ['token', 'revoke', '--help'],
    ['version', '--help'],
  ]) {
    test(`vexil ${args.join(' ')} prints usage on stdout and exits 0`, async () => {
      const r = await vexil(args);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.trim().length > 0, 'usage printed on stdout');
      assertNoSanitizerReport(r.stderr);
    });
  }

  test('serve --help names its options', async () => {
    const r = await vexil(['serve', '--help']);
    for (const opt of ['--listen', '--database', '--web']) assert.ok(r.stdout.includes(opt), opt);
  });
});

describe('bad use exits 2 with one line on stderr', () => {
  const cases = [
    ['no command', []],
    ['unknown command', ['frobnicate']],
    ['unknown option of serve', ['serve', '--no-such-option']],
    ['--listen without value', ['serve', '--listen']],
    ['--listen not host:port', ['serve', '--listen', 'nonsense', '--database', 'DB']],
    ['token without subcommand', ['token']],
    ['unknown token subcommand', ['token', 'frob']],
    ['token create without --name', ['token', 'create', '--role', 'admin', '--database', 'DB']],
    ['token create without --role', ['token', 'create', '--name', 'x', '--database', 'DB']],
    ['token create with a bad role', ['token', 'create', '--name', 'x', '--role', 'root', '--database', 'DB']],
    ['token revoke without id', ['token', 'revoke', '--database', 'DB']],
    ['stale --days not a number', ['stale', '--days', 'abc', '--database', 'DB']],
    ['stale --rolled-out-days negative', ['stale', '--rolled-out-days', '-1', '--database', 'DB']],
    ['migrate unknown option', ['migrate', '--frob', '--database', 'DB']],
  ];
  for (const [what, args] of cases) {
    test(what, async () => {
      const r = await vexil(args.map((a) => (a === 'DB' ? db.url : a)));
      assertBadUse(r, `vexil ${args.join(' ')}`);
    });
  }

  test('bad use writes nothing to the database', async () => {
    const r = await vexil(['token', 'create', '--name', 'x', '--role', 'root', '--database', db.url]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '', 'no secret printed on bad use');
  });
});

describe('migrate and tokens on the command line', () => {
  test('migrate is idempotent', async () => {
    await migrate(db.url);
    await migrate(db.url);
  });

  test('migrate is safe from several processes at once', async () => {
    const other = await createDatabase();
    try {
      const rs = await Promise.all([1, 2, 3, 4].map(() => vexil(['migrate', '--database', other.url])));
      for (const r of rs) assert.equal(r.code, 0, r.stderr);
      // and the result is usable
      await createToken(other.url, 'after-concurrent-migrate', 'client');
    } finally {
      await other.drop();
    }
  });

  test('migrate against an unreachable database fails with a non-zero status, not bad use', async () => {
    const r = await vexil(['migrate', '--database', 'postgresql://postgres@127.0.0.1:1/none?connect_timeout=2']);
    assert.notEqual(r.code, 0);
    assert.notEqual(r.code, null, 'exited, not killed');
    assertNoSanitizerReport(r.stderr);
  });

  let secret;
  let id;
  test('token create prints the secret alone on stdout and a note with the id on stderr', async () => {
    const r = await vexil(['token', 'create', '--name', 'cli-admin', '--role', 'admin', '--database', db.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, 'one line on stdout');
    secret = r.stdout.trim();
    assert.match(secret, SECRET);
    assert.ok(r.stderr.trim().length > 0, 'a note on stderr');
    assert.ok(!r.stderr.includes(secret), 'the secret is not repeated on stderr');
  });

  test('two tokens never share a secret', async () => {
    const a = await createToken(db.url, 'cli-c1', 'client');
    const b = await createToken(db.url, 'cli-c2', 'client');
    assert.notEqual(a, b);
    assert.notEqual(a, secret);
  });

  test('token list shows names and roles but no secret', async () => {
    const r = await vexil(['token', 'list', '--database', db.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes('cli-admin'), r.stdout);
    assert.ok(!r.stdout.includes(secret), 'no secret in token list');
    assert.ok(!r.stdout.includes(secret.slice(3)), 'no secret in token list');
  });

  test('token list --json gives id, name and role', async () => {
    const r = await vexil(['token', 'list', '--json', '--database', db.url]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const list = Array.isArray(j) ? j : j.tokens;
    assert.ok(Array.isArray(list), `a list of tokens: ${r.stdout}`);
    const t = list.find((x) => x.name === 'cli-admin');
    assert.ok(t, 'cli-admin listed');
    assert.equal(t.role, 'admin');
    assert.ok(t.id !== undefined && t.id !== null, 'id present');
    assert.ok(!r.stdout.includes(secret.slice(3)), 'no secret in token list --json');
    id = t.id;
  });

  // docs/decisions.md "Text for people".  `token create` refuses control
  // characters in a name; one written straight into the database (a hand
  // edit) is still shown escaped, never as it is.
  test('token list shows control characters in a name escaped; --json gives it back exactly', async () => {
    await psql(db.url, `INSERT INTO tokens (id, name, role, secret_hash, environment) VALUES
      (gen_random_uuid(), E'ctl\\x1b[2J\\r\\nname\\u009b\\x7f', 'client', sha256('ctl-token'::bytea), 'production')`);
    const r = await vexil(['token', 'list', '--database', db.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(r.stdout), `a control character: ${JSON.stringify(r.stdout)}`);
    const lines = r.stdout.split('\n');
    const row = lines.find((l) => l.includes('ctl\\x1b[2J\\r\\nname\\u009b\\x7f'));
    assert.ok(row, `the name escaped:\n${r.stdout}`);
    const header = lines[0];
    assert.equal(row.indexOf('client'), header.indexOf('ROLE'), `the columns line up:\n${r.stdout}`);
    const j = await vexil(['token', 'list', '--json', '--database', db.url]);
    assert.equal(j.code, 0, j.stderr);
    assert.ok(!/[\u007f-\u009f]/.test(j.stdout), `DEL and C1 escaped in the JSON too: ${JSON.stringify(j.stdout)}`);
    assert.ok(JSON.parse(j.stdout).tokens.some((t) => t.name === 'ctl\u001b[2J\r\nname\u009b\u007f'), j.stdout);
    await psql(db.url, "DELETE FROM tokens WHERE name LIKE 'ctl%'");
  });

  test('token revoke stops the token working on a running server within a second', async () => {
    const server = new Server(db.url);
    await server.start();
    try {
      const c = server.client(secret);
      assert.equal((await c.get('/api/flags')).status, 200, 'works before revoke');
      const r = await vexil(['token', 'revoke', String(id), '--database', db.url]);
      assert.equal(r.code, 0, r.stderr);
      const t0 = Date.now();
      let status;
      while (Date.now() - t0 < 1500) {
        status = (await c.get('/api/flags')).status;
        if (status === 401) break;
        await sleep(50);
      }
      assert.equal(status, 401, 'revoked token refused');
    } finally {
      await server.stop();
    }
  });

  test('token revoke of an unknown id fails', async () => {
    const r = await vexil(['token', 'revoke', '999999999', '--database', db.url]);
    assert.notEqual(r.code, 0);
    assertNoSanitizerReport(r.stderr);
  });
});

describe('stale on the command line', () => {
  test('no stale flags: exit 0; --json gives an empty list', async () => {
    const r = await vexil(['stale', '--database', db.url]);
    assert.equal(r.code, 0, r.stderr);
    const j = await vexil(['stale', '--json', '--database', db.url]);
    assert.equal(j.code, 0, j.stderr);
    const parsed = JSON.parse(j.stdout);
    const list = Array.isArray(parsed) ? parsed : parsed.flags;
    assert.deepEqual(list, []);
  });

  test('a flag older than --days 0: exit 1, listed with its owner', async () => {
    const server = new Server(db.url);
    await server.start();
    try {
      // A token made with the CLI while the server runs is known to it within a second.
      const admin = server.client(await createToken(db.url, 'cli-stale', 'admin'));
      let r0;
      for (const t0 = Date.now(); Date.now() - t0 < 1000;) {
        r0 = await admin.post('/api/flags', { name: 'cli_old_flag', owner: 'team-cli' });
        if (r0.status !== 401) break;
        await sleep(50);
      }
      assert.equal(r0.status, 201, r0.text);
    } finally {
      await server.stop();
    }
    await sleep(5);
    const r = await vexil(['stale', '--days', '0', '--database', db.url]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stdout.includes('cli_old_flag'), r.stdout);
    assert.ok(r.stdout.includes('team-cli'), r.stdout);
    const j = await vexil(['stale', '--days', '0', '--json', '--database', db.url]);
    assert.equal(j.code, 1, j.stderr);
    const parsed = JSON.parse(j.stdout);
    const list = Array.isArray(parsed) ? parsed : parsed.flags;
    const f = list.find((x) => x.name === 'cli_old_flag');
    assert.ok(f, j.stdout);
    assert.equal(f.owner, 'team-cli');
    assert.deepEqual(f.stale, ['older_than_0_days']);
    const none = await vexil(['stale', '--database', db.url]);
    assert.equal(none.code, 0, 'with the default 30 days nothing is stale');
  });

  test('stale against an unreachable database exits 2', async () => {
    const r = await vexil(['stale', '--database', 'postgresql://postgres@127.0.0.1:1/none?connect_timeout=2']);
    assert.equal(r.code, 2, r.stderr);
  });
});

describe('serve', () => {
  test('serve migrates a fresh database by itself and becomes ready at version 0', async () => {
    const fresh = await createDatabase();
    const server = new Server(fresh.url);
    try {
      await server.start();
      const r = await server.client(null).get('/readyz');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { status: 'ready', database: 'up', version: 0 });
      const ms = await server.stop();
      assert.ok(ms < 5000, `SIGTERM to exit took ${ms} ms`);
    } finally {
      await server.kill();
      await fresh.drop();
    }
  });

  test('serve takes its settings from the environment', async () => {
    const fresh = await createDatabase();
    await migrate(fresh.url);
    const port = await freePort();
    const child = spawn(VEXIL_BIN, ['serve'], {
      env: { ...process.env, VEXIL_LISTEN: `127.0.0.1:${port}`, VEXIL_DATABASE_URL: fresh.url },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((r) => child.on('close', (code) => r(code)));
    try {
      let ok = false;
      for (let i = 0; i < 300 && !ok; i++) {
        try {
          ok = (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
        } catch { /* not yet */ }
        if (!ok) await sleep(50);
      }
      assert.ok(ok, `ready on VEXIL_LISTEN: ${stderr}`);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assertNoSanitizerReport(stderr);
      await fresh.drop();
    }
  });
});
