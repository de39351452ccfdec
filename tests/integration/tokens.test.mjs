// docs/api.md §3 tokens API and docs/decisions.md "Tokens API".
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RFC3339_MS, SECRET, assertError, sleep, startEnv, tableCounts,
} from './lib/harness.mjs';

let env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

const TOKEN_KEYS = ['created_at', 'environment', 'id', 'last_used_at', 'name', 'role'];

async function list() {
  const r = await env.admin.get('/api/tokens');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['tokens']);
  return r;
}

async function eventually401(client) {
  const t0 = Date.now();
  let r;
  do {
    r = await client.get('/flags');
    if (r.status === 401) return r;
    await sleep(50);
  } while (Date.now() - t0 < 1000);
  return r;
}

describe('GET /api/tokens', () => {
  test('lists the tokens with id, name, role, environment, created_at, last_used_at and never a secret', async () => {
    const r = await list();
    for (const t of r.json.tokens) {
      assert.deepEqual(Object.keys(t).sort(), TOKEN_KEYS, JSON.stringify(t));
      assert.ok(['admin', 'client'].includes(t.role));
      assert.match(t.created_at, RFC3339_MS);
      assert.ok(t.last_used_at === null || RFC3339_MS.test(t.last_used_at), t.last_used_at);
    }
    const byName = Object.fromEntries(r.json.tokens.map((t) => [t.name, t]));
    assert.equal(byName['it-admin']?.role, 'admin');
    assert.equal(byName['it-client']?.role, 'client');
    for (const s of [env.adminToken, env.clientToken]) {
      assert.ok(!r.text.includes(s.slice(3)), 'a secret in the token list');
    }
  });
});

describe('POST /api/tokens', () => {
  let created;
  test('201 {id, name, role, environment, token, created_at}: the secret is shown here only', async () => {
    const r = await env.admin.post('/api/tokens', { name: 'svc-checkout', role: 'client' });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['created_at', 'environment', 'id', 'name', 'role', 'token']);
    assert.equal(r.json.environment, 'production', 'the default environment');
    assert.equal(r.json.name, 'svc-checkout');
    assert.equal(r.json.role, 'client');
    assert.match(r.json.token, SECRET);
    created = r.json;
    const l = await list();
    const t = l.json.tokens.find((x) => String(x.id) === String(created.id));
    assert.ok(t, 'listed by id');
    assert.equal(t.name, 'svc-checkout');
    assert.equal(t.last_used_at, null, 'never used yet');
    assert.ok(!l.text.includes(created.token.slice(3)), 'no secret in the list');
  });

  test('the new client token works on the client API and is 403 on the admin API', async () => {
    const c = env.server.client(created.token);
    assert.equal((await c.get('/flags')).status, 200);
    assertError(await c.get('/api/flags'), 403, 'forbidden');
  });

  test('a new admin token works on the admin API', async () => {
    const r = await env.admin.post('/api/tokens', { name: 'ops-2', role: 'admin' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.role, 'admin');
    const c = env.server.client(r.json.token);
    assert.equal((await c.get('/api/tokens')).status, 200);
    const f = await c.post('/api/flags', { name: 'by_ops_2' });
    assert.equal(f.status, 201, f.text);
    const h = await env.admin.get('/api/flags/by_ops_2/history');
    assert.equal(h.json.events[0].actor, 'ops-2');
  });

  test('every secret is different', async () => {
    const secrets = new Set();
    for (let i = 0; i < 5; i++) {
      const r = await env.admin.post('/api/tokens', { name: `many-${i}`, role: 'client' });
      assert.equal(r.status, 201);
      secrets.add(r.json.token);
    }
    assert.equal(secrets.size, 5);
  });

  test('name edges: 1 and 100 characters', async () => {
    for (const name of ['x', 'n'.repeat(100)]) {
      const r = await env.admin.post('/api/tokens', { name, role: 'client' });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.name, name);
    }
  });

  const bad = [
    ['an unknown role', { name: 'a', role: 'root' }, 'invalid_value'],
    ['an empty name', { name: '', role: 'client' }, 'invalid_value'],
    ['a name of 101 characters', { name: 'n'.repeat(101), role: 'client' }, 'invalid_value'],
    ['a name that is not a string', { name: 5, role: 'client' }, 'invalid_value'],
    ['a role that is not a string', { name: 'a', role: true }, 'invalid_value'],
    ['no role', { name: 'a' }, ['invalid_value', 'bad_request']],
    ['no name', { role: 'client' }, ['invalid_value', 'bad_request']],
    ['an unknown field', { name: 'a', role: 'client', expires: 1 }, 'unknown_field'],
    ['a body that is not an object', ['a', 'client'], ['invalid_json', 'invalid_value', 'bad_request']],
  ];
  for (const [what, body, code] of bad) {
    test(`${what} is 400 and creates nothing`, async () => {
      const counts = await tableCounts(env.db.url);
      assertError(await env.admin.post('/api/tokens', body), 400, code);
      assert.deepEqual(await tableCounts(env.db.url), counts);
    });
  }

  test('malformed JSON is 400 invalid_json', async () => {
    assertError(await env.admin.request('POST', '/api/tokens', { raw: '{"name":"a",' }), 400, 'invalid_json');
  });
});

describe('DELETE /api/tokens/<id>', () => {
  test('204; the token stops working within a second; a second delete is 404', async () => {
    const c = await env.admin.post('/api/tokens', { name: 'short-lived', role: 'client' });
    const client = env.server.client(c.json.token);
    assert.equal((await client.get('/flags')).status, 200);
    const d = await env.admin.del(`/api/tokens/${encodeURIComponent(c.json.id)}`);
    assert.equal(d.status, 204, d.text);
    assert.equal(d.text, '');
    const r = await eventually401(client);
    assertError(r, 401, 'unauthorized');
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer\b/);
    assertError(await env.admin.del(`/api/tokens/${encodeURIComponent(c.json.id)}`), 404, 'not_found');
  });

  test('revoking an admin token stops it on the admin API', async () => {
    const c = await env.admin.post('/api/tokens', { name: 'admin-short', role: 'admin' });
    const client = env.server.client(c.json.token);
    assert.equal((await client.get('/api/flags')).status, 200);
    assert.equal((await env.admin.del(`/api/tokens/${encodeURIComponent(c.json.id)}`)).status, 204);
    const t0 = Date.now();
    let s;
    do {
      s = (await client.get('/api/flags')).status;
      if (s === 401) break;
      await sleep(50);
    } while (Date.now() - t0 < 1000);
    assert.equal(s, 401);
  });

  test('an unknown id is 404', async () => {
    const { json } = await list();
    const sample = json.tokens[0].id;
    const unknown = typeof sample === 'number' ? 987654321 : '00000000-0000-4000-8000-000000000000';
    assertError(await env.admin.del(`/api/tokens/${unknown}`), 404, 'not_found');
    assertError(await env.admin.del('/api/tokens/not-an-id'), 404, 'not_found');
  });

  test('other tokens keep working', async () => {
    assert.equal((await env.client.get('/flags')).status, 200);
    assert.equal((await env.admin.get('/api/tokens')).status, 200);
  });

  test('a client token cannot revoke tokens', async () => {
    const { json } = await list();
    const admin = json.tokens.find((t) => t.name === 'it-admin');
    assertError(await env.client.del(`/api/tokens/${encodeURIComponent(admin.id)}`), 403, 'forbidden');
    assert.equal((await env.admin.get('/api/tokens')).status, 200);
  });
});
