// docs/api.md §2 (client API, without long-poll holds) and §3 (evaluation through HTTP).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, assertError, bucket, createFlag, currentVersion, evaluate, startEnv,
} from './lib/harness.mjs';

let env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

const FLAG_KEYS = ['created_at', 'description', 'enabled', 'name', 'owner', 'percentage', 'revision',
  'rolled_out_at', 'segments', 'updated_at', 'users'].sort();

// Flags for the evaluation tests: docs/evaluation.md's vectors sit right at the edge.
const FLAGS = [
  { name: 'new_order_flow', enabled: true, percentage: 55 }, // alice 58 off, bob 53 on
  { name: 'new_ui', enabled: true, percentage: 48 }, // user-1 48 on (<=), user-2 2 on
  { name: 'premium_features', enabled: true, percentage: 38 }, // "42" is 39: off
  { name: 'checkout.v2', enabled: true, percentage: 16 }, // ü-user 16: on
  { name: 'Feature.flexibleRollout.10', enabled: true, percentage: 10 }, // 174 → 10 on, 499 → 32 off
  { name: 'killed', enabled: false, percentage: 100, users: ['alice'] }, // kill switch wins
  { name: 'vip_only', enabled: true, percentage: 0, users: ['alice', 'ü-user'] },
  { name: 'everyone', enabled: true, percentage: 100 },
  { name: 'nobody', enabled: true, percentage: 0 },
  { name: 'Zeta-upper', enabled: false },
  { name: 'alpha', enabled: false },
];
const model = {};

describe('empty flag set', () => {
  test('GET /flags on a fresh database: version 0, no flags, ETag "0"', async () => {
    const r = await env.client.get('/flags');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { version: 0, flags: [] });
    assert.equal(r.headers.get('etag'), '"0"');
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
  });

  test('GET /flags?user= on a fresh database', async () => {
    const r = await env.client.get('/flags?user=alice');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { version: 0, user: 'alice', flags: {} });
    assert.equal(r.headers.get('etag'), '"0"');
  });
});

describe('GET /flags', () => {
  before(async () => {
    for (const f of FLAGS) model[f.name] = await createFlag(env.admin, f);
  });

  test('lists every flag, sorted by name (byte order), with the version and ETag', async () => {
    const r = await env.client.get('/flags');
    assert.equal(r.status, 200);
    assert.equal(r.json.version, FLAGS.length, 'one version per create');
    assert.equal(r.headers.get('etag'), `"${FLAGS.length}"`);
    const names = r.json.flags.map((f) => f.name);
    const sorted = FLAGS.map((f) => f.name).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
    assert.deepEqual(names, sorted);
    assert.deepEqual(Object.keys(r.json).sort(), ['flags', 'version']);
  });

  test('each flag is the whole flag object of docs/api.md §1, without admin-only fields', async () => {
    const r = await env.client.get('/flags');
    for (const f of r.json.flags) {
      assert.deepEqual(Object.keys(f).sort(), FLAG_KEYS, `keys of ${f.name}`);
      const m = model[f.name];
      for (const k of FLAG_KEYS) assert.deepEqual(f[k], m[k], `${f.name}.${k} as created`);
      assert.match(f.created_at, RFC3339_MS);
      assert.match(f.updated_at, RFC3339_MS);
    }
    const killed = r.json.flags.find((f) => f.name === 'killed');
    assert.deepEqual(killed.users, ['alice']);
    assert.equal(killed.enabled, false);
    assert.equal(killed.rolled_out_at, null);
    const everyone = r.json.flags.find((f) => f.name === 'everyone');
    assert.match(everyone.rolled_out_at, RFC3339_MS);
  });

  test('admin tokens read the same answer', async () => {
    const a = await env.admin.get('/flags');
    const c = await env.client.get('/flags');
    assert.equal(a.text, c.text);
  });

  test('unknown query parameters are ignored', async () => {
    const a = await env.client.get('/flags?foo=bar');
    assert.equal(a.status, 200);
    assert.equal(a.json.flags.length, FLAGS.length);
  });
});

