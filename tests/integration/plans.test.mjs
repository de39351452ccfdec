// docs/api.md §8 release plans and alerts: a plan's steps taken on their own,
// each once and on time, also while instances die and start again (every
// instance runs a scheduler, the database lets one take each step); a
// person's write pausing or halting a plan; pause, resume, advance, abort and
// the transitions they refuse; POST /api/alerts with Alertmanager's own
// webhook payload (tests/integration/fixtures/alertmanager/, the format of
// Alertmanager's webhook_config documentation) turning a flag off, halting or
// pausing its plan, in the environment the alert names; every error of the
// §8 table changing nothing; the plan metrics of docs/operations.md.
//
// Holds are 1-2 s and the times are real: a step must be seen through the
// API within LATE_MS of its next_at, and the history's timestamps must show
// each step taken a hold after the one before it (+ at most a second, the
// scheduler's promise).  Every wait is bounded.  The groups (describe) are
// independent, each on its own database, and run concurrently.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  RFC3339_MS, SANITIZED, Server, assertError, bucket, createFlag, psql, sleep, startEnv, tableCounts,
} from './lib/harness.mjs';
import { assertWokeBy, hold, settledAt, timeWrite } from './lib/cluster.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, 'fixtures/alertmanager');

// "within a second of its time" (docs/api.md §8), seen through the API: the
// scheduler's second plus half a second for the observer and a busy machine.
const LATE_MS = SANITIZED ? 2500 : 1500;
// The scheduler's promise on the history's own timestamps.
const SCHED_MS = SANITIZED ? 2000 : 1000;
// A held long-poll learns of a write (docs/api.md §2): "within a second".
const WAKE_MS = SANITIZED ? 1500 : 1000;

// How long this process itself stalled (a busy machine), for the messages of
// the timing assertions: a step seen late while the observer was stalled is
// the machine's doing, not the server's.
const stalls = monitorEventLoopDelay({ resolution: 10 });
stalls.enable();
const stallNote = () => `(this test process stalled up to ${Math.round(stalls.max / 1e6)} ms so far)`;

const PLAN_KEYS = ['environment', 'flag', 'next_at', 'on_alert', 'percentage', 'reason', 'started_at',
  'started_by', 'status', 'step', 'steps'];
const q = encodeURIComponent;

// ---------------------------------------------------------------- helpers

/** Assert a condition becomes true (fn returns truthy) within ms; returns its value. */
async function until(fn, timeout, what, every = 25) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
    } catch (e) {
      last = undefined;
      if (Date.now() > deadline) throw e;
    }
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeout} ms ${stallNote()}`);
    await sleep(every);
  }
}

/** Sleep until wall-clock time t (ms since the epoch). */
async function sleepUntil(t) {
  const ms = t - Date.now();
  if (ms > 0) await sleep(ms);
}

const ms = (iso) => Date.parse(iso);

/** Check the shape of a plan object (docs/api.md §8). */
function assertPlanShape(p, what = 'plan') {
  assert.ok(p && typeof p === 'object', `${what}: ${JSON.stringify(p)}`);
  assert.deepEqual(Object.keys(p).sort(), PLAN_KEYS, `${what} fields: ${JSON.stringify(p)}`);
  assert.match(p.started_at, RFC3339_MS);
  if (p.status === 'running') assert.match(p.next_at, RFC3339_MS, `${what}: running has a next_at`);
  else assert.equal(p.next_at, null, `${what}: next_at is null unless running (${p.status})`);
  assert.equal(p.percentage, p.steps[p.step].percentage, `${what}: percentage is the applied step's`);
  return p;
}

function plans(admin) {
  const base = (flag, e) => `/api/flags/${q(flag)}/plan${e ? `?env=${q(e)}` : ''}`;
  const ctl = (op) => async (flag, e) => admin.post(
    `/api/flags/${q(flag)}/plan/${op}${e ? `?env=${q(e)}` : ''}`);
  return {
    put: (flag, body, e) => admin.request('PUT', base(flag, e), { body }),
    get: (flag, e) => admin.get(base(flag, e)),
    pause: ctl('pause'),
    resume: ctl('resume'),
    abort: ctl('abort'),
    advance: ctl('advance'),
  };
}

/** PUT a plan, asserting 201 and the plan's first step; returns the plan. */
async function startPlan(admin, flag, body, e) {
  const r = await plans(admin).put(flag, body, e);
  assert.equal(r.status, 201, `PUT plan of ${flag}: ${r.status} ${r.text}`);
  return assertPlanShape(r.json, `PUT ${flag}`);
}

async function getPlan(admin, flag, e) {
  const r = await plans(admin).get(flag, e);
  assert.equal(r.status, 200, `GET plan of ${flag}: ${r.status} ${r.text}`);
  return assertPlanShape(r.json, `GET ${flag}`);
}

/** A control op, asserting 200; returns the plan. */
async function control(admin, op, flag, e) {
  const r = await plans(admin)[op](flag, e);
  assert.equal(r.status, 200, `${op} ${flag}: ${r.status} ${r.text}`);
  return assertPlanShape(r.json, `${op} ${flag}`);
}

/** The state of flag in environment e as the admin API shows it. */
async function state(admin, flag, e) {
  const r = await admin.get(`/api/flags/${q(flag)}${e ? `?env=${q(e)}` : ''}`);
  assert.equal(r.status, 200, r.text);
  const f = r.json;
  return { enabled: f.enabled, percentage: f.percentage, users: f.users, segments: f.segments };
}

/**
 * Wait until the state of flag (as this instance's snapshot serves it, what
 * clients see) satisfies pred, at the latest at wall-clock time `by`.
 */
async function waitState(admin, flag, pred, by, what, e) {
  return until(async () => {
    const s = await state(admin, flag, e);
    return pred(s) ? s : null;
  }, by - Date.now(), what, 20);
}

/** Every history event of flag, oldest first. */
async function history(admin, flag) {
  const r = await admin.get(`/api/flags/${q(flag)}/history?limit=500`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.next, null, 'one page holds the whole history');
  return r.json.events.slice().reverse();
}

const planEvents = (events) => events.filter((e) => e.action === 'plan');

/** The production (or e) percentage after an event. */
const afterPct = (ev, e = 'production') => ev.after.environments[e].percentage;

/**
 * Assert the plan events of a history are exactly the steps, once each, in
 * order, by plan:<startedBy>, each taken a hold after the one before (and
 * at most SCHED_MS late).  `holds[i]` is the hold of step i in ms (what
 * was scheduled; pass null to skip the timing of a step, e.g. one applied
 * by advance).
 */
function assertSteps(events, steps, { env = 'production', startedBy = 'it-admin', timing = true } = {}) {
  const pe = planEvents(events);
  assert.deepEqual(pe.map((e) => afterPct(e, env)), steps.map((s) => s.percentage),
    `one plan event per step, in order: ${JSON.stringify(pe.map((e) => [e.id, e.at, afterPct(e, env)]))}`);
  for (const e of pe) {
    assert.equal(e.actor, `plan:${startedBy}`, `event ${e.id} actor`);
    assert.deepEqual(e.environments, [env], `event ${e.id} environments`);
    assert.equal(e.after.environments[env].enabled, true, `event ${e.id} enables the flag`);
  }
  if (!timing) return pe;
  for (let i = 1; i < pe.length; i++) {
    const gap = ms(pe[i].at) - ms(pe[i - 1].at);
    const holdMs = steps[i - 1].hold_seconds * 1000;
    assert.ok(gap >= holdMs - 2, `step ${i} taken ${gap} ms after step ${i - 1}: before its hold of ${holdMs} ms ran out`);
    assert.ok(gap <= holdMs + SCHED_MS, `step ${i} taken ${gap} ms after step ${i - 1}: more than ${SCHED_MS} ms late`);
  }
  return pe;
}

