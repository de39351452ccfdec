// The admin page's pure helpers (web/util.js), in node: no browser, no server.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

// web/ has no package.json saying "module" (it is served as is), so load the
// file as an ES module through a data: URL; it imports nothing.
const source = readFileSync(new URL('../../web/util.js', import.meta.url), 'utf8');
const U = await import('data:text/javascript;charset=utf-8,' + encodeURIComponent(source));

test('parseUsers splits on new lines, commas and whitespace, drops empties and repeats', () => {
  assert.deepEqual(U.parseUsers('alice, bob\ncarol\t dave\r\n\n,,alice  '), ['alice', 'bob', 'carol', 'dave']);
  assert.deepEqual(U.parseUsers('   \n , '), []);
  assert.deepEqual(U.parseUsers('ü-user;x'), ['ü-user;x'], 'only the documented separators split');
});

test('checkName follows docs/api.md §1', () => {
  for (const ok of ['a', 'new_ui', 'checkout.v2', 'Feature.flexibleRollout.10', '9-lives', 'x'.repeat(100)]) assert.equal(U.checkName(ok), '', ok);
  for (const bad of ['', '_x', '.x', '-x', 'a b', 'a/b', 'ü', 'x'.repeat(101)]) assert.notEqual(U.checkName(bad), '', bad);
});

test('checkUsers catches ids over 256 bytes and lists over 10 000', () => {
  assert.deepEqual(U.checkUsers(['a', 'ü'.repeat(128)]), []);
  assert.equal(U.checkUsers(['ü'.repeat(129)]).length, 1);
  assert.equal(U.checkUsers(Array.from({ length: 10001 }, (_, i) => 'u' + i)).length, 1);
});

test('staleText words the docs/operations.md §3 reasons', () => {
  assert.equal(U.staleText('older_than_30_days'), 'older than 30 days');
  assert.equal(U.staleText('rolled_out_14_days'), 'fully rolled out for over 14 days');
  assert.equal(U.staleText('something_new'), 'something new');
});

test('diffFlags lists the editable fields that differ, in order', () => {
  const a = { name: 'f', enabled: false, percentage: 0, users: ['a'], description: 'd', owner: '', revision: 1 };
  const b = { ...a, enabled: true, users: ['a', 'b'], revision: 2, updated_at: 'x' };
  assert.deepEqual(U.diffFlags(a, b), [
    { field: 'enabled', before: false, after: true },
    { field: 'users', before: ['a'], after: ['a', 'b'] },
  ]);
  assert.deepEqual(U.diffFlags(a, a), []);
  assert.equal(U.diffFlags(null, a).length, 5);
  assert.deepEqual(U.usersDelta(['a', 'b'], ['b', 'c']), { added: ['c'], removed: ['a'] });
});

test('describePatch says what a change does', () => {
  const f = { users: ['a', 'b'] };
  assert.equal(U.describePatch({ enabled: true }, f), 'turn it on');
  assert.equal(U.describePatch({ percentage: 25 }, f), 'set rollout to 25 %');
  assert.equal(U.describePatch({ users: ['b', 'c'] }, f), 'add c and remove a');
  assert.equal(U.describePatch({ description: 'x' }, f), 'set description to "x"');
});

test('sortFlags and matchesFilter', () => {
  const flags = [
    { name: 'b', enabled: true, percentage: 5, users: [], owner: 'zed', age_days: 3, stale: [] },
    { name: 'a', enabled: false, percentage: 50, users: ['x'], owner: 'amy', age_days: 40, stale: ['older_than_30_days'] },
    { name: 'c', enabled: true, percentage: 50, users: [], owner: '', age_days: 1, stale: [] },
  ];
  const names = (l) => l.map((f) => f.name);
  assert.deepEqual(names(U.sortFlags(flags)), ['a', 'b', 'c']);
  assert.deepEqual(names(U.sortFlags(flags, 'name', -1)), ['c', 'b', 'a']);
  assert.deepEqual(names(U.sortFlags(flags, 'age', -1)), ['a', 'b', 'c']);
  assert.deepEqual(names(U.sortFlags(flags, 'percentage', -1)), ['a', 'c', 'b'], 'ties by name');
  assert.deepEqual(names(U.sortFlags(flags, 'stale', 1)), ['a', 'b', 'c']);
  assert.deepEqual(names(flags.filter((f) => U.matchesFilter(f, 'A'))), ['a']);
  assert.deepEqual(names(flags.filter((f) => U.matchesFilter(f, 'is:on'))), ['b', 'c']);
  assert.deepEqual(names(flags.filter((f) => U.matchesFilter(f, 'is:stale'))), ['a']);
  assert.deepEqual(names(flags.filter((f) => U.matchesFilter(f, 'owner:ze is:on'))), ['b']);
  assert.deepEqual(names(flags.filter((f) => U.matchesFilter(f, '  '))), ['b', 'a', 'c']);
});

