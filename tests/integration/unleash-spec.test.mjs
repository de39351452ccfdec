// docs/unleash.md against Unleash's own client specification
// (@unleash/client-specification 6.1.0): every test case whose features
// vexil can express is replayed through vexil and the real Node SDK.
//
// For each specification file: its features (its `state`, a client/features
// body or, for 19/20, delta events replayed in order) are converted to vexil
// flag states in an environment of their own (spec-01, spec-02, ...), with
// the flag NAMES unchanged, since a percentage bucket hashes the name.  Then
// unleash-client, pointed at vexil with a client token of that environment,
// answers each case's isEnabled(toggleName, context), which must be the
// case's expectedResult; vexil's own GET /flags/<name>?user= must say the
// same.
//
// What vexil can express (its flag: enabled, users, segments, one
// percentage on groupId = the flag's name with userId stickiness), and so
// which cases run:
//   - `default` (no constraints) -> 100 %; `enabled` with `strategies: []` -> 100 %;
//   - `userWithId` -> users (lists with an empty id or blanks around one are out);
//   - `flexibleRollout` / `gradualRolloutUserId` with groupId = the flag's name
//     -> that percentage; 0 % of any kind -> nothing; 100 % with `default` or
//     `random` stickiness, `gradualRolloutRandom` 100 % -> 100 %;
//   - stickiness `default` below 100 % buckets sessionId (or a random number)
//     when the context has no userId, where vexil's user is anonymous: those
//     cases are out (10's two sessionId cases); `userId` stickiness at 100 %
//     is off without a userId, vexil's 100 % is on: those cases are out too;
//   - a feature-level `segments` (19) is ignored, as the Node SDK ignores it.
// Out: constraints (06, 09, 11 but `constraints: []`, 13, 14, 21, 22), strategy
// segments (15, 20's third case), dependencies (17), sessionId / custom
// stickiness and non-0 % session or random rollouts (04, 10's sessionId.42,
// 12), every variantTests (08, 12, 15, 16, 17), a groupId other than the flag
// name below 100 % (03 uses "AB12A": vexil's bucket is always groupId = name;
// 03's 0 % and 100 % cases hash nothing and run), and flag names vexil does
// not allow (18's `Feature.UTF-8.Hellø_Wørld`: vexil names match
// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$).  A disabled feature is always
// expressible (17's disabled children), and a case naming a flag that is not
// in its file's state is kept: both must say false.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InMemStorageProvider, Unleash } from 'unleash-client';
import { startEnv } from './lib/harness.mjs';

const require = createRequire(import.meta.url);
const SPEC_DIR = path.join(path.dirname(require.resolve('@unleash/client-specification/package.json')),
  'specifications');
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
/** At least this many cases must run: exactly what the rules above select
 * from 6.1.0 (01:5 02:5 03:3 04:2 05:4 07:6 10:7 11:2 14:1 17:2 19:1 20:2),
 * so that a broken loader cannot pass by running fewer. */
const FLOOR = 40;

// ---------------------------------------------------------------- conversion

class Inexpressible extends Error {}
const out = (why) => { throw new Inexpressible(why); };

/** The final features of a state: a full body, or delta events replayed. */
function features(state) {
  if (Array.isArray(state.features)) return state.features;
  const byName = new Map();
  for (const e of state.events || []) {
    if (e.type === 'hydration') {
      byName.clear();
      for (const f of e.features) byName.set(f.name, f);
    } else if (e.type === 'feature-updated') byName.set(e.feature.name, e.feature);
    else if (e.type === 'feature-removed') byName.delete(e.featureName);
    // segment events only matter to strategies that use segments (out)
  }
  return [...byName.values()];
}

/**
 * One feature as a vexil state {enabled, percentage, users} plus what a
 * test context needs for vexil's answer to equal the SDK's
 * (needsUserId), or throws Inexpressible.
 */
