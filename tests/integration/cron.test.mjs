// deploy/cron/vexil-stale.sh (docs/operations.md §3, issue "Keep flag debt down"): the
// daily cron job that tells every owner which of their flags are due for
// removal.  It runs against a real vexil database with aged flags; mail goes
// to a stand-in `sendmail` (a small script that stores each message it is
// given on stdin, the way the real one would hand it on), and the webhook to
// an HTTP server on 127.0.0.1 in this process.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { assertNoControls, REPO, VEXIL_BIN, createFlag, psql, run, startEnv } from './lib/harness.mjs';

const SCRIPT = path.join(REPO, 'deploy/cron/vexil-stale.sh');

let env;
let tmp;
let mailDir;
let binDir;
let hook; // {server, url, posts: [{path, headers, body}]}

// Flags: owner and how old (created / rolled out), and whether stale under
// the defaults (30 / 14).
const FLAGS = {
  a_old: { owner: 'alice', created: '40 days', stale: true },
  a_rolled: { owner: 'alice', enabled: true, percentage: 100, created: '20 days', rolled: '20 days', stale: true },
  a_new: { owner: 'alice', stale: false },
  b_old: { owner: 'bob', created: '35 days', stale: true },
  b_half: { owner: 'bob', enabled: true, percentage: 50, created: '10 days', stale: false },
  c_old: { owner: 'carol smith', created: '31 days', stale: true },
  z_old: { owner: 'zoë', created: '32 days', stale: true },
  d_old: { owner: 'dave', created: '33 days', stale: true },
  n_old: { owner: '', created: '34 days', stale: true },
};
const staleOf = (owner) => Object.entries(FLAGS).filter(([, f]) => f.owner === owner && f.stale).map(([n]) => n).sort();

const OWNERS = `# test owners file
alice        alice@example.test

bob          bob@example.test,bob-pm@example.test
  carol smith    carol@example.test
zoë          zoe@example.test
# dave has no line
`;

before(async () => {
  for (const tool of ['jq', 'curl', 'base64']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`${tool} is needed by deploy/cron/vexil-stale.sh and its test: apt-get install ${tool}`);
    }
  }
  env = await startEnv();
  for (const [name, f] of Object.entries(FLAGS)) {
    await createFlag(env.admin, { name, owner: f.owner, enabled: !!f.enabled, percentage: f.percentage ?? 0 });
    const sets = [];
    if (f.created) sets.push(`created_at = now() - interval '${f.created}'`);
    if (sets.length) await psql(env.db.url, `UPDATE flags SET ${sets.join(', ')} WHERE name = '${name}'`);
    if (f.rolled) {
      await psql(env.db.url, `UPDATE flag_states SET rolled_out_at = now() - interval '${f.rolled}' ` +
        `WHERE flag = '${name}' AND environment = 'production'`);
    }
  }
  tmp = mkdtempSync(path.join(os.tmpdir(), 'vexil-cron-'));
  binDir = path.join(tmp, 'bin');
  mailDir = path.join(tmp, 'mail');
  mkdirSync(binDir);
  mkdirSync(mailDir);
  // The stand-in sendmail: one file per message (stdin) and its arguments.
  writeFileSync(path.join(binDir, 'sendmail'), `#!/bin/sh
f=$(mktemp "$FAKE_MAIL_DIR/msg.XXXXXX") || exit 75
printf '%s\\n' "$*" > "$f.args"
cat > "$f"
`);
  chmodSync(path.join(binDir, 'sendmail'), 0o755);
  writeFileSync(path.join(tmp, 'owners'), OWNERS);

  const posts = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      posts.push({ path: req.url, method: req.method, headers: req.headers, body });
      res.statusCode = req.url.startsWith('/fail') ? 500 : 204;
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  hook = { server, posts, url: `http://127.0.0.1:${server.address().port}` };
});

after(async () => {
  hook?.server.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await env?.close();
});

beforeEach(() => {
  for (const f of readdirSync(mailDir)) rmSync(path.join(mailDir, f));
  if (hook) hook.posts.length = 0;
});