test('timeAgo', () => {
  const now = Date.parse('2026-01-10T12:00:00.000Z');
  assert.equal(U.timeAgo('2026-01-10T11:59:50.000Z', now), 'just now');
  assert.equal(U.timeAgo('2026-01-10T11:55:00.000Z', now), '5 min ago');
  assert.equal(U.timeAgo('2026-01-10T09:00:00.000Z', now), '3 h ago');
  assert.equal(U.timeAgo('2026-01-08T12:00:00.000Z', now), '2 days ago');
  assert.equal(U.timeAgo('nonsense', now), '');
});

test('shortAgo: one unit, rounded down, "just now" under a minute', () => {
  const now = Date.parse('2026-01-10T12:00:00.000Z');
  const at = (s) => new Date(now - s * 1000).toISOString();
  assert.equal(U.shortAgo(at(0), now), 'just now');
  assert.equal(U.shortAgo(at(59.999), now), 'just now');
  assert.equal(U.shortAgo(at(60), now), '1 min ago');
  assert.equal(U.shortAgo(at(3599), now), '59 min ago');
  assert.equal(U.shortAgo(at(3600), now), '1 h ago');
  assert.equal(U.shortAgo(at(86399), now), '23 h ago');
  assert.equal(U.shortAgo(at(86400), now), '1 d ago');
  assert.equal(U.shortAgo(at(3 * 86400 + 86399), now), '3 d ago');
  assert.equal(U.shortAgo(at(400 * 86400), now), '400 d ago');
  assert.equal(U.shortAgo(at(-30), now), 'just now', 'a time ahead of this clock (a server clock ahead) is not "in the future"');
  assert.equal(U.shortAgo('2026-01-10T11:57:00Z', now), '3 min ago', 'RFC 3339 without milliseconds');
  for (const bad of [null, undefined, '', 'nonsense']) assert.equal(U.shortAgo(bad, now), '', String(bad));
});

test('evaluatedAt: per environment, top level for the default without "environments", null for never', () => {
  const t1 = '2026-01-10T11:00:00.000Z';
  const t2 = '2026-01-09T11:00:00.000Z';
  const flag = {
    name: 'x', last_evaluated_at: t1,
    environments: { production: { enabled: true, last_evaluated_at: t1 }, staging: { enabled: false, last_evaluated_at: null }, dev: { enabled: true } },
  };
  assert.equal(U.evaluatedAt(flag, 'production', 'production'), t1);
  assert.equal(U.evaluatedAt(flag, 'staging', 'production'), null);
  assert.equal(U.evaluatedAt(flag, 'dev', 'production'), null, 'a state without the field: never');
  assert.equal(U.evaluatedAt(flag, 'gone', 'production'), null, 'an environment the flag has no state in');
  assert.equal(U.evaluatedAt({ ...flag, last_evaluated_at: t2 }, 'staging', 'production'), null, 'the top level is not read when "environments" is there');
  const flat = { name: 'x', last_evaluated_at: t2 };
  assert.equal(U.evaluatedAt(flat, 'production', 'production'), t2);
  assert.equal(U.evaluatedAt(flat, undefined, 'production'), t2);
  assert.equal(U.evaluatedAt(flat, 'staging', 'production'), null);
  assert.equal(U.evaluatedAt({ name: 'x' }, 'production', 'production'), null);
  assert.equal(U.evaluatedAt(null, 'production', 'production'), null);
});