function convert(f) {
  if (!NAME_RE.test(f.name)) out(`name ${JSON.stringify(f.name)} is not a vexil flag name`);
  if (!f.enabled) return { enabled: false, percentage: 0, users: [], needsUserId: false };
  if (Array.isArray(f.dependencies) && f.dependencies.length > 0) out('dependencies');
  if (!Array.isArray(f.strategies)) out('strategies is not an array');
  if (f.strategies.length === 0) return { enabled: true, percentage: 100, users: [], needsUserId: false };
  const users = new Set();
  let all = false;
  const percentages = new Set();
  let needsUserId = false;
  for (const s of f.strategies) {
    const p = s.parameters || {};
    if ((s.constraints || []).length > 0) out(`${s.name} with constraints`);
    if ((s.segments || []).length > 0) out(`${s.name} with segments`);
    switch (s.name) {
      case 'default':
        all = true;
        break;
      case 'userWithId': {
        const ids = p.userIds ? p.userIds.split(/\s*,\s*/) : [];
        for (const id of ids) {
          if (id === '' || id.trim() !== id) out(`userWithId id ${JSON.stringify(id)}`);
          users.add(id);
        }
        break;
      }
      case 'flexibleRollout':
      case 'gradualRolloutUserId': {
        const flexible = s.name === 'flexibleRollout';
        const r = Number(flexible ? p.rollout : p.percentage);
        const stickiness = flexible ? (p.stickiness || 'default') : 'userId';
        if (!(r > 0)) break; // 0 or NaN: never on
        if (r >= 100 && (stickiness === 'default' || stickiness === 'random')) { all = true; break; }
        if (stickiness !== 'default' && stickiness !== 'userId') out(`stickiness ${stickiness}`);
        if (r >= 100) { percentages.add(100); needsUserId = true; break; } // userId stickiness: off for anonymous
        if ((p.groupId || '') !== f.name) out(`groupId ${JSON.stringify(p.groupId)} is not the flag name`);
        percentages.add(r);
        if (stickiness === 'default') needsUserId = true; // else sessionId or random
        break;
      }
      case 'gradualRolloutRandom':
      case 'gradualRolloutSessionId': {
        const r = Number(p.percentage);
        if (!(r > 0)) break;
        if (s.name === 'gradualRolloutRandom' && r >= 100) { all = true; break; }
        out(`${s.name} ${r} %`);
        break;
      }
      default:
        out(`strategy ${s.name}`);
    }
  }
  if (all) return { enabled: true, percentage: 100, users: [], needsUserId: false };
  if (percentages.size > 1) out(`several percentages ${[...percentages]}`);
  const percentage = percentages.size ? [...percentages][0] : 0;
  return { enabled: true, percentage, users: [...users], needsUserId };
}

/** Every specification file: {file, env, flags {name: state}, cases, skipped}. */
function load() {
  const index = JSON.parse(readFileSync(path.join(SPEC_DIR, 'index.json'), 'utf8'));
  assert.ok(index.length >= 20, `index.json lists ${index.length} files`);
  return index.map((file) => {
    const spec = JSON.parse(readFileSync(path.join(SPEC_DIR, file), 'utf8'));
    const env = `spec-${file.slice(0, 2)}`;
    const flags = {};
    const why = {};
    for (const f of features(spec.state)) {
      try {
        flags[f.name] = convert(f);
      } catch (e) {
        if (!(e instanceof Inexpressible)) throw e;
        why[f.name] = e.message;
      }
    }
    const cases = [];
    const skipped = [];
    for (const t of spec.tests || []) {
      const ctx = t.context || {};
      const user = ctx.userId;
      let reason = null;
      if (why[t.toggleName]) reason = why[t.toggleName];
      else if (user !== undefined && (typeof user !== 'string' || user === '')) reason = `userId ${JSON.stringify(user)}`;
      else if (user !== undefined && !/^[\x20-\x7e]+$/.test(user)) reason = 'a non-ASCII userId (the Node SDK hashes UTF-16)';
      else if (flags[t.toggleName]?.needsUserId && user === undefined) reason = 'no userId, where the rollout would use sessionId/random or need a userId';
      if (reason) skipped.push({ ...t, reason });
      else cases.push(t);
    }
    for (const t of spec.variantTests || []) skipped.push({ ...t, reason: 'variantTests' });
    return { file, env, flags, cases, skipped };
  });
}

const SPECS = load();
const RUNNABLE = SPECS.filter((s) => s.cases.length > 0);
const N_CASES = SPECS.reduce((n, s) => n + s.cases.length, 0);
const N_SKIPPED = SPECS.reduce((n, s) => n + s.skipped.length, 0);

// ---------------------------------------------------------------- vexil and the SDKs

let env;
const sdks = {}; // environment -> Unleash
const clients = {}; // environment -> vexil client (its client token)
let ran = 0;