describe('conditional GET', () => {
  test('If-None-Match equal to the version: 304 with no body', async () => {
    const v = await currentVersion(env.client);
    const r = await env.client.get('/flags', { headers: { 'If-None-Match': `"${v}"` } });
    assert.equal(r.status, 304);
    assert.equal(r.text, '');
    assert.equal(r.headers.get('etag'), `"${v}"`, '304 repeats the ETag');
  });

  test('If-None-Match equal to the version with ?user=: 304', async () => {
    const v = await currentVersion(env.client);
    const r = await env.client.get('/flags?user=alice', { headers: { 'If-None-Match': `"${v}"` } });
    assert.equal(r.status, 304);
    assert.equal(r.text, '');
  });

  test('If-None-Match with an older or a future version: 200 with the body', async () => {
    const v = await currentVersion(env.client);
    for (const old of [v - 1, 0, v + 1]) {
      const r = await env.client.get('/flags', { headers: { 'If-None-Match': `"${old}"` } });
      assert.equal(r.status, 200, `If-None-Match "${old}"`);
      assert.equal(r.json.version, v);
      assert.equal(r.headers.get('etag'), `"${v}"`);
    }
    const u = await env.client.get('/flags?user=bob', { headers: { 'If-None-Match': `"${v - 1}"` } });
    assert.equal(u.status, 200);
    assert.equal(u.json.user, 'bob');
  });

  test('after a change the old ETag no longer matches', async () => {
    const v = await currentVersion(env.client);
    await createFlag(env.admin, { name: 'etag_probe' });
    model.etag_probe = (await env.admin.get('/api/flags/etag_probe')).json;
    const r = await env.client.get('/flags', { headers: { 'If-None-Match': `"${v}"` } });
    assert.equal(r.status, 200);
    assert.equal(r.json.version, v + 1);
    assert.equal(r.headers.get('etag'), `"${v + 1}"`);
  });

  test('an unparsable If-None-Match is 400 bad_request', async () => {
    for (const h of ['abc', '"1', '1"']) {
      const r = await env.client.get('/flags', { headers: { 'If-None-Match': h } });
      assertError(r, 400, 'bad_request');
    }
  });
});

describe('GET /flags?user= evaluates docs/evaluation.md', () => {
  const flagsFor = async (user) => {
    const r = await env.client.get(`/flags?user=${encodeURIComponent(user)}`);
    assert.equal(r.status, 200, r.text);
    return r;
  };

  test('docs/evaluation.md vectors at the percentage edge', async () => {
    assert.equal((await flagsFor('alice')).json.flags.new_order_flow, false, 'alice is bucket 58 > 55');
    assert.equal((await flagsFor('bob')).json.flags.new_order_flow, true, 'bob is bucket 53 <= 55');
    assert.equal((await flagsFor('user-1')).json.flags.new_ui, true, 'user-1 is bucket 48 <= 48');
    assert.equal((await flagsFor('user-2')).json.flags.new_ui, true, 'user-2 is bucket 2');
    assert.equal((await flagsFor('42')).json.flags.premium_features, false, '"42" is bucket 39 > 38');
    assert.equal((await flagsFor('ü-user')).json.flags['checkout.v2'], true, 'ü-user is bucket 16 <= 16');
    assert.equal((await flagsFor('174')).json.flags['Feature.flexibleRollout.10'], true, '174 is bucket 10');
    assert.equal((await flagsFor('499')).json.flags['Feature.flexibleRollout.10'], false, '499 is bucket 32');
  });

  test('the whole answer for a user: shape, version, ETag, every flag', async () => {
    const v = await currentVersion(env.client);
    const r = await flagsFor('alice');
    assert.deepEqual(Object.keys(r.json).sort(), ['flags', 'user', 'version']);
    assert.equal(r.json.version, v);
    assert.equal(r.json.user, 'alice');
    assert.equal(r.headers.get('etag'), `"${v}"`);
    const expected = {};
    for (const [name, f] of Object.entries(model)) expected[name] = evaluate(f, 'alice');
    assert.deepEqual(r.json.flags, expected);
    assert.equal(r.json.flags.killed, false, 'kill switch wins over users');
    assert.equal(r.json.flags.vip_only, true, 'listed user is on at 0 %');
    assert.equal(r.json.flags.everyone, true);
    assert.equal(r.json.flags.nobody, false);
  });

  test('200 users agree with the reference model on every flag', async () => {
    for (let i = 0; i < 200; i++) {
      const user = `u${i}-${'xyz'.slice(i % 3)}`;
      const r = await flagsFor(user);
      const expected = {};
      for (const [name, f] of Object.entries(model)) expected[name] = evaluate(f, user);
      assert.deepEqual(r.json.flags, expected, `user ${user}`);
    }
  });

  test('anonymous: no user, or an empty user', async () => {
    const r = await flagsFor('');
    assert.equal(r.json.user, '');
    const expected = {};
    for (const [name, f] of Object.entries(model)) expected[name] = evaluate(f, '');
    assert.deepEqual(r.json.flags, expected);
    assert.equal(r.json.flags.everyone, true, '100 % is on for anonymous');
    assert.equal(r.json.flags.new_order_flow, false, 'a partial rollout is off for anonymous');
  });

  test('the same user always gets the same answer', async () => {
    const a = await flagsFor('stable-user');
    const b = await flagsFor('stable-user');
    assert.deepEqual(a.json, b.json);
  });

  test('user ids are taken byte for byte (case, UTF-8, reserved characters)', async () => {
    for (const user of ['Alice', 'ALICE', 'ü-user', 'a b', 'a&b=c', 'ключ', '日本']) {
      const r = await flagsFor(user);
      assert.equal(r.json.user, user);
      assert.equal(r.json.flags.vip_only, user === 'ü-user', `vip_only for ${user}`);
    }
  });
});

