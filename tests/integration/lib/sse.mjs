// lib/sse.mjs -- a reader of a change stream (server-sent events: OFREP's,
// Unleash's) over fetch, for the integration tests: the events parsed (with
// their `event:` name, if any), the comments
// (keep-alives) with the silence before each, and promises that wait,
// boundedly, for an event or for the end.

/**
 * Open an SSE stream with fetch and parse it.  Returns {status, headers,
 * events (parsed {id, event, data, json}), comments, ended, next(pred, ms), close()}.
 */
export async function openStream(url, headers = {}) {
  const ctl = new AbortController();
  const res = await fetch(url, { headers, signal: ctl.signal });
  const s = {
    status: res.status,
    headers: res.headers,
    events: [],
    comments: [],
    commentGaps: [], // ms of silence before each comment
    retry: null,
    ended: false,
    lastDataAt: Date.now(),
    text: '',
    close: () => ctl.abort(),
  };
  const waiters = new Set();
  const poke = () => { for (const w of waiters) w(); };
  s.next = (pred = () => true, ms = 3000) => new Promise((resolve, reject) => {
    const check = () => {
      const e = s.events.find((x) => !x.taken && pred(x));
      if (e) { e.taken = true; done(); resolve(e); return true; }
      if (s.ended) { done(); reject(new Error('stream ended without the event')); return true; }
      return false;
    };
    const timer = setTimeout(() => { done(); reject(new Error(`no event within ${ms} ms`)); }, ms);
    const done = () => { clearTimeout(timer); waiters.delete(check); };
    if (!check()) waiters.add(check);
  });
  s.closed = (ms = 3000) => new Promise((resolve, reject) => {
    const check = () => { if (s.ended) { done(); resolve(); return true; } return false; };
    const timer = setTimeout(() => { done(); reject(new Error(`stream still open after ${ms} ms`)); }, ms);
    const done = () => { clearTimeout(timer); waiters.delete(check); };
    if (!check()) waiters.add(check);
  });
  if (!res.body || res.status !== 200) {
    s.text = await res.text().catch(() => '');
    s.ended = true;
    return s;
  }
  (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        const gap = Date.now() - s.lastDataAt; // silence before this chunk
        s.lastDataAt = Date.now();
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) {
              s.comments.push(line.slice(1).trim());
              s.commentGaps.push(gap);
            }
            else if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('data: ')) ev.data = (ev.data ? ev.data + '\n' : '') + line.slice(6);
            else if (line.startsWith('retry: ')) s.retry = Number(line.slice(7));
          }
          if (ev.data !== undefined) {
            ev.json = JSON.parse(ev.data);
            s.events.push(ev);
          }
          poke();
        }
      }
    } catch {
      // aborted or reset
    }
    s.ended = true;
    poke();
  })();
  return s;
}

