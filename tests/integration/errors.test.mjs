// docs/api.md §5: error bodies, 400 validation (with the database unchanged), 404,
// 405 with Allow, 413, 414.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertError, createFlag, currentVersion, historyTable, rawRequest, startEnv, tableCounts,
} from './lib/harness.mjs';

let env;
let histTable;
before(async () => {
  env = await startEnv();
  await createFlag(env.admin, { name: 'existing', description: 'd', owner: 'o', enabled: true, percentage: 40, users: ['u1'] });
  histTable = await historyTable(env.db.url);
});
after(async () => {
  await env?.close();
});

/** Everything a failed write must leave as it was. */
async function state() {
  const flags = await env.admin.get('/api/flags');
  assert.equal(flags.status, 200);
  const counts = await tableCounts(env.db.url);
  assert.ok(histTable in counts, `history table ${histTable} counted`);
  return { flags: flags.json, version: await currentVersion(env.client), counts };
}

async function expectUnchanged(fn) {
  const s0 = await state();
  await fn();
  assert.deepEqual(await state(), s0, 'database and snapshot unchanged');
}

const long = (n, c = 'a') => c.repeat(n);

// [what, body (object, or {raw} for bytes), acceptable codes]
const BAD_CREATE = [
  ['malformed JSON', { raw: '{"name": "x"' }, 'invalid_json'],
  ['trailing garbage', { raw: '{"name": "x"} x' }, 'invalid_json'],
  ['empty body', { raw: '' }, ['invalid_json', 'invalid_value', 'bad_request']],
  ['a JSON array', { raw: '[{"name": "x"}]' }, ['invalid_json', 'invalid_value', 'bad_request']],
  ['a JSON string', { raw: '"x"' }, ['invalid_json', 'invalid_value', 'bad_request']],
  ['null', { raw: 'null' }, ['invalid_json', 'invalid_value', 'bad_request']],
  ['duplicate keys', { raw: '{"name": "dup_a", "name": "dup_b"}' }, 'invalid_json'],
  ['invalid UTF-8', { raw: Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }, 'invalid_json'],
  ['an unknown field', { name: 'x1', color: 'red' }, 'unknown_field'],
  ['age_days is not writable', { name: 'x1', age_days: 3 }, 'unknown_field'],
  ['revision is not writable', { name: 'x1', revision: 7 }, 'unknown_field'],
  ['created_at is not writable', { name: 'x1', created_at: '2020-01-01T00:00:00.000Z' }, 'unknown_field'],
  ['no name', { description: 'x' }, ['invalid_value', 'bad_request']],
  ['name not a string', { name: 5 }, 'invalid_value'],
  ['name null', { name: null }, 'invalid_value'],
  ['empty name', { name: '' }, 'invalid_value'],
  ['name starting with _', { name: '_x' }, 'invalid_value'],
  ['name starting with -', { name: '-x' }, 'invalid_value'],
  ['name starting with .', { name: '.x' }, 'invalid_value'],
  ['name with a space', { name: 'a b' }, 'invalid_value'],
  ['name with a slash', { name: 'a/b' }, 'invalid_value'],
  ['name with a colon', { name: 'a:b' }, 'invalid_value'],
  ['name with a non-ASCII letter', { name: 'flagä' }, 'invalid_value'],
  ['name with a newline', { name: 'a\nb' }, 'invalid_value'],
  ['name of 101 characters', { name: long(101) }, 'invalid_value'],
  ['description not a string', { name: 'x1', description: 5 }, 'invalid_value'],
  ['description of 1001 characters', { name: 'x1', description: long(1001) }, 'invalid_value'],
  ['owner not a string', { name: 'x1', owner: ['a'] }, 'invalid_value'],
  ['owner of 201 characters', { name: 'x1', owner: long(201) }, 'invalid_value'],
  ['enabled as a string', { name: 'x1', enabled: 'true' }, 'invalid_value'],
  ['enabled as a number', { name: 'x1', enabled: 1 }, 'invalid_value'],
  ['enabled null', { name: 'x1', enabled: null }, 'invalid_value'],
  ['percentage as a string', { name: 'x1', percentage: '50' }, 'invalid_value'],
  ['percentage with a fraction', { name: 'x1', percentage: 50.5 }, 'invalid_value'],
  ['percentage -1', { name: 'x1', percentage: -1 }, 'invalid_value'],
  ['percentage 101', { name: 'x1', percentage: 101 }, 'invalid_value'],
  ['percentage huge', { raw: '{"name":"x1","percentage":99999999999999999999999}' }, ['invalid_value', 'invalid_json']],
  ['percentage 1e999', { raw: '{"name":"x1","percentage":1e999}' }, ['invalid_value', 'invalid_json']],
  ['users not an array', { name: 'x1', users: 'alice' }, 'invalid_value'],
  ['users with a number', { name: 'x1', users: ['a', 1] }, 'invalid_value'],
  ['users with an empty id', { name: 'x1', users: [''] }, 'invalid_value'],
  ['users with an id of 257 bytes', { name: 'x1', users: [long(257)] }, 'invalid_value'],
  ['users with an id of 129 two-byte characters (258 bytes)', { name: 'x1', users: [long(129, 'ü')] }, 'invalid_value'],
  ['users with a duplicate', { name: 'x1', users: ['a', 'b', 'a'] }, 'invalid_value'],
  ['10 001 users', { name: 'x1', users: Array.from({ length: 10001 }, (_, i) => `u${i}`) }, 'invalid_value'],
];