test('unusedFor: never evaluated, in a flag and an environment both older than a week', () => {
  const now = Date.parse('2026-01-10T12:00:00.000Z');
  const daysAgo = (d) => new Date(now - d * 86400000).toISOString();
  assert.equal(U.UNUSED_DAYS, 7);
  assert.equal(U.unusedFor(null, [daysAgo(8), daysAgo(30)], now), true);
  assert.equal(U.unusedFor(null, [daysAgo(7), daysAgo(7)], now), true, 'exactly a week');
  assert.equal(U.unusedFor(null, [daysAgo(6.99), daysAgo(30)], now), false, 'a flag created less than a week ago');
  assert.equal(U.unusedFor(null, [daysAgo(30), daysAgo(2)], now), false, 'an environment made two days ago');
  assert.equal(U.unusedFor(undefined, [daysAgo(30)], now), true, 'a missing field is never');
  assert.equal(U.unusedFor(daysAgo(300), [daysAgo(400), daysAgo(400)], now), false, 'evaluated once, however long ago');
  assert.equal(U.unusedFor(null, [daysAgo(30), undefined], now), true, 'a missing time does not hold it back');
  assert.equal(U.unusedFor(null, [undefined, 'nonsense'], now), false, 'no time at all: not judged');
  assert.equal(U.unusedFor(null, [], now), false);
  assert.equal(U.unusedFor(null, [daysAgo(3)], now, 2), true, 'another threshold');
});

test('formatTime: local date and time, the same as toLocaleString', () => {
  const iso = '2026-11-27T10:02:11.123Z';
  const opts = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  assert.equal(U.formatTime(iso), new Date(iso).toLocaleString(undefined, opts));
  assert.equal(U.formatTime(iso), U.formatTime(iso), 'the cached format gives the same');
  assert.equal(U.formatTime('nonsense'), 'nonsense');
  assert.equal(U.formatTime(null), '');
});

test('environments: stateOf, applyPatch, diffFlags per environment, describePatch', () => {
  const off = { enabled: false, percentage: 0, users: [], segments: [] };
  const f = {
    name: 'f', description: '', owner: '', revision: 3,
    environments: { production: { ...off }, staging: { enabled: true, percentage: 30, users: ['x'], segments: ['beta'] } },
  };
  assert.deepEqual(U.stateOf(f, 'staging', 'production').segments, ['beta']);
  assert.deepEqual(U.stateOf(f, 'nowhere', 'production'), off, 'an environment the flag does not name is off');
  assert.equal(U.stateOf({ enabled: true, percentage: 5 }, 'production', 'production').percentage, 5, 'top-level fields are the default environment');

  const copied = U.applyPatch(f, { environments: { production: U.copyState(f.environments.staging) } }, 'production');
  assert.deepEqual(U.diffFlags(f, copied, ['production', 'staging']), [
    { env: 'production', field: 'enabled', before: false, after: true },
    { env: 'production', field: 'percentage', before: 0, after: 30 },
    { env: 'production', field: 'users', before: [], after: ['x'] },
    { env: 'production', field: 'segments', before: [], after: ['beta'] },
  ]);
  assert.deepEqual(copied.environments.staging, f.environments.staging, 'the source is untouched');
  assert.deepEqual(U.diffFlags(f, U.applyPatch(f, { owner: 'me' }, 'production')), [{ field: 'owner', before: '', after: 'me' }]);

  assert.deepEqual(U.diffStates(f.environments.production, f.environments.staging).map((d) => d.field), ['enabled', 'percentage', 'users', 'segments']);
  assert.deepEqual(U.diffStates(f.environments.staging, { ...f.environments.staging }), []);
  assert.equal(U.describePatch({ environments: { staging: { enabled: false } } }, f, 'production'), 'in staging: turn it off');
  assert.equal(U.describePatch({ environments: { staging: { segments: [] } } }, f, 'production'), 'in staging: remove segment beta');
  assert.equal(U.stateSummary(f.environments.staging), 'on, 30 %, 1 user, 1 segment');
  assert.ok(U.matchesFilter(f, 'is:on', 'staging', 'production'));
  assert.ok(!U.matchesFilter(f, 'is:on', 'production', 'production'));
  assert.deepEqual(U.sortFlags([f, { ...f, name: 'e', environments: { staging: { ...off, percentage: 90 } } }], 'percentage', -1, 'staging').map((x) => x.name), ['e', 'f']);
});

test('countUsers counts repeats; parseLocation reads #env= and ?env=', () => {
  assert.deepEqual(U.countUsers('u1, u2\nu3\nu2\n u1'), { users: ['u1', 'u2', 'u3'], repeated: 2 });
  assert.deepEqual(U.parseLocation('?env=staging', ''), { env: 'staging', view: '' });
  assert.deepEqual(U.parseLocation('?env=staging', '#env=dev&view=segments'), { env: 'dev', view: 'segments' }, 'the hash wins');
  assert.deepEqual(U.parseLocation('', ''), { env: '', view: '' });
});