/** Run the cron script with a clean environment of our choosing. */
function cron(args = [], extraEnv = {}) {
  const e = {
    PATH: `${binDir}:${process.env.PATH}`,
    VEXIL_BIN,
    VEXIL_DATABASE_URL: env.db.url,
    VEXIL_STALE_OWNERS: path.join(tmp, 'owners'),
    VEXIL_STALE_FROM: 'vexil@test.example',
    FAKE_MAIL_DIR: mailDir,
    VEXIL_STALE_WEBHOOK: '',
    VEXIL_STALE_SENDMAIL: '',
    ...extraEnv,
  };
  return run(SCRIPT, args, { env: e, timeout: 60000 });
}

/** The messages sendmail was given: [{args, headers: {lowercase: value}, body, raw}]. */
function mails() {
  return readdirSync(mailDir).filter((f) => !f.endsWith('.args')).map((f) => {
    const raw = readFileSync(path.join(mailDir, f), 'utf8');
    const args = readFileSync(path.join(mailDir, f + '.args'), 'utf8').trim();
    const cut = raw.indexOf('\n\n');
    assert.ok(cut > 0, `a message without a header/body split:\n${raw}`);
    const headers = {};
    for (const l of raw.slice(0, cut).split('\n')) {
      const i = l.indexOf(':');
      assert.ok(i > 0, `a bad header line: ${JSON.stringify(l)}`);
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    return { args, headers, body: raw.slice(cut + 2), raw };
  });
}

/** Flag names mentioned in text, among FLAGS. */
const named = (text) => Object.keys(FLAGS).filter((n) => new RegExp(`(^|\\W)${n}(\\W|$)`).test(text)).sort();

function decodeSubject(s) {
  const m = s.match(/^=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=$/i);
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : s;
}

describe('vexil-stale.sh', () => {
  test('mails each owner with an address their own stale flags, through sendmail -t; exit 1', async () => {
    const r = await cron();
    assert.equal(r.code, 1, `exit status with stale flags; stderr: ${r.stderr}`);
    const got = mails();
    const byTo = Object.fromEntries(got.map((m) => [m.headers.to, m]));
    assert.deepEqual(Object.keys(byTo).sort(),
      ['alice@example.test', 'bob@example.test, bob-pm@example.test', 'carol@example.test', 'zoe@example.test'],
      'one mail per owner with an address');
    const expect = {
      'alice@example.test': 'alice',
      'bob@example.test, bob-pm@example.test': 'bob',
      'carol@example.test': 'carol smith',
      'zoe@example.test': 'zoë',
    };
    for (const [to, owner] of Object.entries(expect)) {
      const m = byTo[to];
      assert.match(m.args, /(^|\s)-t(\s|$)/, `sendmail called with -t: ${m.args}`);
      assert.equal(m.headers.from, 'vexil@test.example');
      assert.match(m.headers['content-type'] || '', /text\/plain; charset=UTF-8/i);
      const subject = decodeSubject(m.headers.subject || '');
      assert.ok(subject.includes(owner), `subject names the owner ${owner}: ${subject}`);
      assert.ok(subject.includes(String(staleOf(owner).length)), `subject counts the flags: ${subject}`);
      assert.deepEqual(named(m.body), staleOf(owner), `${owner}'s mail lists exactly their stale flags:\n${m.body}`);
      for (const name of staleOf(owner)) {
        const line = m.body.split('\n').find((l) => l.includes(name));
        for (const reason of name === 'a_rolled' ? ['rolled_out_14_days'] : ['older_than_30_days']) {
          assert.ok(line.includes(reason), `reason ${reason} for ${name}: ${line}`);
        }
      }
    }
    assert.match(byTo['alice@example.test'].body, /a_old\s+40 days/, 'the age is shown');
    // Owners without an address reach cron's MAILTO through stdout.
    assert.deepEqual(named(r.stdout), ['d_old', 'n_old'], `stdout:\n${r.stdout}`);
    assert.ok(r.stdout.includes('dave'));
  });

  test('with VEXIL_STALE_WEBHOOK: one JSON POST per owner with their flags, mail as well', async () => {
    const r = await cron([], { VEXIL_STALE_WEBHOOK: `${hook.url}/hook` });
    assert.equal(r.code, 1, r.stderr);
    const owners = ['', 'alice', 'bob', 'carol smith', 'dave', 'zoë'];
    assert.equal(hook.posts.length, owners.length, `posts: ${hook.posts.map((p) => p.body).join('\n')}`);
    const byOwner = {};
    for (const p of hook.posts) {
      assert.equal(p.method, 'POST');
      assert.equal(p.path, '/hook');
      assert.match(p.headers['content-type'] || '', /^application\/json/);
      const j = JSON.parse(p.body);
      assert.ok(!(j.owner in byOwner), `two posts for ${j.owner}`);
      byOwner[j.owner] = j;
    }
    assert.deepEqual(Object.keys(byOwner).sort(), owners);
    for (const o of owners) {
      const j = byOwner[o];
      assert.deepEqual(j.flags.map((f) => f.name).sort(), staleOf(o), `${o}'s flags`);
      assert.equal(j.count, staleOf(o).length);
      for (const f of j.flags) {
        assert.equal(f.owner, o);
        assert.ok(Array.isArray(f.stale) && f.stale.length > 0, `${f.name}.stale`);
        assert.ok(Number.isInteger(f.age_days));
      }
      assert.equal(typeof j.text, 'string');
      assert.deepEqual(named(j.text), staleOf(o), `text for ${o}: ${j.text}`);
    }
    assert.deepEqual(byOwner.bob.addresses, ['bob@example.test', 'bob-pm@example.test']);
    assert.deepEqual(byOwner.dave.addresses, []);
    assert.equal(mails().length, 4, 'mail goes out too');
    assert.equal(r.stdout, '', 'everyone was reached: nothing for MAILTO');
  });

  test("'*' in the owners file catches owners without a line, and flags without an owner", async () => {
    const file = path.join(tmp, 'owners-star');
    writeFileSync(file, `${OWNERS}*   cleanup@example.test\n`);
    const r = await cron([], { VEXIL_STALE_OWNERS: file });
    assert.equal(r.code, 1, r.stderr);
    const catchAll = mails().filter((m) => m.headers.to === 'cleanup@example.test');
    assert.equal(catchAll.length, 2, 'dave and the owner-less flags, one mail each');
    assert.deepEqual(catchAll.map((m) => named(m.body)).sort(), [['d_old'], ['n_old']]);
    assert.equal(mails().length, 6);
    assert.equal(r.stdout, '');
  });

  test('thresholds are passed on to vexil stale', async () => {
    const r = await cron(['--days', '36', '--rolled-out-days', '100']);
    assert.equal(r.code, 1, r.stderr);
    const got = mails();
    assert.equal(got.length, 1, 'only a_old (40 days) is older than 36 days');
    assert.equal(got[0].headers.to, 'alice@example.test');
    assert.deepEqual(named(got[0].body), ['a_old']);
    assert.ok(got[0].body.includes('older_than_36_days'));
    assert.equal(r.stdout, '');
  });

  test('nothing stale: exit 0, no mail, no post, no output', async () => {
    const r = await cron(['--days', '100000', '--rolled-out-days', '100000'], { VEXIL_STALE_WEBHOOK: `${hook.url}/hook` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mails().length, 0);
    assert.equal(hook.posts.length, 0);
    assert.equal(r.stdout, '');
  });

  test('an unreachable database: exit 2, nothing sent', async () => {
    const r = await cron([], {
      VEXIL_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none?connect_timeout=2',
      VEXIL_STALE_WEBHOOK: `${hook.url}/hook`,
    });
    assert.equal(r.code, 2, `stdout ${r.stdout} stderr ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'says why');
    assert.equal(mails().length, 0);
    assert.equal(hook.posts.length, 0);
  });

  test('bad use of vexil stale (a bad option) is exit 2', async () => {
    const r = await cron(['--days', 'soon']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(mails().length, 0);
  });

  test('a failing webhook: exit 2, the mails still go out', async () => {
    const r = await cron([], { VEXIL_STALE_WEBHOOK: `${hook.url}/fail`, VEXIL_STALE_RETRIES: '0' });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(hook.posts.length, 6, 'every owner was tried, once (no retries asked for)');
    assert.equal(mails().length, 4);
    assert.match(r.stderr, /webhook/i);
  });

  test('no sendmail: the lists come out on stdout for cron to mail; exit 1', async () => {
    const r = await cron([], { VEXIL_STALE_SENDMAIL: path.join(tmp, 'no-such-sendmail') });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(mails().length, 0);
    assert.deepEqual(named(r.stdout), Object.keys(FLAGS).filter((n) => FLAGS[n].stale).sort(), r.stdout);
    assert.match(r.stderr, /sendmail/);
  });

  test('a broken owners file: exit 2 naming the line, nothing sent', async () => {
    const file = path.join(tmp, 'owners-bad');
    writeFileSync(file, 'alice alice@example.test\nbob\n');
    const r = await cron([], { VEXIL_STALE_OWNERS: file });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /owners-bad:2/);
    assert.equal(mails().length, 0);
    const missing = await cron([], { VEXIL_STALE_OWNERS: path.join(tmp, 'does-not-exist') });
    assert.equal(missing.code, 2, 'a named owners file that is missing is an error');
  });

  test('retries a failing webhook VEXIL_STALE_RETRIES times', async () => {
    const r = await cron(['--owner', 'bob'], { VEXIL_STALE_WEBHOOK: `${hook.url}/fail`, VEXIL_STALE_RETRIES: '1' });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(hook.posts.length, 2, 'bob\'s list: one attempt and one retry');
  });

  test('with VEXIL_STALE_REFS or --refs: each flag is followed by the lines of the code that name it', async () => {
    const esc = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const code = path.join(tmp, 'code');
    const code2 = path.join(tmp, 'code2');
    mkdirSync(path.join(code, 'web'), { recursive: true });
    mkdirSync(code2, { recursive: true });
    writeFileSync(path.join(code, 'web', 'page.js'), "x\nif (on('a_old')) {}\nif (on(\"b_old\")) {}\n");
    writeFileSync(path.join(code2, 'svc.go'), 'var f = "a_old"\n');
    const r = await cron([], { VEXIL_STALE_REFS: `${code}:${code2}`, VEXIL_STALE_WEBHOOK: `${hook.url}/hook` });
    assert.equal(r.code, 1, r.stderr);
    const byTo = Object.fromEntries(mails().map((m) => [m.headers.to, m]));
    const alice = byTo['alice@example.test'].body;
    assert.match(alice, new RegExp(`^  a_old .*\\n {6}${esc(code)}/web/page\\.js:2\\n {6}${esc(code2)}/svc\\.go:1$`, 'm'),
      `a_old's references under it:\n${alice}`);
    assert.match(alice, /^ {2}a_rolled .*\n {6}\(no references in the code\)$/m, alice);
    assert.match(alice, /Under each flag: the lines of the code that still name it/);
    assert.deepEqual(named(alice), staleOf('alice'), 'still exactly her flags');
    const bob = byTo['bob@example.test, bob-pm@example.test'].body;
    assert.match(bob, new RegExp(`^  b_old .*\\n {6}${esc(code)}/web/page\\.js:3$`, 'm'), bob);
    // The webhook's flags carry the references, and its text shows them.
    const hookAlice = hook.posts.map((p) => JSON.parse(p.body)).find((j) => j.owner === 'alice');
    const aOld = hookAlice.flags.find((f) => f.name === 'a_old');
    assert.deepEqual(aOld.references, [{ path: `${code}/web/page.js`, line: 2 }, { path: `${code2}/svc.go`, line: 1 }]);
    assert.ok(hookAlice.text.includes(`${code}/web/page.js:2`), hookAlice.text);

    // --refs passes through to vexil stale like any of its options.
    for (const f of readdirSync(mailDir)) rmSync(path.join(mailDir, f));
    const byArg = await cron(['--refs', code2]);
    assert.equal(byArg.code, 1, byArg.stderr);
    const alice2 = mails().find((m) => m.headers.to === 'alice@example.test' && m.body.includes('svc.go')).body;
    assert.ok(!alice2.includes('page.js'), alice2);
    // Without either: no references and no word about them.
    for (const f of readdirSync(mailDir)) rmSync(path.join(mailDir, f));
    const plain = await cron();
    assert.equal(plain.code, 1, plain.stderr);
    for (const m of mails()) assert.ok(!m.body.includes('Under each flag') && !m.body.includes('no references'), m.body);
    // A path that does not exist is an error: nothing is sent.
    for (const f of readdirSync(mailDir)) rmSync(path.join(mailDir, f));
    const bad = await cron([], { VEXIL_STALE_REFS: path.join(tmp, 'no-such-code') });
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(mails().length, 0);
  });

  test('--help prints usage and exits 0', async () => {
    const r = await cron(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: vexil-stale\.sh/);
  });
});

// docs/decisions.md "Text for people": an owner is free text from the API, so
// it may hold CR LF and terminal controls.  They must not start a mail
// header, nor reach a mail, a webhook's text or cron's stdout as they are.
describe('vexil-stale.sh: control characters in an owner', () => {
  // Ends in LF too: the owner must still be matched to its flag.
  const EVIL = 'mallory\r\nBcc: evil@example.com\r\nX-Evil: 1\u001b[31m\u009b2J\u007f\u202e\n';
  const SHOWN = 'mallory\\r\\nBcc: evil@example.com\\r\\nX-Evil: 1\\x1b[31m\\u009b2J\\x7f\\u202e\\n';
  // Not stale under any threshold the tests above use; stale at --days 3.
  const args = ['--owner', EVIL, '--days', '3'];
  let starFile;

  before(async () => {
    await createFlag(env.admin, { name: 'evil_flag', owner: EVIL, description: 'd\r\n\u001b]0;x\u0007' });
    await psql(env.db.url, "UPDATE flags SET created_at = now() - interval '5 days' WHERE name = 'evil_flag'");
    starFile = path.join(tmp, 'owners-evil');
    writeFileSync(starFile, `${OWNERS}*   cleanup@example.test\n`);
  });


  test('the mail: no header added through the owner, no raw control character anywhere', async () => {
    const r = await cron(args, { VEXIL_STALE_OWNERS: starFile });
    assert.equal(r.code, 1, r.stderr);
    const got = mails();
    assert.equal(got.length, 1, `one mail, to the '*' address: ${got.map((m) => m.raw).join('\n----\n')}`);
    const m = got[0];
    assert.match(m.args, /^-t -oi$/, 'sendmail gets -t -oi and nothing from the data');
    assert.deepEqual(Object.keys(m.headers).sort(),
      ['auto-submitted', 'content-transfer-encoding', 'content-type', 'from', 'mime-version', 'subject', 'to'],
      `only the script's own headers:\n${m.raw}`);
    assert.equal(m.headers.to, 'cleanup@example.test');
    for (const f of readdirSync(mailDir).filter((x) => !x.endsWith('.args'))) {
      assertNoControls(readFileSync(path.join(mailDir, f)), 'the mail');
    }
    const subject = decodeSubject(m.headers.subject);
    assert.ok(subject.includes('mallory\\r\\nBcc: evil@example.com'), `the owner escaped in the subject: ${subject}`);
    assert.ok(subject.includes('1 flag'), subject);
    assert.ok(m.body.includes(`Hello ${SHOWN},`), `the owner escaped in the greeting:\n${m.body}`);
    assert.match(m.body, /^ {2}evil_flag\s+5 days old\s+older_than_3_days$/m, `the flag is listed:\n${m.body}`);
    assert.ok(!/^bcc:/im.test(m.raw), 'no line starts with Bcc:');
  });

  test('the webhook: the text is escaped too; the owner field is the exact owner', async () => {
    const r = await cron(args, { VEXIL_STALE_WEBHOOK: `${hook.url}/hook` });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(hook.posts.length, 1);
    const j = JSON.parse(hook.posts[0].body);
    assert.equal(j.owner, EVIL);
    assert.deepEqual(j.flags.map((f) => f.name), ['evil_flag']);
    assert.ok(j.text.includes(SHOWN), j.text);
    assertNoControls(Buffer.from(j.text.replace(/\n/g, ' ')), 'the webhook text');
  });

  test("what reaches nobody goes to cron's stdout, escaped", async () => {
    const r = await cron(args);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(mails().length, 0);
    assert.ok(r.stdout.includes(`${SHOWN}:`), r.stdout);
    assert.ok(r.stdout.includes('evil_flag'), r.stdout);
    assertNoControls(Buffer.from(r.stdout), 'stdout');
    assertNoControls(Buffer.from(r.stderr), 'stderr');
  });
});