describe('POST /api/flags: bad input is 400 and writes nothing', () => {
  for (const [what, body, code] of BAD_CREATE) {
    test(what, async () => {
      await expectUnchanged(async () => {
        const r = body.raw !== undefined
          ? await env.admin.request('POST', '/api/flags', { raw: body.raw, headers: { 'Content-Type': 'application/json' } })
          : await env.admin.post('/api/flags', body);
        assertError(r, 400, code);
      });
    });
  }
});

const BAD_PATCH = [
  ['malformed JSON', { raw: '{"percentage": ' }, 'invalid_json'],
  ['duplicate keys', { raw: '{"percentage": 1, "percentage": 2}' }, 'invalid_json'],
  ['a JSON array', { raw: '[]' }, ['invalid_json', 'invalid_value', 'bad_request']],
  ['an unknown field', { percentage: 5, colour: 'red' }, 'unknown_field'],
  ['revision', { revision: 9 }, 'unknown_field'],
  ['enabled as a string', { enabled: 'false' }, 'invalid_value'],
  ['percentage 101', { percentage: 101 }, 'invalid_value'],
  ['percentage -1', { percentage: -1 }, 'invalid_value'],
  ['percentage null', { percentage: null }, 'invalid_value'],
  ['percentage 5.5', { percentage: 5.5 }, 'invalid_value'],
  ['description of 1001 characters', { description: long(1001) }, 'invalid_value'],
  ['owner of 201 characters', { owner: long(201) }, 'invalid_value'],
  ['users with a duplicate', { users: ['x', 'x'] }, 'invalid_value'],
  ['users with an empty id', { users: ['x', ''] }, 'invalid_value'],
  ['users null', { users: null }, 'invalid_value'],
  ['one good field and one bad field', { description: 'changed', percentage: 200 }, 'invalid_value'],
];

describe('PATCH /api/flags/<name>: bad input is 400 and writes nothing', () => {
  for (const [what, body, code] of BAD_PATCH) {
    test(what, async () => {
      await expectUnchanged(async () => {
        const r = body.raw !== undefined
          ? await env.admin.request('PATCH', '/api/flags/existing', { raw: body.raw })
          : await env.admin.patch('/api/flags/existing', body);
        assertError(r, 400, code);
      });
    });
  }
});

describe('404 and 405', () => {
  for (const p of ['/nope', '/api', '/api/nope', '/api/flags/existing/nope', '/api/flags/existing/history/x',
    '/flags/existing/x', '/api/tokens/a/b', '/ofrep/nope']) {
    test(`GET ${p} is 404 not_found`, async () => {
      assertError(await env.admin.get(p), 404, 'not_found');
    });
  }

  const allowOf = (r) => (r.headers.get('allow') || '').split(',').map((s) => s.trim()).filter(Boolean);
  const cases = [
    ['PUT', '/api/flags', ['GET', 'POST']],
    ['DELETE', '/api/flags', ['GET', 'POST']],
    ['POST', '/api/flags/existing', ['GET', 'PATCH', 'DELETE']],
    ['PUT', '/api/flags/existing', ['GET', 'PATCH', 'DELETE']],
    ['POST', '/api/flags/existing/history', ['GET']],
    ['GET', '/api/flags/existing/revert', ['POST']],
    ['POST', '/flags', ['GET']],
    ['DELETE', '/flags/existing', ['GET']],
    ['PATCH', '/api/tokens', ['GET', 'POST']],
    ['GET', '/api/tokens/1', ['DELETE']],
    ['POST', '/api/stale', ['GET']],
    ['POST', '/healthz', ['GET']],
    ['DELETE', '/readyz', ['GET']],
    ['POST', '/metrics', ['GET']],
  ];
  for (const [method, p, allowed] of cases) {
    test(`${method} ${p} is 405 with Allow: ${allowed.join(', ')}`, async () => {
      await expectUnchanged(async () => {
        const r = await env.admin.request(method, p, { body: method === 'GET' ? undefined : {} });
        assertError(r, 405, 'method_not_allowed');
        const allow = allowOf(r);
        for (const m of allowed) assert.ok(allow.includes(m), `Allow ${allow} has ${m}`);
        assert.ok(!allow.includes(method), `Allow ${allow} lacks ${method}`);
      });
    });
  }
});