test('release plans: durations in words, exact for holds and rounded for countdowns', () => {
  assert.equal(U.formatDuration(0), '0 s');
  assert.equal(U.formatDuration(1), '1 s');
  assert.equal(U.formatDuration(45), '45 s');
  assert.equal(U.formatDuration(90), '1 min 30 s');
  assert.equal(U.formatDuration(3600), '1 h');
  assert.equal(U.formatDuration(5400), '1 h 30 min');
  assert.equal(U.formatDuration(86400), '1 d');
  assert.equal(U.formatDuration(86400 + 3600 + 59), '1 d 1 h', 'two units at most');
  assert.equal(U.formatDuration(U.MAX_HOLD_SECONDS), '90 d');
  assert.equal(U.formatDuration('x'), '');

  assert.equal(U.formatApprox(12), '12 s');
  assert.equal(U.formatApprox(89), '89 s');
  assert.equal(U.formatApprox(23 * 60 + 10), '23 min');
  assert.equal(U.formatApprox(3599), '1 h', '59 min 59 s rounds to the hour, not "60 min"');
  assert.equal(U.formatApprox(23 * 3600 - 100), '23 h');
  assert.equal(U.formatApprox(47 * 3600), '47 h');
  assert.equal(U.formatApprox(2 * 86400 + 1000), '2 d');
  assert.equal(U.formatApprox(-5), '0 s');

  const now = Date.parse('2026-11-30T18:00:00.000Z');
  assert.equal(U.untilText('2026-11-30T18:00:00.400Z', now), 'in 1 s', 'a part of a second left is still to come');
  assert.equal(U.untilText('2026-11-30T18:23:00.000Z', now), 'in 23 min');
  assert.equal(U.untilText('2026-12-01T17:00:00.000Z', now), 'in 23 h');
  assert.equal(U.untilText('2026-12-02T19:00:00.000Z', now), 'in 2 d');
  assert.equal(U.untilText('2026-11-30T17:59:59.000Z', now), 'due now');
  assert.equal(U.untilText(null, now), '');
});

test('release plans: holds typed in a unit', () => {
  assert.deepEqual(U.splitHold(3600), { value: 1, unit: 'h' });
  assert.deepEqual(U.splitHold(86400), { value: 1, unit: 'd' });
  assert.deepEqual(U.splitHold(5400), { value: 90, unit: 'min' });
  assert.deepEqual(U.splitHold(90), { value: 90, unit: 's' });
  assert.deepEqual(U.splitHold(1), { value: 1, unit: 's' });
  assert.equal(U.holdSeconds('1', 's'), 1);
  assert.equal(U.holdSeconds('1.5', 'h'), 5400);
  assert.equal(U.holdSeconds(' 2 ', 'd'), 172800);
  assert.equal(U.holdSeconds('0', 'min'), 0, 'zero is sent: the server says what is wrong with it');
  assert.ok(Number.isNaN(U.holdSeconds('', 'h')));
  assert.ok(Number.isNaN(U.holdSeconds('soon', 'h')));
  assert.ok(Number.isNaN(U.holdSeconds('1', 'weeks')));
  assert.deepEqual(U.PLAN_TEMPLATE.map((s) => s.percentage), [5, 25, 50, 100]);
  for (const s of U.PLAN_TEMPLATE.slice(0, -1)) assert.deepEqual(U.splitHold(s.hold_seconds).value, 1, 'the template holds read 1 h, 1 d, 1 d');
});

test('release plans: what each status allows, the ladder, the step a 400 names', () => {
  assert.deepEqual(U.planActions('running'), { pause: true, resume: false, advance: true, abort: true });
  assert.deepEqual(U.planActions('paused'), { pause: false, resume: true, advance: true, abort: true });
  assert.deepEqual(U.planActions('halted'), { pause: false, resume: false, advance: false, abort: true });
  assert.deepEqual(U.planActions('done'), { pause: false, resume: false, advance: false, abort: false });
  assert.deepEqual(U.planActions('aborted'), { pause: false, resume: false, advance: false, abort: false });
  assert.equal(U.canStartPlan(null), true);
  for (const [status, can, shown] of [['running', false, true], ['paused', false, true], ['halted', true, true], ['done', true, false], ['aborted', true, false]]) {
    assert.equal(U.canStartPlan({ status }), can, status);
    assert.equal(U.planShown({ status }), shown, status);
  }
  const plan = { status: 'running', step: 1, percentage: 25, steps: [{ percentage: 5, hold_seconds: 3600 }, { percentage: 25, hold_seconds: 86400 }, { percentage: 50, hold_seconds: 86400 }, { percentage: 100 }] };
  assert.equal(U.planLadder(plan), '5 % → [25 %] → 50 % → 100 %');
  assert.deepEqual(U.nextStep(plan), { percentage: 50, hold_seconds: 86400 });
  assert.equal(U.nextStep({ ...plan, step: 3 }), null);
  assert.equal(U.planErrorStep('steps[1].hold_seconds must be an integer from 1 to 7776000 (90 days)'), 1);
  assert.equal(U.planErrorStep('a release plan is already running'), -1);
});

