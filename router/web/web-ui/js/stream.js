// The live feed: one EventSource on /api/v1/stream shared by every view.
// `status` arrives every second (and at once on a change), `event` for each daemon event.
// The badge in the top bar says "live" or "reconnecting"; a closed or silent stream is
// reopened with backoff.

import { BASE, api } from './api.js';

const subs = { status: new Set(), event: new Set(), state: new Set() };
let source = null;
let state = 'off';
let retryTimer = null;
let watchdog = null;
let backoff = 1000;
let lastMessageAt = 0;
let lastStatus = null;

const STALE_MS = 10000; // status comes every second; silence this long means a dead stream

function setState(s) {
  if (s === state) return;
  state = s;
  subs.state.forEach((fn) => fn(s));
}

function onMessage(type, ev) {
  lastMessageAt = Date.now();
  backoff = 1000;
  setState('live');
  let data;
  try {
    data = JSON.parse(ev.data);
  } catch {
    return;
  }
  if (type === 'status') lastStatus = data;
  subs[type].forEach((fn) => {
    try { fn(data); } catch (e) { console.error(e); }
  });
}

function open() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (source) source.close();
  source = new EventSource(`${BASE}/stream`, { withCredentials: true });
  source.addEventListener('open', () => {
    lastMessageAt = Date.now();
    setState('live');
  });
  source.addEventListener('status', (ev) => onMessage('status', ev));
  source.addEventListener('event', (ev) => onMessage('event', ev));
  source.addEventListener('error', () => {
    setState('reconnecting');
    // CONNECTING: the browser retries by itself. CLOSED (an HTTP error such as 401 after a
    // server restart): ask for the session, which sends us to the login view if it has ended,
    // and retry.
    if (source && source.readyState === EventSource.CLOSED) {
      api.get('/session', { quiet: true }).catch(() => {});
      scheduleReopen();
    }
  });
}

function scheduleReopen() {
  if (retryTimer || state === 'off') return;
  retryTimer = setTimeout(() => {
    retryTimer = null;
    if (state !== 'off') open();
  }, backoff);
  backoff = Math.min(backoff * 2, 15000);
}

/** Open the stream (after login). Idempotent. */
export function startStream() {
  if (source && state !== 'off') return;
  setState('reconnecting');
  open();
  clearInterval(watchdog);
  watchdog = setInterval(() => {
    if (state === 'live' && Date.now() - lastMessageAt > STALE_MS) {
      setState('reconnecting');
      if (source) source.close();
      scheduleReopen();
    }
  }, 2000);
}

/** Close the stream (logout). */
export function stopStream() {
  setState('off');
  clearTimeout(retryTimer);
  retryTimer = null;
  clearInterval(watchdog);
  if (source) source.close();
  source = null;
  lastStatus = null;
}

/** Subscribe to 'status', 'event' or 'state'; returns the unsubscribe function. */
export function onStream(type, fn) {
  subs[type].add(fn);
  return () => subs[type].delete(fn);
}

export function streamState() {
  return state;
}

/** The most recent status received on the stream, or null. */
export function latestStatus() {
  return lastStatus;
}