describe('413: request body over 1 MiB', () => {
  const MiB = 1024 * 1024;

  test('a body of exactly 1 MiB is accepted', async () => {
    const head = '{"name":"exactly_one_mib","description":"fits"}';
    const raw = head + ' '.repeat(MiB - head.length);
    assert.equal(Buffer.byteLength(raw), MiB);
    const r = await env.admin.request('POST', '/api/flags', { raw });
    assert.equal(r.status, 201, r.text);
  });

  test('1 MiB + 1 byte with Content-Length is 413 payload_too_large and writes nothing', async () => {
    await expectUnchanged(async () => {
      const head = '{"name":"too_big"}';
      const body = Buffer.from(head + ' '.repeat(MiB + 1 - head.length));
      const r = await rawRequest(env.server.port,
        `POST /api/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.adminToken}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        { body, waitBeforeBody: 300 });
      assert.equal(r.status, 413, r.raw.subarray(0, 300).toString());
      assertError({ status: r.status, headers: r.headers, text: r.body, json: JSON.parse(r.body) }, 413, 'payload_too_large');
    });
  });

  test('a chunked body over 1 MiB is 413 too', async () => {
    await expectUnchanged(async () => {
      const head = '{"name":"too_big_chunked","description":"';
      const payload = Buffer.from(head + 'x'.repeat(2 * MiB) + '"}');
      const parts = [];
      for (let i = 0; i < payload.length; i += 65536) {
        const c = payload.subarray(i, i + 65536);
        parts.push(Buffer.from(c.length.toString(16) + '\r\n'), c, Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\n\r\n'));
      const r = await rawRequest(env.server.port,
        `POST /api/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.adminToken}\r\n` +
        'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
        { body: Buffer.concat(parts) });
      assert.equal(r.status, 413, r.raw.subarray(0, 300).toString());
      assert.equal(JSON.parse(r.body).error.code, 'payload_too_large');
    });
  });

  test('the server still serves after refusing big bodies', async () => {
    assert.equal((await env.admin.get('/api/flags/existing')).status, 200);
  });
});

describe('414: URL over 8 KiB', () => {
  test('a long query string is 414 with an error body', async () => {
    const r = await env.client.get(`/flags?user=${'u'.repeat(9000)}`);
    assertError(r, 414, ['bad_request', 'invalid_value']);
  });

  test('a long path is 414 with an error body', async () => {
    const r = await env.client.get(`/flags/${'f'.repeat(9000)}`);
    assertError(r, 414, ['bad_request', 'invalid_value', 'not_found']);
  });

  test('a URL of 7 KiB is served (unknown parameters are ignored)', async () => {
    const r = await env.client.get(`/flags?user=alice&pad=${'p'.repeat(7000)}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.user, 'alice');
  });
});

describe('the error body', () => {
  test('has exactly {"error": {"code", "message"}} and JSON content type on every kind of error', async () => {
    const rs = [
      await env.anon.get('/flags'), // 401
      await env.client.get('/api/flags'), // 403
      await env.admin.get('/nope'), // 404
      await env.admin.request('PUT', '/api/flags', { body: {} }), // 405
      await env.admin.post('/api/flags', { name: 'existing' }), // 409
      await env.admin.patch('/api/flags/existing', { percentage: 1 }, { headers: { 'If-Match': '"999"' } }), // 412
      await env.admin.post('/api/flags', { name: '' }), // 400
    ];
    const expected = [[401, 'unauthorized'], [403, 'forbidden'], [404, 'not_found'], [405, 'method_not_allowed'],
      [409, 'conflict'], [412, 'precondition_failed'], [400, 'invalid_value']];
    rs.forEach((r, i) => assertError(r, ...expected[i]));
  });

  test('the message is a human sentence naming the problem', async () => {
    const r = await env.admin.post('/api/flags', { name: 'x2', percentage: 150 });
    assertError(r, 400, 'invalid_value');
    assert.match(r.json.error.message, /percentage/i, 'the message names the field');
    const u = await env.admin.post('/api/flags', { name: 'x2', colour: 1 });
    assert.match(u.json.error.message, /colour/, 'the message names the unknown field');
  });
});

describe('the limits are configurable', () => {
  let small;
  before(async () => {
    small = await startEnv({ args: ['--max-url', '1024', '--max-body', '2048'] });
  });
  after(async () => {
    await small?.close();
  });

  test('--max-url 1024: a 1.5 KiB URL is 414, a shorter one is served', async () => {
    assertError(await small.client.get(`/flags?pad=${'p'.repeat(1500)}`), 414, ['bad_request', 'invalid_value']);
    const r = await small.client.get(`/flags?pad=${'p'.repeat(900)}`);
    assert.equal(r.status, 200, r.text);
  });

  test('--max-body 2048: a 3 KiB body is 413 and creates nothing', async () => {
    const r = await small.admin.post('/api/flags', { name: 'big_body', description: 'd'.repeat(3000) });
    assertError(r, 413, 'payload_too_large');
    assertError(await small.admin.get('/api/flags/big_body'), 404, 'not_found');
  });
});