test('webhooks: the twelve events of docs/api.md §9, in groups', () => {
  const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## 9. Webhooks'), doc.indexOf('**The request.**'));
  const documented = [...section.matchAll(/`((?:flag|segment|environment)\.[a-z_]+)`/g)].map((m) => m[1]);
  assert.deepEqual(U.WEBHOOK_EVENT_NAMES, [...new Set(documented)]);
  assert.equal(U.WEBHOOK_EVENT_NAMES.length, 12);
  assert.deepEqual(U.WEBHOOK_EVENTS.map(([group, list]) => [group, list.map(([n]) => n.split('.')[0])]), [
    ['Flags', Array(6).fill('flag')],
    ['Segments', Array(3).fill('segment')],
    ['Environments', Array(3).fill('environment')],
  ]);
});

test('webhooks: randomSecret is 32 URL-safe characters, 6 bits from each random byte', () => {
  for (let i = 0; i < 50; i++) assert.match(U.randomSecret(), /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(U.randomSecret(), U.randomSecret());
  const bytes = (a) => a.map((_, i) => i + (i % 2) * 64); // 0, 65, 2, 67, ...: the high bits are dropped
  assert.equal(U.randomSecret(16, bytes), 'ABCDEFGHIJKLMNOP');
  assert.equal(U.randomSecret(2, (a) => a.fill(255)), '__');
  assert.equal(U.randomSecret(2, (a) => a.fill(62)), '--');
  // Every one of the 64 characters comes out.
  const seen = new Set(U.randomSecret(64, (a) => a.map((_, i) => i + 128)));
  assert.equal(seen.size, 64);
});

test('webhooks: events, format, the field a 400 names, the last attempt, the summary', () => {
  assert.equal(U.webhookEventsText([]), 'all events');
  assert.equal(U.webhookEventsText(undefined), 'all events');
  assert.equal(U.webhookEventsText(['flag.deleted', 'segment.created']), 'flag.deleted, segment.created');
  assert.equal(U.webhookFormatText('slack'), 'Slack');
  assert.equal(U.webhookFormatText('json'), 'JSON');
  assert.equal(U.webhookErrorField('url must be an http:// or https:// URL of at most 2000 bytes, without blanks or control characters'), 'url');
  assert.equal(U.webhookErrorField('secret must be a string of 16 to 1000 bytes'), 'secret');
  assert.equal(U.webhookErrorField('events[0] is not an event name (flag.created, flag.updated, ...)'), 'events');
  assert.equal(U.webhookErrorField("unknown field 'x'"), '');
  const at = '2026-11-30T18:20:00.123Z';
  assert.equal(U.lastAttemptText({ attempts: [] }), '');
  assert.equal(U.lastAttemptText({ attempts: [{ at, status_code: 500, error: null, duration_ms: 3 }, { at, status_code: 200, error: null, duration_ms: 4 }] }), '200');
  assert.equal(U.lastAttemptText({ attempts: [{ at, status_code: null, error: 'connection refused', duration_ms: 1 }] }), 'connection refused');
  assert.equal(U.lastAttemptText({ attempts: [{ at, status_code: 502, error: 'bad gateway', duration_ms: 1 }] }), '502: bad gateway');
  assert.equal(U.lastAttemptText({ attempts: [{ at, status_code: 500, error: 'the receiver answered 500', duration_ms: 1 }] }), 'the receiver answered 500');
  assert.equal(U.lastAttemptText({ attempts: [{ at, status_code: null, error: null, duration_ms: 5000 }] }), 'no answer');
  assert.equal(U.deliveriesSummary([{ status: 'pending' }, { status: 'delivered' }, { status: 'delivered' }]), '2 delivered, 1 pending');
  assert.equal(U.deliveriesSummary([]), '');
  assert.match(U.formatClock(at), /\d\d:\d\d:\d\d/);
});
