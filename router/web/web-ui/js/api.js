// fetch wrapper for /api/v1: JSON in and out, the session cookie (same-origin), and one place
// that turns failures into an ApiError and, unless the caller asks for quiet, a toast.
// 401 -> back to the login view; 403 setup_required -> the first-boot wizard.

import { toast } from './dialogs.js';

export const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.message || b.error || `HTTP ${status}`);
    this.status = status;
    this.code = b.error || (status === 0 ? 'network' : `http_${status}`);
    this.fields = Array.isArray(b.fields) ? b.fields : [];
    this.retryAfter = retryAfter;
    this.body = b;
  }
}

const listeners = { unauthorized: [], setupRequired: [] };

/** app.js subscribes: 'unauthorized' (401) and 'setupRequired' (403 setup_required). */
export function onApi(event, fn) {
  listeners[event].push(fn);
}

const MESSAGES = {
  network: 'The router did not answer. Check the connection and try again.',
  origin: 'The request was refused (wrong origin). Reload the page.',
  forbidden: 'Your role does not allow this.',
  setup_required: 'Finish the first-boot setup first.',
  rate_limited: 'Too many requests; wait a moment.',
};

/** A sentence for people from an ApiError. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.body && err.body.message) return err.body.message;
  if (MESSAGES[err.code]) return MESSAGES[err.code];
  if (err.status === 403) return MESSAGES.forbidden;
  if (err.status === 429) return MESSAGES.rate_limited;
  if (err.status === 502) return 'The router daemon is not reachable right now.';
  if (err.status === 404) return 'Not found.';
  if (err.status === 409) return 'Conflict: someone else changed this; reload and try again.';
  return err.message;
}

/**
 * request('GET', '/status') -> parsed JSON (or null for 204).
 * opts.quiet: no toast on error (the caller shows it); opts.noRedirect: do not react to 401/403.
 */
export async function request(method, path, body, opts = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    cache: 'no-store',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    const err = new ApiError(0, { error: 'network', message: MESSAGES.network });
    if (!opts.quiet) toast(errorText(err), 'error');
    throw err;
  }
  let data = null;
  const text = res.status === 204 ? '' : await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = res.ok ? text : { error: `http_${res.status}`, message: text.slice(0, 200) };
    }
  }
  if (res.ok) return data;

  const retry = Number(res.headers.get('Retry-After'));
  const err = new ApiError(res.status, data, Number.isFinite(retry) ? retry : undefined);
  if (!opts.noRedirect) {
    if (res.status === 401) {
      listeners.unauthorized.forEach((fn) => fn(err));
      throw err; // the login view says why; no toast
    }
    if (res.status === 403 && err.code === 'setup_required') {
      listeners.setupRequired.forEach((fn) => fn(err));
      throw err;
    }
  }
  if (!opts.quiet) toast(errorText(err), 'error');
  throw err;
}

export const api = {
  get: (path, opts) => request('GET', path, undefined, opts),
  post: (path, body, opts) => request('POST', path, body === undefined ? {} : body, opts),
  put: (path, body, opts) => request('PUT', path, body, opts),
  del: (path, opts) => request('DELETE', path, undefined, opts),
};

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
