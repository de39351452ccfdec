// tests/bench/scale.mjs -- the measuring half of scale.sh (run by it).
//
// Against two vexil instances on one database: ROUNDS times, hold a
// long-poll on B (GET /flags, If-None-Match: the current version, wait=30,
// no Accept-Encoding), PATCH one flag through A, and time the PATCH's answer
// and the held request's answer (its headers, and its whole body), both
// from the moment the PATCH is sent.  Prints one RESULT line.
//
// Usage: node scale.mjs A_URL B_URL TOKEN ROUNDS FLAG_NAME
import http from 'node:http';

const [a, b, token, roundsArg, flag] = process.argv.slice(2);
const rounds = Number(roundsArg);
const auth = { Authorization: `Bearer ${token}` };
const agent = new http.Agent({ keepAlive: true });

function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...auth, ...headers }, agent, timeout: 40000 }, (res) => {
      const head = performance.now();
      let bytes = 0;
      res.on('data', (c) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, head, end: performance.now(), bytes }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    if (body) req.end(body); else req.end();
  });
}

const version = async (url) => Number((await request(`${url}/flags/${flag}`)).headers.etag.replaceAll('"', ''));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const patch = [], head = [], whole = [];
let v = await version(b);
for (let i = 0; i < rounds; i++) {
  const held = request(`${b}/flags?wait=30`, { headers: { 'If-None-Match': `"${v}"` } });
  await sleep(30); // parked by then (the answer would come anyway: the version check)
  const t0 = performance.now();
  const w = await request(`${a}/api/flags/${flag}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ percentage: i % 2 === 0 ? 51 : 50 }),
  });
  if (w.status !== 200) throw new Error(`PATCH answered ${w.status}`);
  const h = await held;
  if (h.status !== 200) throw new Error(`held request answered ${h.status}`);
  patch.push(w.end - t0);
  head.push(h.head - t0);
  whole.push(h.end - t0);
  v = Number(h.headers.etag.replaceAll('"', ''));
  await sleep(20);
}
const f = (x) => x.toFixed(1);
console.log(`RESULT patch_p50=${f(pct(patch, 50))} patch_p99=${f(pct(patch, 99))} ` +
  `wake_p50=${f(pct(head, 50))} wake_p99=${f(pct(head, 99))} ` +
  `body_p50=${f(pct(whole, 50))} body_p99=${f(pct(whole, 99))}`);
agent.destroy();
