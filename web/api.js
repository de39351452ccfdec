// Talking to the vexil server: one fetch wrapper that adds the admin token,
// turns every non-2xx answer into an ApiError carrying the server's own
// {"error":{"code","message"}} words, and never lets a failure pass silently.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // HTTP status, 0 when the server could not be reached
    this.code = code; // the server's error code, or a local one (network, bad_response)
  }
}

const STATUS_WORDS = {
  400: 'The server did not accept the request',
  401: 'The token was not accepted',
  403: 'This token is not allowed to do that',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  412: 'It was changed by someone else',
  413: 'The request is too large',
  414: 'The address is too long',
  429: 'Too many requests',
  500: 'The server failed',
  502: 'Bad gateway',
  503: 'The server is unavailable',
  504: 'The gateway timed out',
};

/** Reads an error answer and builds an ApiError with words a person can read. */
async function errorFrom(res) {
  let code = 'http_' + res.status;
  let message = '';
  try {
    const text = await res.text();
    if (text) {
      const body = JSON.parse(text);
      if (body && body.error && typeof body.error === 'object') {
        if (typeof body.error.code === 'string') code = body.error.code;
        if (typeof body.error.message === 'string') message = body.error.message;
      }
    }
  } catch {
    /* not JSON: fall back on the status words below */
  }
  if (!message) message = STATUS_WORDS[res.status] || `The server answered ${res.status} ${res.statusText}`.trim();
  const err = new ApiError(res.status, code, message);
  const retry = res.headers.get('Retry-After');
  if (retry) err.retryAfter = Number(retry) || undefined;
  return err;
}

/** "invalid_value" -> "invalid value"; ApiError -> one sentence for the page. */
export function describeError(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return err.message;
    let s = err.message.replace(/\s+$/, '');
    s = s.charAt(0).toUpperCase() + s.slice(1);
    if (!/[.!?]$/.test(s)) s += '.';
    s += ` (${err.status} ${err.code.replace(/_/g, ' ')})`;
    if (err.retryAfter) s += ` Try again in ${err.retryAfter} s.`;
    return s;
  }
  if (err && err.name === 'AbortError') return 'The request was cancelled.';
  return String((err && err.message) || err);
}