/** One unlabelled sample from /metrics text, or the labelled one named by `labels`. */
async function metric(server, name, labels = '') {
  const r = await fetch(server.base + '/metrics', { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  const re = new RegExp(`^${name}${labels.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Alertmanager's payload from the fixture, with the alerts' labels changed. */
function alertPayload(file, ...alerts) {
  const p = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  const proto = p.alerts[0];
  p.alerts = alerts.map((a) => {
    const labels = { ...proto.labels, ...a.labels };
    for (const [k, v] of Object.entries(labels)) if (v === undefined) delete labels[k];
    return { ...structuredClone(proto), ...(a.status ? { status: a.status } : {}), labels };
  });
  if (alerts.length) {
    p.commonLabels = { ...p.alerts[0].labels };
    for (const a of p.alerts.slice(1)) {
      for (const k of Object.keys(p.commonLabels)) if (a.labels[k] !== p.commonLabels[k]) delete p.commonLabels[k];
    }
  }
  return p;
}

/** Keep long-polling GET /flags on server with token, recording every answer about flag. */
function longPollWatch(server, token, flag, { wait = 5 } = {}) {
  const seen = [];
  let stopped = false;
  let error = null;
  const client = server.client(token);
  let ready;
  const readyP = new Promise((resolve) => { ready = resolve; });
  const done = (async () => {
    let r = await client.get('/flags');
    ready();
    assert.equal(r.status, 200, r.text);
    let v = r.json.version;
    const deadline = Date.now() + 60000;
    while (!stopped && Date.now() < deadline) {
      try {
        r = await hold(client, `/flags?wait=${wait}`, { 'If-None-Match': `"${v}"` }, { timeout: (wait + 5) * 1000 });
      } catch (e) {
        error = e; // the server went away
        return;
      }
      if (r.status === 200) {
        const f = r.json.flags.find((x) => x.name === flag);
        seen.push({ t: Date.now(), version: r.json.version, enabled: f?.enabled, percentage: f?.percentage });
        v = r.json.version;
      } else if (r.status !== 304) {
        error = new Error(`long-poll answered ${r.status}: ${r.text}`);
        return;
      }
    }
  })();
  return {
    seen,
    ready: readyP,
    get error() { return error; },
    async stop() { stopped = true; await done; },
  };
}

/** A user whose bucket for flag is in (lo, hi]. */
function userInBucket(flag, lo, hi) {
  for (let i = 0; i < 100000; i++) {
    const u = `user-${i}`;
    const b = bucket(flag, u);
    if (b > lo && b <= hi) return u;
  }
  throw new Error('no such user');
}

async function newToken(admin, name, role, environment) {
  const body = { name, role };
  if (environment) body.environment = environment;
  const r = await admin.post('/api/tokens', body);
  assert.equal(r.status, 201, r.text);
  return r.json.token;
}

// ================================================================ the groups

describe('release plans (docs/api.md §8)', { concurrency: true }, () => {
  // ------------------------------------------------------------ 1
  describe('a plan runs on its own', { concurrency: false }, () => {
    let env;
    before(async () => {
      env = await startEnv();
      await createFlag(env.admin, { name: 'rollout', description: 'r', users: ['vip'] });
    });
    after(async () => { await env?.close(); });

    test('each step is applied once, on time, by plan:<token>; the plan ends done', async () => {
      const steps = [{ percentage: 10, hold_seconds: 1 }, { percentage: 30, hold_seconds: 1 },
        { percentage: 60, hold_seconds: 1 }, { percentage: 100 }];
      const u = userInBucket('rollout', 10, 30); // off at 10 %, on from 30 %
      const v0 = (await env.admin.get('/flags')).json.version;
      assert.equal(await metric(env.server, 'vexil_plan_steps_total'), 0);

      const t0 = Date.now();
      const p = await startPlan(env.admin, 'rollout', { steps });
      const t1 = Date.now();
      assert.equal(p.flag, 'rollout');
      assert.equal(p.environment, 'production');
      assert.equal(p.status, 'running');
      assert.equal(p.step, 0);
      assert.equal(p.percentage, 10);
      assert.deepEqual(p.steps, steps);
      assert.equal(p.on_alert, 'disable', 'on_alert defaults to disable');
      assert.equal(p.started_by, 'it-admin');
      assert.equal(p.reason, null);
      assert.ok(ms(p.started_at) >= t0 - 5 && ms(p.started_at) <= t1 + 5, `started_at ${p.started_at}`);
      assert.equal(ms(p.next_at) - ms(p.started_at), 1000, 'next_at: the first step held 1 s');

      // The first step is applied at once (read-your-writes on this instance).
      assert.deepEqual(await state(env.admin, 'rollout'),
        { enabled: true, percentage: 10, users: ['vip'], segments: [] });
      let r = await env.admin.get('/flags');
      assert.equal(r.json.version, v0 + 1);
      assert.deepEqual(r.json.flags.find((f) => f.name === 'rollout').percentage, 10);
      r = await env.client.get(`/flags?user=${q(u)}`);
      assert.equal(r.json.flags.rollout, false, `${u} (bucket ${bucket('rollout', u)}) is not in 10 %`);
      assert.equal((await env.client.get('/flags?user=vip')).json.flags.rollout, true, 'users stay');

      // Each later step: seen through the API within LATE_MS of its time
      // (the step before it plus its hold), taken (the history's time) not
      // before it and at most SCHED_MS after it, alone.
      let nextAt = ms(p.next_at);
      const log = [];
      for (let i = 1; i < steps.length; i++) {
        const want = steps[i].percentage;
        const prev = steps[i - 1].percentage;
        const s = await waitState(env.admin, 'rollout', (x) => x.percentage !== prev, nextAt + LATE_MS,
          `step ${i} (${want} %) after next_at ${new Date(nextAt).toISOString()}`);
        const seenAt = Date.now();
        const ev = planEvents(await history(env.admin, 'rollout'));
        log.push({ step: i, due: new Date(nextAt).toISOString(), seen: new Date(seenAt).toISOString(), state: s.percentage,
          events: ev.map((e) => `${afterPct(e)}@${e.at}`) });
        const why = `${JSON.stringify(log)} ${stallNote()}`;
        // An observer slowed by a loaded machine may first see a later step;
        // the history (below) is what says each step was taken once, on time.
        assert.ok(steps.slice(i).some((x) => x.percentage === s.percentage), `step ${i}: a state no step has: ${why}`);
        assert.deepEqual({ ...s, percentage: want }, { enabled: true, percentage: want, users: ['vip'], segments: [] },
          `step ${i} changes the percentage only: ${why}`);
        const at = ms(ev.find((e) => afterPct(e) === want).at);
        assert.ok(at >= nextAt - 2, `step ${i} taken before its time: ${why}`);
        assert.ok(at <= nextAt + SCHED_MS, `step ${i} taken more than ${SCHED_MS} ms late: ${why}`);
        const cur = await getPlan(env.admin, 'rollout');
        assert.ok(cur.step >= i, `the plan says step ${cur.step}: ${why}`);
        if (cur.step === i && i < steps.length - 1) {
          assert.equal(cur.status, 'running');
          assert.equal(ms(cur.next_at), at + 1000, 'the next hold counts from when this step was taken');
        }
        nextAt = at + (steps[i].hold_seconds ?? 0) * 1000;
        if (want === 30) {
          r = await env.client.get(`/flags?user=${q(u)}`);
          assert.equal(r.json.flags.rollout, true, `${u} is in 30 %`);
        }
      }
      const fin = await getPlan(env.admin, 'rollout');
      assert.equal(fin.status, 'done');
      assert.equal(fin.next_at, null);
      assert.equal(fin.percentage, 100);
      assert.equal(fin.reason, null);
      assert.deepEqual(await state(env.admin, 'rollout'),
        { enabled: true, percentage: 100, users: ['vip'], segments: [] });

      // Nothing more happens after done.
      await sleep(1200);
      const events = await history(env.admin, 'rollout');
      assert.deepEqual(events.map((e) => e.action), ['create', 'plan', 'plan', 'plan', 'plan']);
      assertSteps(events, steps);
      assert.equal((await env.admin.get('/flags')).json.version, v0 + 4, 'one version step per plan step');
      assert.equal(await metric(env.server, 'vexil_plan_steps_total'), 4, 'first step and three scheduled');
      const done = await getPlan(env.admin, 'rollout');
      assert.equal(done.status, 'done');
      assert.equal(done.step, 3);
    });

    test('GET /api/plans lists it, by environment; vexil_plans counts it', async () => {
      let r = await env.admin.get('/api/plans?env=production');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.json), ['plans']);
      assert.deepEqual(r.json.plans.map((p) => [p.flag, p.environment, p.status]),
        [['rollout', 'production', 'done']]);
      r = await env.admin.get('/api/plans');
      assert.deepEqual(r.json.plans.map((p) => p.flag), ['rollout']);
      assert.equal((await env.admin.post('/api/environments', { name: 'staging' })).status, 201);
      r = await env.admin.get('/api/plans?env=staging');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { plans: [] });
      assertError(await env.admin.get('/api/plans?env=qa'), 404, 'not_found');
      // counted every 5 s
      const n = await until(async () => (await metric(env.server, 'vexil_plans', '{status="done"}')) === 1,
        7000, 'vexil_plans{status="done"} 1');
      assert.ok(n);
      assert.equal(await metric(env.server, 'vexil_plans', '{status="running"}'), 0);
    });
  });

  // ------------------------------------------------------------ 2
  describe('two instances, one killed mid-plan', { concurrency: false }, () => {
    let env;
    let b;
    before(async () => {
      env = await startEnv();
      b = await new Server(env.db.url).start();
      env.extra.push(b);
      await createFlag(env.admin, { name: 'duo' });
    });
    after(async () => {
      // close() stops env.server with SIGTERM: bring it back if it was the one killed.
      if (env?.server.exit) await env.server.start().catch(() => {});
      await env?.close();
    });

    test('every step is taken exactly once and on time; the survivor\'s long-poll sees each', async () => {
      const steps = [{ percentage: 5, hold_seconds: 2 }, { percentage: 20, hold_seconds: 2 },
        { percentage: 50, hold_seconds: 2 }, { percentage: 100 }];
      const servers = [env.server, b];
      // b serves the flag created through env.server (within moments)
      await until(async () => (await b.client(env.clientToken).get('/flags')).json.flags.some((f) => f.name === 'duo'),
        WAKE_MS, 'b serves the new flag');
      const watches = servers.map((s) => longPollWatch(s, env.clientToken, 'duo'));
      try {
        await Promise.all(watches.map((w) => w.ready));
        await sleep(100); // the long-polls are held
        const tPut = Date.now();
        const p = await startPlan(env.admin, 'duo', { steps });
        const putMs = Date.now() - tPut;
        // Step 1 (20 %), taken by whichever scheduler got there first.
        const s1 = await until(async () => {
          const x = await getPlan(b.client(env.adminToken), 'duo');
          return x.step >= 1 ? x : null;
        }, ms(p.next_at) + LATE_MS - Date.now(), 'step 1');
        assert.equal(s1.step, 1);
        // (the counter moves just after the step's transaction commits)
        let counts;
        await until(async () => {
          counts = await Promise.all(servers.map((s) => metric(s, 'vexil_plan_steps_total')));
          return counts[0] + counts[1] === 2;
        }, 2000, 'vexil_plan_steps_total of both instances adds up to 2');
        // env.server started the plan (1); the one that took step 1 has one more.
        const took = counts[0] === 2 ? 0 : 1;
        assert.deepEqual(counts[took] - (took === 0 ? 1 : 0), 1,
          `one instance took step 1: steps taken ${JSON.stringify(counts)}`);
        assert.equal(counts[0] + counts[1], 2, `steps taken ${JSON.stringify(counts)}`);
        const victim = servers[took];
        const survivor = servers[1 - took];
        // SIGKILL the instance whose scheduler took the last step, well before the next is due.
        assert.ok(ms(s1.next_at) - Date.now() > 1000, 'time left before step 2');
        await victim.kill();
        assert.equal(victim.exit.signal, 'SIGKILL');
        const admin = survivor.client(env.adminToken);

        let nextAt = ms(s1.next_at);
        for (let i = 2; i < steps.length; i++) {
          const s = await waitState(admin, 'duo', (x) => x.percentage >= steps[i].percentage, nextAt + LATE_MS,
            `step ${i} on the survivor`);
          assert.equal(s.percentage, steps[i].percentage, `step ${i} alone`);
          const cur = await getPlan(admin, 'duo');
          assert.equal(cur.step, i);
          if (cur.next_at) nextAt = ms(cur.next_at);
        }
        const done = await getPlan(admin, 'duo');
        assert.equal(done.status, 'done');
        assert.equal(done.next_at, null);
        await sleep(300); // the survivor's long-poll has its last answer
        const sw = watches[1 - took];
        const seen = sw.seen.map((x) => x.percentage);
        assert.deepEqual(seen, [5, 20, 50, 100],
          `the survivor's long-poll saw each step once: ${JSON.stringify(sw.seen)}`);
        assert.equal(sw.error, null, `the survivor's long-poll: ${sw.error}`);
        const events = await history(admin, 'duo');
        assert.deepEqual(events.map((e) => e.action), ['create', 'plan', 'plan', 'plan', 'plan']);
        const pe = assertSteps(events, steps);
        // The long-poll answers came within WAKE_MS of each step.
        // (step 0 from the PUT's answer: its event's time is when the request came in)
        for (let i = 0; i < pe.length; i++) {
          const lag = sw.seen[i].t - (i === 0 ? tPut + putMs : ms(pe[i].at));
          assert.ok(lag <= WAKE_MS, `step ${i} reached the survivor (${took === 0 ? 'b' : 'env.server'})'s ` +
            `long-poll ${lag} ms after it was taken (the PUT took ${putMs} ms, step 0 at ${pe[0].at}, ` +
            `PUT sent at ${new Date(tPut).toISOString()}) ${stallNote()}`);
        }
        assert.ok(await metric(survivor, 'vexil_plan_steps_total') >= 2, 'the survivor took the last two steps');
      } finally {
        await Promise.all(watches.map((w) => w.stop()));
      }
    });
  });

  // ------------------------------------------------------------ 3
  describe('a step that fell due while every instance was down', { concurrency: false }, () => {
    let env;
    before(async () => {
      env = await startEnv();
      await createFlag(env.admin, { name: 'late' });
    });
    after(async () => {
      if (env?.server.exit) await env.server.start().catch(() => {});
      await env?.close();
    });

    test('is taken promptly, once, by the first instance to start; the next step is held in full', async () => {
      // 4 s for the first hold: a SIGTERM under ASan on a loaded machine can take 2 s.
      const steps = [{ percentage: 10, hold_seconds: 4 }, { percentage: 40, hold_seconds: 2 }, { percentage: 100 }];
      const p = await startPlan(env.admin, 'late', { steps });
      await env.server.stop(); // SIGTERM: the only instance is gone before the step is due
      assert.ok(Date.now() < ms(p.next_at), 'stopped before the step fell due');
      await sleepUntil(ms(p.next_at) + 1500);
      // Nobody took it.
      assert.equal(await psql(env.db.url,
        "SELECT status || ' ' || step FROM plans WHERE flag = 'late'"), 'running 0');
      assert.equal(await psql(env.db.url,
        "SELECT count(*) FROM flag_events WHERE flag_name = 'late' AND action = 'plan'"), '1');

      const tStart = Date.now();
      await env.server.start();
      const tUp = Date.now();
      // Taken (the plan in the database) promptly ...
      const cur = await until(async () => {
        const x = await getPlan(env.admin, 'late');
        return x.step >= 1 ? x : null;
      }, tUp + SCHED_MS - Date.now(), `the missed step, after a start at ${new Date(tStart).toISOString()}` +
        ` (answering from ${new Date(tUp).toISOString()})`);
      assert.equal(cur.step, 1, 'one missed step, taken once');
      assert.equal(cur.status, 'running');
      let events = await history(env.admin, 'late');
      let pe = planEvents(events);
      assert.equal(pe.length, 2);
      const at1 = ms(pe[1].at);
      const times = `taken at ${pe[1].at}: start ${new Date(tStart).toISOString()}, up ${new Date(tUp).toISOString()}`;
      assert.ok(at1 >= tStart - 5 && at1 <= tUp + SCHED_MS, `the missed step was ${times}`);
      // ... and served by the instance that took it, as any write (docs/propagation.md).
      await waitState(env.admin, 'late', (x) => x.percentage >= 40, Math.max(at1, tUp) + WAKE_MS,
        `the instance serves the step it ${times}`);
      assert.deepEqual(await state(env.admin, 'late'), { enabled: true, percentage: 40, users: [], segments: [] });
      assert.equal(ms(cur.next_at), at1 + 2000, 'the next step is held 2 s from when this one was taken');

      // The next one comes a full hold later, not at once.
      const last = await until(async () => {
        const x = await getPlan(env.admin, 'late');
        return x.status === 'done' ? x : null;
      }, ms(cur.next_at) + LATE_MS - Date.now(), 'the last step');
      assert.equal(last.step, 2);
      events = await history(env.admin, 'late');
      pe = planEvents(events);
      assert.deepEqual(pe.map((e) => afterPct(e)), [10, 40, 100]);
      const gap = ms(pe[2].at) - at1;
      assert.ok(gap >= 2000 - 2 && gap <= 2000 + SCHED_MS, `the last step came ${gap} ms after the missed one`);
    });
  });

  // ------------------------------------------------------------ 4
  describe('people come first', { concurrency: false }, () => {
    let env;
    let anna;
    before(async () => {
      env = await startEnv();
      await createFlag(env.admin, { name: 'manual', description: 'd' });
      assert.equal((await env.admin.post('/api/environments', { name: 'staging' })).status, 201);
      anna = env.server.client(await newToken(env.admin, 'anna', 'admin'));
    });
    after(async () => { await env?.close(); });

    test('users, description, another environment or a no-op do not pause; percentage pauses, enabled:false halts', async () => {
      const steps = [{ percentage: 10, hold_seconds: 2 }, { percentage: 20, hold_seconds: 1 },
        { percentage: 30, hold_seconds: 1 }, { percentage: 100 }];
      const p0 = await startPlan(env.admin, 'manual', { steps });
      const untouched = async (what) => {
        const x = await getPlan(env.admin, 'manual');
        assert.equal(x.status, 'running', `${what} does not pause: ${JSON.stringify(x)}`);
        assert.equal(x.next_at, p0.next_at, `${what}: next_at unchanged`);
        assert.equal(x.reason, null);
      };
      let r = await anna.patch('/api/flags/manual', { users: ['u1'] });
      assert.equal(r.status, 200, r.text);
      await untouched('a PATCH of users');
      r = await anna.patch('/api/flags/manual', { description: 'changed' });
      assert.equal(r.status, 200, r.text);
      await untouched('a PATCH of description');
      r = await anna.patch('/api/flags/manual', { percentage: 10, enabled: true });
      assert.equal(r.status, 200, r.text);
      await untouched('a PATCH that changes nothing');
      r = await anna.patch('/api/flags/manual?env=staging', { enabled: true, percentage: 50 });
      assert.equal(r.status, 200, r.text);
      await untouched('a PATCH of staging');

      // A person moves the percentage: the plan pauses.
      r = await anna.patch('/api/flags/manual', { percentage: 15 });
      assert.equal(r.status, 200, r.text);
      let x = await getPlan(env.admin, 'manual');
      assert.equal(x.status, 'paused');
      assert.equal(x.reason, 'state changed by anna');
      assert.equal(x.next_at, null);
      assert.equal(x.step, 0);
      // ... and no step is taken when the hold runs out.
      await sleepUntil(ms(p0.next_at) + LATE_MS);
      assert.deepEqual(await state(env.admin, 'manual'), { enabled: true, percentage: 15, users: ['u1'], segments: [] });
      assert.equal(planEvents(await history(env.admin, 'manual')).length, 1, 'no step while paused');
      assert.equal((await getPlan(env.admin, 'manual')).status, 'paused');

      // Resume: running, the current step held again in full.
      const tr = Date.now();
      x = await control(env.admin, 'resume', 'manual');
      const tr1 = Date.now();
      assert.equal(x.status, 'running');
      assert.equal(x.reason, null);
      assert.equal(x.step, 0);
      assert.ok(ms(x.next_at) >= tr + 2000 - 5 && ms(x.next_at) <= tr1 + 2000 + 5,
        `next_at ${x.next_at} is now + 2 s (resumed between ${tr} and ${tr1})`);
      const resumedNext = ms(x.next_at);
      const s1 = await waitState(env.admin, 'manual', (y) => y.percentage !== 15, resumedNext + LATE_MS,
        'the step after resume');
      assert.ok(Date.now() >= resumedNext - 5, 'not before its time');
      assert.deepEqual(s1, { enabled: true, percentage: 20, users: ['u1'], segments: [] });
      assert.equal((await getPlan(env.admin, 'manual')).step, 1);

      // A person turns it off: the plan halts, and stays halted.
      r = await anna.patch('/api/flags/manual', { enabled: false });
      assert.equal(r.status, 200, r.text);
      x = await getPlan(env.admin, 'manual');
      assert.equal(x.status, 'halted');
      assert.equal(x.reason, 'turned off by anna');
      assert.equal(x.next_at, null);
      await sleep(1000 + LATE_MS);
      assert.equal((await state(env.admin, 'manual')).enabled, false);
      assert.equal(planEvents(await history(env.admin, 'manual')).length, 2, 'no step after the halt');
      assert.equal((await getPlan(env.admin, 'manual')).status, 'halted');
      // staging kept what anna set there
      assert.deepEqual(await state(env.admin, 'manual', 'staging'), { enabled: true, percentage: 50, users: [], segments: [] });
    });

    test('a revert that moves the state pauses the new plan', async () => {
      const events = await history(env.admin, 'manual');
      const pct15 = events.find((e) => e.action === 'update' && e.actor === 'anna' &&
        e.after.environments.production.percentage === 15);
      assert.ok(pct15, 'the PATCH to 15 % is in the history');
      await startPlan(env.admin, 'manual', { steps: [{ percentage: 30, hold_seconds: 3600 }, { percentage: 100 }] });
      // Reverting it puts production back to enabled, 10 %.
      const r = await env.admin.post('/api/flags/manual/revert', { event: pct15.id });
      assert.equal(r.status, 200, r.text);
      const x = await getPlan(env.admin, 'manual');
      assert.equal(x.status, 'paused');
      assert.equal(x.reason, 'state changed by it-admin');
      assert.deepEqual(await state(env.admin, 'manual'), { enabled: true, percentage: 10, users: ['u1'], segments: [] });
    });
  });

  // ------------------------------------------------------------ 5
  describe('pause, resume, advance, abort', { concurrency: false }, () => {
    let env;
    let anna;
    let api;
    const H = 3600; // the scheduler never gets there
    before(async () => {
      env = await startEnv();
      await createFlag(env.admin, { name: 'ctl' });
      await createFlag(env.admin, { name: 'other' });
      assert.equal((await env.admin.post('/api/environments', { name: 'staging' })).status, 201);
      anna = env.server.client(await newToken(env.admin, 'anna', 'admin'));
      api = plans(env.admin);
    });
    after(async () => { await env?.close(); });

    const conflict = async (res, what) => {
      assertError(await res, 409, 'conflict');
      return what;
    };

    test('no plan yet: GET and the controls are 404', async () => {
      assertError(await api.get('ctl'), 404, 'not_found');
      for (const op of ['pause', 'resume', 'abort', 'advance']) assertError(await api[op]('ctl'), 404, 'not_found');
    });

    test('running → pause → advance → advance → abort, and the 409s on the way', async () => {
      const steps = [{ percentage: 5, hold_seconds: H }, { percentage: 25, hold_seconds: H },
        { percentage: 50, hold_seconds: H }, { percentage: 100 }];
      await startPlan(env.admin, 'ctl', { steps });
      const v0 = (await env.admin.get('/flags')).json.version;
      await conflict(api.resume('ctl'), 'resume a running plan');

      let x = await control(env.admin, 'pause', 'ctl');
      assert.equal(x.status, 'paused');
      assert.equal(x.reason, 'paused by a person');
      assert.equal(x.next_at, null);
      await conflict(api.pause('ctl'), 'pause a paused plan');
      assert.equal((await env.admin.get('/flags')).json.version, v0, 'a pause writes no state');

      // advance from paused: the next step now, running again, its hold from now
      let t = Date.now();
      x = await control(anna, 'advance', 'ctl');
      assert.equal(x.status, 'running');
      assert.equal(x.step, 1);
      assert.equal(x.percentage, 25);
      assert.equal(x.reason, null);
      assert.ok(Math.abs(ms(x.next_at) - (t + H * 1000)) < 2000, `next_at ${x.next_at}`);
      assert.deepEqual(await state(env.admin, 'ctl'), { enabled: true, percentage: 25, users: [], segments: [] });
      assert.equal((await env.admin.get('/flags')).json.version, v0 + 1);

      // advance from running
      t = Date.now();
      x = await control(env.admin, 'advance', 'ctl');
      assert.equal(x.status, 'running');
      assert.equal(x.step, 2);
      assert.equal((await state(env.admin, 'ctl')).percentage, 50);

      // abort: the state stays as it is
      const before = await history(env.admin, 'ctl');
      x = await control(env.admin, 'abort', 'ctl');
      assert.equal(x.status, 'aborted');
      assert.equal(x.next_at, null);
      assert.equal(x.step, 2);
      assert.deepEqual(await state(env.admin, 'ctl'), { enabled: true, percentage: 50, users: [], segments: [] });
      assert.deepEqual(await history(env.admin, 'ctl'), before, 'abort writes no event');
      assert.equal((await env.admin.get('/flags')).json.version, v0 + 2);
      for (const op of ['abort', 'pause', 'resume', 'advance']) await conflict(api[op]('ctl'), `${op} an aborted plan`);
      assert.equal((await getPlan(env.admin, 'ctl')).status, 'aborted', 'GET shows an ended plan');

      const events = await history(env.admin, 'ctl');
      // every step is an event of plan:<started_by>, also when anna advanced it
      assertSteps(events, steps.slice(0, 3), { timing: false });
    });

    test('a one-step plan is done at once; a done plan refuses every control', async () => {
      const x = await startPlan(env.admin, 'ctl', { steps: [{ percentage: 70 }] });
      assert.equal(x.status, 'done');
      assert.equal(x.next_at, null);
      assert.equal(x.step, 0);
      assert.deepEqual(await state(env.admin, 'ctl'), { enabled: true, percentage: 70, users: [], segments: [] });
      for (const op of ['advance', 'abort', 'pause', 'resume']) await conflict(api[op]('ctl'), `${op} a done plan`);
    });

    test('advance to the last step ends the plan done', async () => {
      await startPlan(env.admin, 'ctl', { steps: [{ percentage: 30, hold_seconds: H }, { percentage: 60 }] });
      const x = await control(env.admin, 'advance', 'ctl');
      assert.equal(x.status, 'done');
      assert.equal(x.step, 1);
      assert.equal(x.percentage, 60);
      assert.equal(x.next_at, null);
      await conflict(api.advance('ctl'), 'advance past the last step');
      assert.equal((await state(env.admin, 'ctl')).percentage, 60);
    });

    test('a halted plan: resume, pause, advance are 409 with the documented message; abort is allowed', async () => {
      await startPlan(env.admin, 'ctl', { steps: [{ percentage: 40, hold_seconds: H }, { percentage: 80 }] });
      await control(env.admin, 'pause', 'ctl');
      // a person turns the flag off: a paused plan is halted too
      assert.equal((await anna.patch('/api/flags/ctl', { enabled: false })).status, 200);
      const h = await getPlan(env.admin, 'ctl');
      assert.equal(h.status, 'halted');
      assert.equal(h.reason, 'turned off by anna');
      const r = await api.resume('ctl');
      assertError(r, 409, 'conflict');
      assert.equal(r.json.error.message, "the release plan of 'ctl' in production is halted: it cannot resume");
      for (const op of ['pause', 'advance']) await conflict(api[op]('ctl'), `${op} a halted plan`);
      assert.equal((await state(env.admin, 'ctl')).enabled, false, 'the refused advance changed nothing');
      const x = await control(env.admin, 'abort', 'ctl');
      assert.equal(x.status, 'aborted');
      assert.equal(x.next_at, null);
      assert.equal((await state(env.admin, 'ctl')).enabled, false, 'abort leaves the state as it is');
    });

    test('a plan in staging moves staging only; GET /api/plans by environment, sorted by flag', async () => {
      const vp = (await env.admin.get('/flags?env=production')).json.version;
      const x = await startPlan(env.admin, 'other', { steps: [{ percentage: 5, hold_seconds: H }, { percentage: 100 }] }, 'staging');
      assert.equal(x.environment, 'staging');
      assert.deepEqual(await state(env.admin, 'other', 'staging'), { enabled: true, percentage: 5, users: [], segments: [] });
      assert.deepEqual(await state(env.admin, 'other', 'production'), { enabled: false, percentage: 0, users: [], segments: [] });
      assert.equal((await env.admin.get('/flags?env=production')).json.version, vp, 'production did not move');
      assertError(await api.get('other'), 404, 'not_found'); // none in production
      const ev = planEvents(await history(env.admin, 'other'));
      assert.deepEqual(ev.map((e) => e.environments), [['staging']]);
      let r = await env.admin.get('/api/plans?env=staging');
      assert.deepEqual(r.json.plans.map((p) => p.flag), ['other']);
      await startPlan(env.admin, 'ctl', { steps: [{ percentage: 1, hold_seconds: H }, { percentage: 2 }] }, 'staging');
      r = await env.admin.get('/api/plans?env=staging');
      assert.deepEqual(r.json.plans.map((p) => p.flag), ['ctl', 'other']);
      r = await env.admin.get('/api/plans');
      assert.deepEqual(r.json.plans.map((p) => `${p.flag}/${p.environment}`),
        ['ctl/production', 'ctl/staging', 'other/staging']);
      for (const p of r.json.plans) assertPlanShape(p);
    });

    test('deleting an environment deletes its plans', async () => {
      assert.equal((await env.admin.post('/api/environments', { name: 'qa' })).status, 201);
      await startPlan(env.admin, 'other', { steps: [{ percentage: 5, hold_seconds: H }, { percentage: 100 }] }, 'qa');
      let r = await env.admin.get('/api/plans');
      assert.ok(r.json.plans.some((p) => p.environment === 'qa'), 'the qa plan is listed');
      assert.equal((await env.admin.del('/api/environments/qa')).status, 204);
      r = await env.admin.get('/api/plans');
      assert.deepEqual(r.json.plans.filter((p) => p.environment === 'qa'), []);
      assert.equal((await env.admin.post('/api/environments', { name: 'qa' })).status, 201);
      assertError(await api.get('other', 'qa'), 404, 'not_found');
    });

    test('deleting the flag deletes its plans', async () => {
      assert.equal((await env.admin.del('/api/flags/other')).status, 204);
      assertError(await api.get('other', 'staging'), 404, 'not_found');
      await createFlag(env.admin, { name: 'other' });
      assertError(await api.get('other', 'staging'), 404, 'not_found');
      const r = await env.admin.get('/api/plans?env=staging');
      assert.deepEqual(r.json.plans.map((p) => p.flag), ['ctl']);
    });
  });

  // ------------------------------------------------------------ 6
  describe('alerts from Alertmanager', { concurrency: false }, () => {
    let env;
    let b; // a second instance
    let bClient; // a production client token, held on b
    const H = 3600;
    const steps = [{ percentage: 10, hold_seconds: H }, { percentage: 50, hold_seconds: H }, { percentage: 100 }];
    before(async () => {
      env = await startEnv();
      b = await new Server(env.db.url).start();
      env.extra.push(b);
      bClient = b.client(env.clientToken);
      assert.equal((await env.admin.post('/api/environments', { name: 'staging' })).status, 201);
    });
    after(async () => { await env?.close(); });

    const post = (payload, client = env.admin) => client.post('/api/alerts', payload);

    test('the fixture is Alertmanager\'s webhook payload, version 4', () => {
      const p = JSON.parse(readFileSync(path.join(FIXTURES, 'firing.json'), 'utf8'));
      for (const k of ['version', 'groupKey', 'truncatedAlerts', 'status', 'receiver', 'groupLabels',
        'commonLabels', 'commonAnnotations', 'externalURL', 'alerts']) assert.ok(k in p, k);
      assert.equal(p.version, '4');
      for (const k of ['status', 'labels', 'annotations', 'startsAt', 'endsAt', 'generatorURL', 'fingerprint']) {
        assert.ok(k in p.alerts[0], `alerts[].${k}`);
      }
      // What Alertmanager 0.25 really sent to deploy/alertmanager/alertmanager.yml's receiver
      // (externalURL replaced): the same fields (newer versions add notification_reason).
      const c = JSON.parse(readFileSync(path.join(FIXTURES, 'captured-0.25-firing.json'), 'utf8'));
      assert.deepEqual(Object.keys(c).sort(), Object.keys(p).filter((k) => k !== 'notification_reason').sort());
      assert.deepEqual(Object.keys(c.alerts[0]).sort(), Object.keys(p.alerts[0]).sort());
      assert.equal(c.groupKey, p.groupKey);
    });

    test('on_alert=disable: the flag is turned off, at once on the other instance, and the plan halted', async () => {
      await createFlag(env.admin, { name: 'checkout.v2', environments: { staging: { enabled: true, percentage: 30 } } });
      await startPlan(env.admin, 'checkout.v2', { steps, on_alert: 'disable' });
      const disabled0 = await metric(env.server, 'vexil_alerts_total', '{outcome="disabled"}');
      // b serves the first step within moments (docs/propagation.md)
      let r = await until(async () => {
        const x = await bClient.get('/flags');
        return x.json.flags.find((f) => f.name === 'checkout.v2')?.enabled === true ? x : null;
      }, WAKE_MS, 'b serves the first step');
      const v = r.json.version;
      const held = hold(bClient, '/flags?wait=10', { 'If-None-Match': `"${v}"` });
      await sleep(150);
      const woke = settledAt(held);
      const w = await timeWrite(async () => {
        r = await post(alertPayload('firing.json', {})); // the fixture as it is: checkout.v2 in production
      });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.json).sort(), ['ignored', 'results']);
      assert.equal(r.json.ignored, 0);
      assert.equal(r.json.results.length, 1);
      const res = r.json.results[0];
      assert.deepEqual(
        { alert: res.alert, flag: res.flag, environment: res.environment, action: res.action, detail: res.detail },
        { alert: 'CheckoutErrors', flag: 'checkout.v2', environment: 'production', action: 'disabled',
          detail: 'the flag was turned off' });
      assertPlanShape(res.plan, 'results[0].plan');
      assert.equal(res.plan.status, 'halted');
      assert.equal(res.plan.reason, 'alert CheckoutErrors fired');
      const { r: h, at } = await woke;
      assert.equal(h.status, 200, 'the held long-poll on the other instance is answered');
      assertWokeBy(w, at, 'the long-poll held on the other instance');
      assert.equal(h.json.flags.find((f) => f.name === 'checkout.v2').enabled, false);

      assert.equal((await state(env.admin, 'checkout.v2')).enabled, false);
      assert.deepEqual(await state(env.admin, 'checkout.v2', 'staging'),
        { enabled: true, percentage: 30, users: [], segments: [] }, 'staging untouched');
      const x = await getPlan(env.admin, 'checkout.v2');
      assert.equal(x.status, 'halted');
      assert.equal(x.reason, 'alert CheckoutErrors fired');
      const events = await history(env.admin, 'checkout.v2');
      const last = events.at(-1);
      assert.equal(last.action, 'alert');
      assert.equal(last.actor, 'alert:CheckoutErrors');
      assert.deepEqual(last.environments, ['production']);
      assert.equal(last.after.environments.production.enabled, false);
      assert.deepEqual(events.map((e) => e.action), ['create', 'plan', 'alert']);
      assert.equal(await metric(env.server, 'vexil_alerts_total', '{outcome="disabled"}'), disabled0 + 1);
    });

    test('on_alert=pause: the plan pauses, the state stays; a second alert finds it paused', async () => {
      await createFlag(env.admin, { name: 'soft' });
      await startPlan(env.admin, 'soft', { steps, on_alert: 'pause' });
      const hist0 = await history(env.admin, 'soft');
      const paused0 = await metric(env.server, 'vexil_alerts_total', '{outcome="paused"}');
      let r = await post(alertPayload('firing.json', { labels: { vexil_flag: 'soft', alertname: 'SoftErrors' } }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].action, 'paused');
      assert.equal(r.json.results[0].detail, 'the release plan paused');
      assert.equal(r.json.results[0].plan.status, 'paused');
      const x = await getPlan(env.admin, 'soft');
      assert.equal(x.status, 'paused');
      assert.equal(x.reason, 'alert SoftErrors fired');
      assert.deepEqual(await state(env.admin, 'soft'), { enabled: true, percentage: 10, users: [], segments: [] });
      assert.deepEqual(await history(env.admin, 'soft'), hist0, 'no event');
      assert.equal(await metric(env.server, 'vexil_alerts_total', '{outcome="paused"}'), paused0 + 1);
      r = await post(alertPayload('firing.json', { labels: { vexil_flag: 'soft', alertname: 'SoftErrors' } }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].action, 'none');
      assert.equal(r.json.results[0].detail, 'the release plan was already paused');
      assert.equal((await getPlan(env.admin, 'soft')).status, 'paused');
    });

    test('vexil_action="disable" turns a flag off without a plan; without it nothing happens', async () => {
      await createFlag(env.admin, { name: 'kill', enabled: true, percentage: 100 });
      let r = await post(alertPayload('firing.json', { labels: { vexil_flag: 'kill' } }));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.results.map((x) => [x.action, x.detail, x.plan]),
        [['none', 'no release plan is running', null]]);
      assert.equal((await state(env.admin, 'kill')).enabled, true);
      r = await post(alertPayload('firing.json',
        { labels: { vexil_flag: 'kill', vexil_action: 'disable', alertname: 'KillCheckout' } }));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.results.map((x) => [x.action, x.plan]), [['disabled', null]]);
      assert.equal((await state(env.admin, 'kill')).enabled, false);
      const killed = await history(env.admin, 'kill');
      const last = killed.at(-1);
      assert.deepEqual([last.action, last.actor], ['alert', 'alert:KillCheckout']);
      // Alertmanager repeats a firing alert: turning off a flag that is off writes nothing
      // (an ordinary write that changes nothing, docs/api.md §3).
      const v = (await env.admin.get('/flags')).json.version;
      r = await post(alertPayload('firing.json',
        { labels: { vexil_flag: 'kill', vexil_action: 'disable', alertname: 'KillCheckout' } }));
      assert.equal(r.status, 200, r.text);
      assert.equal((await state(env.admin, 'kill')).enabled, false);
      assert.deepEqual(await history(env.admin, 'kill'), killed, 'a repeated alert records nothing');
      assert.equal((await env.admin.get('/flags')).json.version, v, 'a repeated alert wakes no client');

      // The payload Alertmanager 0.25 sent, as it is: checkout.v2 in production,
      // whose plan an alert already halted (the first test): nothing more to do.
      const hist = await history(env.admin, 'checkout.v2');
      r = await post(JSON.parse(readFileSync(path.join(FIXTURES, 'captured-0.25-firing.json'), 'utf8')));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.results.map((x) => [x.alert, x.flag, x.environment, x.action, x.plan?.status]),
        [['CheckoutErrors', 'checkout.v2', 'production', 'none', 'halted']]);
      assert.deepEqual(await history(env.admin, 'checkout.v2'), hist);
    });

    test('a resolved alert, or one without vexil_flag, changes nothing and is counted in ignored', async () => {
      await createFlag(env.admin, { name: 'calm' });
      await startPlan(env.admin, 'calm', { steps });
      const before = { counts: await tableCounts(env.db.url), plan: await getPlan(env.admin, 'calm') };
      const resolved = alertPayload('resolved.json', { labels: { vexil_flag: 'calm' } });
      assert.equal(resolved.alerts[0].status, 'resolved');
      let r = await post(resolved);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { results: [], ignored: 1 });
      r = await post(alertPayload('firing.json', { labels: { vexil_flag: undefined } },
        { status: 'resolved', labels: { vexil_flag: 'calm', vexil_action: 'disable' } }));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { results: [], ignored: 2 });
      r = await post(alertPayload('firing.json'));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { results: [], ignored: 0 }, 'a payload with no alerts');
      assert.deepEqual(await tableCounts(env.db.url), before.counts);
      assert.deepEqual(await getPlan(env.admin, 'calm'), before.plan);
      assert.equal((await state(env.admin, 'calm')).enabled, true);
    });

    test('an unknown flag or environment is reported and changes nothing; the other alerts still apply', async () => {
      await createFlag(env.admin, { name: 'mixed', enabled: true, percentage: 40 });
      await createFlag(env.admin, { name: 'bystander', enabled: true, percentage: 40 });
      const unknown0 = await metric(env.server, 'vexil_alerts_total', '{outcome="unknown_flag"}');
      const bystander = await history(env.admin, 'bystander');
      const r = await post(alertPayload('firing.json',
        { labels: { vexil_flag: 'no_such_flag', vexil_action: 'disable' } },
        { labels: { vexil_flag: 'mixed', vexil_action: 'disable', alertname: 'MixedErrors' } },
        { labels: { vexil_flag: 'bystander', vexil_env: 'qa', vexil_action: 'disable' } },
        { labels: { vexil_flag: 'not a name!', vexil_action: 'disable' } },
        { labels: { vexil_flag: 'bystander', vexil_env: 'QA!', vexil_action: 'disable' } }));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.results.map((x) => [x.flag, x.environment, x.action, x.detail]), [
        ['no_such_flag', 'production', 'unknown_flag', 'no flag has this name'],
        ['mixed', 'production', 'disabled', 'the flag was turned off'],
        ['bystander', 'qa', 'unknown_environment', 'no environment has this name'],
        ['not a name!', 'production', 'unknown_flag', 'no flag has this name'],
        ['bystander', 'QA!', 'unknown_environment', 'no environment has this name'],
      ]);
      assert.deepEqual(r.json.results.map((x) => x.plan), [null, null, null, null, null]);
      assert.equal(r.json.ignored, 0);
      assert.equal((await state(env.admin, 'mixed')).enabled, false);
      assert.equal((await state(env.admin, 'bystander')).enabled, true);
      assert.deepEqual(await history(env.admin, 'bystander'), bystander);
      assertError(await env.admin.get('/api/flags/no_such_flag/history'), 404, 'not_found');
      assert.equal(await metric(env.server, 'vexil_alerts_total', '{outcome="unknown_flag"}'), unknown0 + 2);
    });

    test('vexil_env picks the environment; without it, the default', async () => {
      await createFlag(env.admin, {
        name: 'both', enabled: true, percentage: 100, environments: { staging: { enabled: true, percentage: 100 } },
      });
      const vProd = (await env.admin.get('/flags?env=production')).json.version;
      let r = await post(alertPayload('firing.json',
        { labels: { vexil_flag: 'both', vexil_env: 'staging', vexil_action: 'disable' } }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].environment, 'staging');
      assert.equal((await state(env.admin, 'both', 'staging')).enabled, false);
      assert.equal((await state(env.admin, 'both', 'production')).enabled, true);
      assert.equal((await env.admin.get('/flags?env=production')).json.version, vProd, 'production did not move');
      const last = (await history(env.admin, 'both')).at(-1);
      assert.deepEqual(last.environments, ['staging']);

      r = await post(alertPayload('firing.json',
        { labels: { vexil_flag: 'both', vexil_env: undefined, vexil_action: 'disable' } }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].environment, 'production');
      assert.equal((await state(env.admin, 'both', 'production')).enabled, false);

      // A plan in staging, the alert for production: the staging plan runs on.
      await createFlag(env.admin, { name: 'split' });
      await startPlan(env.admin, 'split', { steps }, 'staging');
      r = await post(alertPayload('firing.json', { labels: { vexil_flag: 'split', vexil_env: 'production' } }));
      assert.equal(r.json.results[0].action, 'none');
      assert.equal((await getPlan(env.admin, 'split', 'staging')).status, 'running');
      r = await post(alertPayload('firing.json', { labels: { vexil_flag: 'split', vexil_env: 'staging' } }));
      assert.equal(r.json.results[0].action, 'disabled');
      assert.equal((await getPlan(env.admin, 'split', 'staging')).status, 'halted');
      assert.equal((await state(env.admin, 'split', 'staging')).enabled, false);
    });

    test('an alert on a plan paused by a person with on_alert=disable turns the flag off and halts it', async () => {
      await createFlag(env.admin, { name: 'held' });
      await startPlan(env.admin, 'held', { steps });
      await control(env.admin, 'pause', 'held');
      const r = await post(alertPayload('firing.json', { labels: { vexil_flag: 'held' } }), b.client(env.adminToken));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].action, 'disabled');
      assert.equal((await getPlan(env.admin, 'held')).status, 'halted');
      await waitState(env.admin, 'held', (x) => x.enabled === false, Date.now() + WAKE_MS, 'off on the other instance too');
    });
  });

  // ------------------------------------------------------------ 7
  describe('bad requests change nothing (the §8 error table)', { concurrency: false }, () => {
    let env;
    let api;
    let frontend;
    let snapshot;
    const ok = [{ percentage: 10, hold_seconds: 3600 }, { percentage: 100 }];
    before(async () => {
      env = await startEnv();
      api = plans(env.admin);
      await createFlag(env.admin, { name: 'bad', enabled: true, percentage: 3, users: ['a'] });
      frontend = await newToken(env.admin, 'web', 'frontend');
    });
    after(async () => { await env?.close(); });

    const take = async () => ({
      counts: await tableCounts(env.db.url),
      state: await state(env.admin, 'bad'),
      history: await history(env.admin, 'bad'),
      version: (await env.admin.get('/flags')).json.version,
    });
    const assertSame = async (what) => {
      const now = await take();
      for (const k of Object.keys(snapshot)) assert.deepEqual(now[k], snapshot[k], `${what}: ${k} changed`);
    };

    test('invalid steps, holds and on_alert are 400 invalid_value naming the step', async () => {
      snapshot = await take();
      const range = (n) => Array.from({ length: n }, (_, i) => ({ percentage: i + 1, hold_seconds: 1 }));
      const cases = [
        [{ steps: [{ percentage: 10, hold_seconds: 1 }, { percentage: 10 }] }, 'steps[1]'],
        [{ steps: [{ percentage: 20, hold_seconds: 1 }, { percentage: 10 }] }, 'steps[1]'],
        [{ steps: [{ percentage: 0, hold_seconds: 1 }, { percentage: 10 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10, hold_seconds: 1 }, { percentage: 101 }] }, 'steps[1]'],
        [{ steps: [{ percentage: -5 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10.5 }] }, 'steps[0]'],
        [{ steps: [{ percentage: '10' }] }, 'steps[0]'],
        [{ steps: [{ hold_seconds: 5 }, { percentage: 10 }] }, 'steps[0]'],
        [{ steps: [10, 20] }, 'steps[0]'],
        [{ steps: range(21) }, 'steps'],
        [{ steps: [] }, 'steps'],
        [{}, 'steps'],
        [{ steps: null }, 'steps'],
        [{ steps: { percentage: 10 } }, 'steps'],
        [{ steps: [{ percentage: 10, hold_seconds: 0 }, { percentage: 20 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10, hold_seconds: 7776001 }, { percentage: 20 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10, hold_seconds: -1 }, { percentage: 20 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10, hold_seconds: 1.5 }, { percentage: 20 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10, hold_seconds: '60' }, { percentage: 20 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10 }, { percentage: 20 }] }, 'steps[0]'],
        [{ steps: [{ percentage: 10, hold_seconds: 1 }, { percentage: 20 }, { percentage: 30 }] }, 'steps[1]'],
        [{ steps: ok, on_alert: 'explode' }, 'on_alert'],
        [{ steps: ok, on_alert: 1 }, 'on_alert'],
        [{ steps: ok, on_alert: 'DISABLE' }, 'on_alert'],
      ];
      for (const [body, names] of cases) {
        const r = await api.put('bad', body);
        assertError(r, 400, 'invalid_value');
        assert.ok(r.json.error.message.includes(names),
          `${JSON.stringify(body).slice(0, 120)}: message names ${names}: ${r.json.error.message}`);
      }
      await assertSame('invalid plans');
      assertError(await api.get('bad'), 404, 'not_found');
    });

    test('unknown fields are 400 unknown_field; a body that is not an object or not JSON is 400', async () => {
      let r = await api.put('bad', { steps: ok, start: 'now' });
      assertError(r, 400, 'unknown_field');
      assert.match(r.json.error.message, /start/);
      r = await api.put('bad', { steps: [{ percentage: 10, hold_seconds: 60, wait: 1 }, { percentage: 20 }] });
      assertError(r, 400, 'unknown_field');
      assert.match(r.json.error.message, /wait/);
      assertError(await api.put('bad', [ok]), 400, 'bad_request');
      assertError(await env.admin.request('PUT', '/api/flags/bad/plan', { raw: '{"steps": [' }), 400, 'invalid_json');
      assertError(await env.admin.request('PUT', '/api/flags/bad/plan', { raw: '' }), 400, 'invalid_json');
      await assertSame('unknown fields');
    });

    test('an unknown flag or environment is 404', async () => {
      for (const p of ['/api/flags/nope/plan', '/api/flags/bad/plan?env=qa', '/api/flags/bad%20name/plan']) {
        assertError(await env.admin.request('PUT', p, { body: { steps: ok } }), 404, 'not_found');
        assertError(await env.admin.get(p), 404, 'not_found');
        for (const op of ['pause', 'resume', 'abort', 'advance']) {
          const [a, b] = p.split('?');
          assertError(await env.admin.post(`${a}/${op}${b ? `?${b}` : ''}`), 404, 'not_found');
        }
      }
      await assertSame('unknown flag or environment');
    });

    test('the boundaries are accepted: 20 steps, a hold of 90 days, 1 % and 100 %', async () => {
      await createFlag(env.admin, { name: 'edge' });
      const steps = Array.from({ length: 20 }, (_, i) => ({ percentage: i * 5 + 5, hold_seconds: 7776000 }));
      delete steps[19].hold_seconds;
      let x = await startPlan(env.admin, 'edge', { steps });
      assert.equal(x.steps.length, 20);
      assert.equal(ms(x.next_at) - ms(x.started_at), 7776000 * 1000);
      await control(env.admin, 'abort', 'edge');
      x = await startPlan(env.admin, 'edge', { steps: [{ percentage: 1, hold_seconds: 1 }, { percentage: 100 }], on_alert: 'pause' });
      assert.equal(x.on_alert, 'pause');
      await control(env.admin, 'abort', 'edge');
    });

    test('a second plan while one runs or is paused is 409; after abort it is allowed', async () => {
      await startPlan(env.admin, 'bad', { steps: [{ percentage: 10, hold_seconds: 3600 }, { percentage: 100 }] });
      snapshot = await take();
      let r = await api.put('bad', { steps: [{ percentage: 50 }] });
      assertError(r, 409, 'conflict');
      assert.equal(r.json.error.message, "a release plan is already running for 'bad' in production: abort it first");
      await assertSame('409 while running');
      await control(env.admin, 'pause', 'bad');
      snapshot = await take();
      assertError(await api.put('bad', { steps: [{ percentage: 50 }] }), 409, 'conflict');
      await assertSame('409 while paused');
      assert.equal((await getPlan(env.admin, 'bad')).status, 'paused');
      await control(env.admin, 'abort', 'bad');
      const x = await startPlan(env.admin, 'bad', { steps: [{ percentage: 50 }] });
      assert.equal(x.status, 'done');
      assert.equal((await state(env.admin, 'bad')).percentage, 50);
    });

    test('a body that is not Alertmanager\'s payload is 400 invalid_value and changes nothing', async () => {
      await env.admin.patch('/api/flags/bad', { enabled: true });
      snapshot = await take();
      const good = () => alertPayload('firing.json', { labels: { vexil_flag: 'bad', vexil_action: 'disable' } });
      const cases = {
        'no version': (p) => { delete p.version; },
        'version "3"': (p) => { p.version = '3'; },
        'version 4 as a number': (p) => { p.version = 4; },
        'no alerts': (p) => { delete p.alerts; },
        'alerts an object': (p) => { p.alerts = { 0: p.alerts[0] }; },
        'alerts a string': (p) => { p.alerts = 'firing'; },
        'an alert without labels': (p) => { delete p.alerts[0].labels; },
        'labels an array': (p) => { p.alerts[0].labels = [['vexil_flag', 'bad']]; },
        'an alert without status': (p) => { delete p.alerts[0].status; },
        'an alert with status "pending"': (p) => { p.alerts[0].status = 'pending'; },
        'an alert that is a string': (p) => { p.alerts = ['bad']; },
        'vexil_flag a number': (p) => { p.alerts[0].labels.vexil_flag = 5; },
        'alertname null': (p) => { p.alerts[0].labels.alertname = null; },
        'vexil_env a boolean': (p) => { p.alerts[0].labels.vexil_env = true; },
        // "a label that is not a string": any label, not only vexil's
        'severity a number': (p) => { p.alerts[0].labels.severity = 2; },
        // the whole payload is checked first: a good alert before a bad one is not applied
        'a good alert, then a bad one': (p) => {
          p.alerts.push({ ...structuredClone(p.alerts[0]), labels: { alertname: 'X', vexil_flag: 7 } });
        },
        'a good alert, then one with a numeric label': (p) => {
          p.alerts.push({ ...structuredClone(p.alerts[0]), labels: { ...p.alerts[0].labels, instance: 9100 } });
        },
      };
      // Every case is tried, and every one that was not refused, or changed
      // something, is listed (then the flag is put back for the next case).
      const wrong = [];
      for (const [what, mutate] of Object.entries(cases)) {
        const p = good();
        mutate(p);
        const r = await env.admin.post('/api/alerts', p);
        if (r.status !== 400) wrong.push(`${what}: ${r.status} ${r.text.slice(0, 200)}`);
        else assertError(r, 400, 'invalid_value');
        const now = await take();
        const changed = Object.keys(snapshot).filter((k) => !isDeepStrictEqual(now[k], snapshot[k]));
        if (changed.length) {
          wrong.push(`${what}: changed ${changed.join(', ')}: ${JSON.stringify(now.state)}`);
          assert.equal((await env.admin.patch('/api/flags/bad', { enabled: true })).status, 200);
          snapshot = await take();
        }
      }
      assert.deepEqual(wrong, [], 'payloads that are not Alertmanager\'s must be refused, changing nothing (docs/api.md §8)');
      assertError(await env.admin.post('/api/alerts', [good()]), 400, ['bad_request', 'invalid_value']);
      assertError(await env.admin.request('POST', '/api/alerts', { raw: '{"version":"4",' }), 400, 'invalid_json');
      await assertSame('alerts');
    });

    test('tokens: none or unknown is 401, client and frontend are 403, on every route', async () => {
      snapshot = await take();
      const routes = [
        ['PUT', '/api/flags/bad/plan', { steps: [{ percentage: 90 }] }],
        ['GET', '/api/flags/bad/plan'],
        ['POST', '/api/flags/bad/plan/pause'],
        ['POST', '/api/flags/bad/plan/resume'],
        ['POST', '/api/flags/bad/plan/abort'],
        ['POST', '/api/flags/bad/plan/advance'],
        ['GET', '/api/plans'],
        ['POST', '/api/alerts', alertPayload('firing.json', { labels: { vexil_flag: 'bad', vexil_action: 'disable' } })],
      ];
      const who = [
        [env.server.client(null), 401, 'unauthorized'],
        [env.server.client('vx_' + 'A'.repeat(43)), 401, 'unauthorized'],
        [env.client, 403, 'forbidden'],
        [env.server.client(frontend), 403, 'forbidden'],
      ];
      for (const [method, p, body] of routes) {
        for (const [c, status, code] of who) {
          const r = await c.request(method, p, { body });
          assertError(r, status, code);
          if (status === 401) assert.match(r.headers.get('www-authenticate') || '', /^Bearer realm="vexil"$/, `${method} ${p}`);
        }
        const r = await env.admin.request(method, p, { body, headers: { Authorization: `Basic ${env.adminToken}` } });
        assertError(r, 401, 'unauthorized');
      }
      await assertSame('refused tokens');
    });

    test('a wrong method is 405 with Allow', async () => {
      const cases = [
        ['DELETE', '/api/flags/bad/plan', ['GET', 'HEAD', 'PUT']],
        ['POST', '/api/flags/bad/plan', ['GET', 'HEAD', 'PUT']],
        ['GET', '/api/flags/bad/plan/pause', ['POST']],
        ['PUT', '/api/flags/bad/plan/resume', ['POST']],
        ['DELETE', '/api/flags/bad/plan/abort', ['POST']],
        ['GET', '/api/flags/bad/plan/advance', ['POST']],
        ['POST', '/api/plans', ['GET', 'HEAD']],
        ['GET', '/api/alerts', ['POST']],
        ['PUT', '/api/alerts', ['POST']],
      ];
      for (const [method, p, allow] of cases) {
        for (const c of [env.admin, env.server.client(null)]) {
          const r = await c.request(method, p);
          assertError(r, 405, 'method_not_allowed');
          const got = (r.headers.get('allow') || '').split(',').map((s) => s.trim()).filter(Boolean).sort();
          assert.deepEqual(got, allow.slice().sort(), `${method} ${p}: Allow`);
        }
      }
      assertError(await env.admin.get('/api/flags/bad/plan/restart'), 404, 'not_found');
    });
  });
});