describe('GET /flags/<name>', () => {
  test('answers {name, on, version}', async () => {
    const v = await currentVersion(env.client);
    for (const [name, user, on] of [
      ['new_order_flow', 'alice', false], ['new_order_flow', 'bob', true], ['checkout.v2', 'ü-user', true],
      ['Feature.flexibleRollout.10', '174', true], ['Feature.flexibleRollout.10', '499', false],
      ['killed', 'alice', false], ['vip_only', 'alice', true], ['vip_only', 'carol', false],
    ]) {
      const r = await env.client.get(`/flags/${encodeURIComponent(name)}?user=${encodeURIComponent(user)}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { name, on, version: v }, `${name} for ${user}`);
    }
  });

  test('without a user, or with user=, evaluates for an anonymous user', async () => {
    const v = await currentVersion(env.client);
    for (const q of ['', '?user=']) {
      assert.deepEqual((await env.client.get(`/flags/everyone${q}`)).json, { name: 'everyone', on: true, version: v });
      assert.deepEqual((await env.client.get(`/flags/new_order_flow${q}`)).json,
        { name: 'new_order_flow', on: false, version: v });
      assert.deepEqual((await env.client.get(`/flags/vip_only${q}`)).json, { name: 'vip_only', on: false, version: v });
    }
  });

  test('an unknown flag is 404 not_found', async () => {
    assertError(await env.client.get('/flags/no_such_flag?user=alice'), 404, 'not_found');
    assertError(await env.client.get('/flags/New_Order_Flow?user=alice'), 404, 'not_found');
  });
});

describe('percentages through HTTP', () => {
  test('raising the percentage never turns a user off, and about p % are on', async () => {
    await createFlag(env.admin, { name: 'rollout_probe', enabled: true, percentage: 20 });
    const users = Array.from({ length: 400 }, (_, i) => `rollout-user-${i}`);
    const onAt = async () => {
      const s = new Set();
      for (const u of users) {
        const r = await env.client.get(`/flags/rollout_probe?user=${u}`);
        assert.equal(r.status, 200);
        if (r.json.on) s.add(u);
      }
      return s;
    };
    const at20 = await onAt();
    const p = await env.admin.patch('/api/flags/rollout_probe', { percentage: 60 });
    assert.equal(p.status, 200, p.text);
    const at60 = await onAt();
    for (const u of at20) assert.ok(at60.has(u), `${u} was on at 20 % and off at 60 %`);
    for (const u of users) {
      assert.equal(at20.has(u), bucket('rollout_probe', u) <= 20, `${u} at 20 %`);
      assert.equal(at60.has(u), bucket('rollout_probe', u) <= 60, `${u} at 60 %`);
    }
    assert.ok(at20.size > 40 && at20.size < 120, `about 20 % of 400 on: ${at20.size}`);
    assert.ok(at60.size > 200 && at60.size < 280, `about 60 % of 400 on: ${at60.size}`);
  });

  test('turning a flag off turns it off for everyone at once', async () => {
    const p = await env.admin.patch('/api/flags/everyone', { enabled: false });
    assert.equal(p.status, 200, p.text);
    const r = await env.client.get('/flags/everyone?user=anyone');
    assert.equal(r.json.on, false);
    const all = await env.client.get('/flags?user=anyone');
    assert.equal(all.json.flags.everyone, false);
  });
});

describe('wait parameter validation (no hold)', () => {
  for (const w of ['0', '61', '-1', 'abc', '1.5', '']) {
    test(`wait=${w} is 400`, async () => {
      const v = await currentVersion(env.client);
      const r = await env.client.get(`/flags?wait=${w}`, { headers: { 'If-None-Match': `"${v}"` } });
      assertError(r, 400, ['bad_request', 'invalid_value']);
    });
  }

  test('wait without a matching If-None-Match answers at once', async () => {
    const v = await currentVersion(env.client);
    const t0 = Date.now();
    const r = await env.client.get('/flags?wait=30');
    assert.equal(r.status, 200);
    const r2 = await env.client.get('/flags?wait=30', { headers: { 'If-None-Match': `"${v - 1}"` } });
    assert.equal(r2.status, 200);
    assert.ok(Date.now() - t0 < 2000, 'not held');
  });
});
