// The dashboard's calls to this server's /v1 API with the account's token: JSON reads and writes,
// CSV downloads saved as blobs, and the live warning stream read with fetch() (EventSource cannot
// send an Authorization header), reconnecting with Last-Event-ID. A call answered
// `auth.token_expired` gets one new token by challenge/refresh (shared by concurrent calls) and is
// made again; any other failure is an ApiError with the API's code (`network` when unreachable).

import { ApiError, readAnswer, refresh } from './auth.js';

export class Session {
  constructor(account, token) {
    this.account = account;
    this.token = token;
    this.renewing = null;
    this.onSignedOut = () => {};
  }

  /** One new token, however many calls ask at once. */
  async renew() {
    if (!this.renewing) {
      this.renewing = refresh(this.account)
        .then((answer) => { this.token = answer.token; })
        .finally(() => { this.renewing = null; });
    }
    return this.renewing;
  }

  async raw(path, init = {}) {
    const attempt = async () => {
      const headers = new Headers(init.headers || {});
      headers.set('Authorization', `Bearer ${this.token}`);
      try {
        return await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
      } catch (e) {
        throw new ApiError(0, 'network', String(e));
      }
    };
    let response = await attempt();
    if (response.status === 401) {
      const body = await response.clone().json().catch(() => null);
      if (body?.code === 'auth.token_expired') {
        try {
          await this.renew();
        } catch (e) {
          if (e.code !== 'network' && e.code !== 'rate.limited') this.onSignedOut(e);
          throw e;
        }
        response = await attempt();
      } else if (body?.code === 'auth.bad_token') {
        this.onSignedOut(new ApiError(401, body.code, body.message));
      }
    }
    return response;
  }

  async get(path) {
    return readAnswer(await this.raw(path, { headers: { Accept: 'application/json' } }));
  }

  async post(path, body) {
    return readAnswer(await this.raw(path, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    }));
  }

  /** Fetch a CSV with the token and save it under `filename`. */
  async download(path, filename) {
    const response = await this.raw(path, { headers: { Accept: 'text/csv' } });
    if (!response.ok) await readAnswer(response);
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}

/**
 * Follow /v1/warnings/stream: `onWarning(warning)` for each event, `onStatus(live)` when the
 * connection comes and goes. Starts after `lastId` when given. Returns a function that stops it.
 */
export function followWarnings(session, lastId, onWarning, onStatus) {
  let stopped = false;
  let controller = null;
  let last = lastId;
  let delay = 1000;

  const dispatch = (event) => {
    if (event.id) last = event.id;
    if (event.type !== 'warning' || !event.data) return;
    try { onWarning(JSON.parse(event.data)); } catch (_) { /* a malformed event is skipped */ }
  };

  const readOnce = async () => {
    controller = new AbortController();
    const headers = { Accept: 'text/event-stream' };
    if (last !== null && last !== undefined && last !== '') headers['Last-Event-ID'] = String(last);
    const response = await session.raw('/v1/warnings/stream', { headers, signal: controller.signal });
    if (!response.ok) await readAnswer(response);
    onStatus(true);
    delay = 1000;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let event = { type: 'message', id: '', data: '' };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          dispatch(event);
          event = { type: 'message', id: '', data: '' };
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.type = value;
          else if (field === 'id') event.id = value;
          else if (field === 'data') event.data = event.data ? `${event.data}\n${value}` : value;
        }
      }
    }
  };

  (async () => {
    while (!stopped) {
      try {
        await readOnce();
      } catch (e) {
        if (stopped) return;
        if (e.code === 'auth.bad_token' || e.code === 'auth.device_disabled') { onStatus(false); return; }
      }
      if (stopped) return;
      onStatus(false);
      await new Promise((resolve) => { setTimeout(resolve, delay); });
      delay = Math.min(delay * 2, 30000);
    }
  })();

  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