before(async () => {
  env = await startEnv();
  for (const s of RUNNABLE) {
    const r = await env.admin.post('/api/environments', { name: s.env, description: s.file });
    assert.equal(r.status, 201, r.text);
  }
  // One flag per name, with its state in each file's environment.
  const byName = {};
  for (const s of RUNNABLE) {
    for (const [name, st] of Object.entries(s.flags)) {
      (byName[name] ??= {})[s.env] = { enabled: st.enabled, percentage: st.percentage, users: st.users };
    }
  }
  for (const [name, environments] of Object.entries(byName)) {
    const r = await env.admin.post('/api/flags', { name, environments });
    assert.equal(r.status, 201, `${name}: ${r.text}`);
  }
  for (const s of RUNNABLE) {
    const r = await env.admin.post('/api/tokens', { name: s.env, role: 'client', environment: s.env });
    assert.equal(r.status, 201, r.text);
    clients[s.env] = env.server.client(r.json.token);
    const sdk = new Unleash({
      appName: s.file, // as the SDK's own specification runner does
      url: env.server.base + '/api/',
      customHeaders: { Authorization: r.json.token },
      refreshInterval: 60000,
      disableMetrics: true,
      storageProvider: new InMemStorageProvider(),
      skipInstanceCountWarning: true,
    });
    sdk.errors = [];
    sdk.on('error', (e) => sdk.errors.push(e));
    sdk.on('warn', () => {});
    sdks[s.env] = sdk;
  }
  await Promise.all(Object.entries(sdks).map(([e, sdk]) => new Promise((resolve, reject) => {
    if (sdk.isSynchronized()) { resolve(); return; }
    const timer = setTimeout(() => reject(new Error(`${e}: the SDK did not synchronize within 10 s: ${sdk.errors.join('; ')}`)), 10000);
    sdk.once('synchronized', () => { clearTimeout(timer); resolve(); });
  })));
});

after(async () => {
  for (const sdk of Object.values(sdks)) sdk.destroy();
  await env?.close();
});

for (const s of RUNNABLE) {
  describe(s.file, () => {
    for (const t of s.cases) {
      test(`${t.description} (${t.toggleName}, ${JSON.stringify(t.context)})`, async () => {
        ran++;
        const sdk = sdks[s.env];
        assert.equal(sdk.isEnabled(t.toggleName, t.context || {}), t.expectedResult, 'the Node SDK on vexil');
        const user = t.context?.userId;
        const r = await clients[s.env].get(`/flags/${encodeURIComponent(t.toggleName)}` +
          (user === undefined ? '' : `?user=${encodeURIComponent(user)}`));
        if (s.flags[t.toggleName]) {
          assert.equal(r.status, 200, r.text);
          assert.equal(r.json.on, t.expectedResult, 'vexil\'s own GET /flags/<name>');
        } else {
          // Not in this file's state (another file's flag of that name is
          // disabled in this environment).
          assert.equal(t.expectedResult, false, 'a flag that is not there');
          assert.ok(r.status === 404 || (r.status === 200 && r.json.on === false), `${r.status} ${r.text}`);
        }
        assert.deepEqual(sdk.errors.map(String), []);
      });
    }
  });
}

test('the specification loader ran enough cases', () => {
  const per = SPECS.map((s) => `${s.file.slice(0, 2)}:${s.cases.length}/${s.cases.length + s.skipped.length}`).join(' ');
  console.log(`# client-specification: ${N_CASES} cases ran, ${N_SKIPPED} skipped as not expressible in vexil (${per})`);
  const reasons = {};
  for (const t of SPECS.flatMap((x) => x.skipped)) {
    const k = t.reason.replace(/ ".*$|\d+ %$|[\d,]+$/, '').trim()
      .replace(/^name$/, 'flag name vexil does not allow').replace(/^groupId$/, 'groupId other than the name');
    reasons[k] = (reasons[k] || 0) + 1;
  }
  console.log(`# skipped: ${Object.entries(reasons).map(([k, n]) => `${n} ${k}`).join('; ')}`);
  assert.equal(ran, N_CASES, 'every loaded case ran');
  assert.ok(N_CASES >= FLOOR, `only ${N_CASES} expressible cases (floor ${FLOOR})`);
  assert.ok(RUNNABLE.length >= 8, `cases from only ${RUNNABLE.length} files`);
});