export class Api {
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized || (() => {});
  }

  /**
   * request('GET', '/api/flags') -> {status, body, headers}.
   * Throws ApiError for non-2xx (except 304, returned with body null) and
   * for network failures (status 0).
   */
  async request(method, path, { body, headers = {}, signal } = {}) {
    const h = { Accept: 'application/json', Authorization: 'Bearer ' + this.token, ...headers };
    const init = { method, headers: h, signal, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      h['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'Could not reach the server.');
    }
    if (res.status === 304) return { status: 304, body: null, headers: res.headers };
    if (!res.ok) {
      const err = await errorFrom(res);
      if (res.status === 401) this.onUnauthorized(err);
      throw err;
    }
    if (res.status === 204) return { status: 204, body: null, headers: res.headers };
    let data = null;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        throw new ApiError(res.status, 'bad_response', 'The server sent an answer that is not JSON.');
      }
    }
    return { status: res.status, body: data, headers: res.headers };
  }

  static flagPath(name, suffix = '') {
    return '/api/flags/' + encodeURIComponent(name) + suffix;
  }

  static segmentPath(name, suffix = '') {
    return '/api/segments/' + encodeURIComponent(name) + suffix;
  }

  async listFlags() {
    const r = await this.request('GET', '/api/flags');
    if (!r.body || !Array.isArray(r.body.flags)) throw new ApiError(r.status, 'bad_response', 'The flag list from the server has no "flags" array.');
    return r.body.flags;
  }
  async listEnvironments() {
    const r = await this.request('GET', '/api/environments');
    if (!r.body || !Array.isArray(r.body.environments) || !r.body.environments.length) {
      throw new ApiError(r.status, 'bad_response', 'The environment list from the server has no "environments".');
    }
    return r.body.environments;
  }
  async listSegments() {
    const r = await this.request('GET', '/api/segments');
    if (!r.body || !Array.isArray(r.body.segments)) throw new ApiError(r.status, 'bad_response', 'The segment list from the server has no "segments" array.');
    return r.body.segments;
  }
  async getSegment(name) {
    return (await this.request('GET', Api.segmentPath(name))).body;
  }
  async createSegment(fields) {
    return (await this.request('POST', '/api/segments', { body: fields })).body;
  }
  async patchSegment(name, revision, fields) {
    return (await this.request('PATCH', Api.segmentPath(name), { body: fields, headers: { 'If-Match': `"${revision}"` } })).body;
  }
  async deleteSegment(name) {
    await this.request('DELETE', Api.segmentPath(name));
  }
  async getFlag(name) {
    return (await this.request('GET', Api.flagPath(name))).body;
  }
  async createFlag(fields) {
    return (await this.request('POST', '/api/flags', { body: fields })).body;
  }
  async patchFlag(name, revision, fields) {
    return (await this.request('PATCH', Api.flagPath(name), { body: fields, headers: { 'If-Match': `"${revision}"` } })).body;
  }
  async deleteFlag(name, revision) {
    const headers = revision ? { 'If-Match': `"${revision}"` } : {};
    await this.request('DELETE', Api.flagPath(name), { headers });
  }
  async history(name) {
    const r = await this.request('GET', Api.flagPath(name, '/history'));
    return (r.body && r.body.events) || [];
  }
  async revert(name, eventId) {
    return (await this.request('POST', Api.flagPath(name, '/revert'), { body: { event: eventId } })).body;
  }

  // webhooks (docs/api.md §9): registered and deleted, never changed; the secret is never read back

  static webhookPath(id, suffix = '') {
    return '/api/webhooks/' + encodeURIComponent(id) + suffix;
  }
  async listWebhooks() {
    const r = await this.request('GET', '/api/webhooks');
    if (!r.body || !Array.isArray(r.body.webhooks)) throw new ApiError(r.status, 'bad_response', 'The webhook list from the server has no "webhooks" array.');
    return r.body.webhooks;
  }
  /** fields: {url, secret, events?, format?}; answers the webhook (without its secret). */
  async createWebhook(fields) {
    return (await this.request('POST', '/api/webhooks', { body: fields })).body;
  }
  async deleteWebhook(id) {
    await this.request('DELETE', Api.webhookPath(id));
  }
  /** The webhook's most recent deliveries, newest first, each with its attempts. */
  async webhookDeliveries(id, limit = 50) {
    const r = await this.request('GET', Api.webhookPath(id, '/deliveries') + '?limit=' + limit);
    if (!r.body || !Array.isArray(r.body.deliveries)) throw new ApiError(r.status, 'bad_response', 'The delivery list from the server has no "deliveries" array.');
    return r.body.deliveries;
  }

  // release plans (docs/api.md §8): one per flag and environment

  static planPath(name, env, action = '') {
    return Api.flagPath(name, '/plan' + (action ? '/' + action : '')) + '?env=' + encodeURIComponent(env);
  }
  /** The plans of one environment (of every environment without env), by flag name. */
  async listPlans(env) {
    const r = await this.request('GET', '/api/plans' + (env ? '?env=' + encodeURIComponent(env) : ''));
    if (!r.body || !Array.isArray(r.body.plans)) throw new ApiError(r.status, 'bad_response', 'The plan list from the server has no "plans" array.');
    return r.body.plans;
  }
  async startPlan(name, env, body) {
    return (await this.request('PUT', Api.planPath(name, env), { body })).body;
  }
  /** action: pause, resume, advance or abort; answers the plan. */
  async planAction(name, env, action) {
    return (await this.request('POST', Api.planPath(name, env, action))).body;
  }
}
