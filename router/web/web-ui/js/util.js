// Small helpers shared by every view: building DOM nodes, formatting figures, and
// reading/writing values by TOML-style path ("wan_interfaces[0].weight").
// Nothing here touches the DOM at import time, so the pure functions run under node's
// test runner (router/web-ui-tests/).

/**
 * Create an element. attrs: class, text, testid, dataset {}, on {event: fn}, and any other
 * attribute (boolean true sets it empty, false/null/undefined leave it out). Children may be
 * nodes, strings, or arrays of them; null/false children are skipped.
 * Text always goes in as text, never as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === 'value' && 'value' in el) el.value = value;
    else if (key === 'checked' || key === 'selected' || key === 'disabled' || key === 'hidden' || key === 'multiple' || key === 'required' || key === 'readOnly') el[key] = !!value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Remove every child of an element. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// ---------- formatting ----------

export const DASH = '—';

/** bits per second -> "12.3 Mbit/s" */
export function formatMbps(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(Number(bps))) return DASH;
  const m = Number(bps) / 1e6;
  let digits = 1;
  if (m >= 100) digits = 0;
  else if (m > 0 && m < 1) digits = 2;
  return `${m.toFixed(digits)} Mbit/s`;
}

/**
 * A line's speed as the daemon reports it ({kbit, source}) -> "100 Mbit/s (declared)";
 * the source says whether the number was declared, learned from the counters or a default.
 */
export function formatSpeed(speed) {
  const kbit = Number(speed && speed.kbit);
  if (!Number.isFinite(kbit) || kbit <= 0) return DASH;
  const text = formatMbps(kbit * 1000);
  return speed.source ? `${text} (${speed.source})` : text;
}

/**
 * The share of a line's speed ({kbit}) that a rate in bit/s uses -> "42 %" (at most
 * 100 %: a learned speed can lag behind a line that got faster); DASH when either is unknown.
 */
export function formatUse(bps, speed) {
  const cap = Number(speed && speed.kbit) * 1000;
  const r = Number(bps);
  if (bps === null || bps === undefined || !Number.isFinite(r) || !(cap > 0)) return DASH;
  return `${Math.round(Math.min(1, Math.max(0, r / cap)) * 100)} %`;
}

/** bits per second -> Mbit/s number for graphs (null stays null) */
export function toMbps(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(Number(bps))) return null;
  return Number(bps) / 1e6;
}

/** milliseconds -> "23.4 ms" (">= 100" without decimals) */
export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return DASH;
  const v = Number(ms);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ms`;
}

export function formatPercent(p, digits = 1) {
  if (p === null || p === undefined || !Number.isFinite(Number(p))) return DASH;
  const v = Number(p);
  return `${Number.isInteger(v) ? v : v.toFixed(digits)} %`;
}

/** A span of milliseconds -> "12s", "3m 12s", "1h 02m", "2d 3h". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return DASH;
  let s = Math.max(0, Math.floor(Number(ms) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** Uptime in seconds -> "3d 4h 12m" */
export function formatUptime(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return DASH;
  let s = Math.floor(Number(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60);
  if (d > 0) return `${d}d ${hr}h ${m}m`;
  if (hr > 0) return `${hr}h ${m}m`;
  return `${m}m ${s - m * 60}s`;
}

/** Bytes -> "1.5 GiB" */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(Number(bytes))) return DASH;
  let v = Number(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Unix ms -> local "14:03:27", with the date when not today (or when full is set). */
export function formatTime(ms, full = false) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return DASH;
  const d = new Date(Number(ms));
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const today = new Date();
  if (!full && d.toDateString() === today.toDateString()) return time;
  const date = d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
  return `${date} ${time}`;
}

/** "state_change" -> "state change" */
export function humanize(key) {
  return String(key).replace(/_/g, ' ');
}

// ---------- TOML-style paths ----------

/** "wan_interfaces[0].weight" -> ["wan_interfaces", 0, "weight"] */
export function parsePath(path) {
  const parts = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m;
  while ((m = re.exec(path)) !== null) {
    if (m[2] !== undefined) parts.push(Number(m[2]));
    else parts.push(m[1]);
  }
  return parts;
}

/** ["wan_interfaces", 0, "weight"] -> "wan_interfaces[0].weight" */
export function joinPath(parts) {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out;
}

/** Paths from the most to the least specific: a.b[0].c, a.b[0], a.b, a */
export function pathAncestors(path) {
  const parts = parsePath(path);
  const out = [];
  for (let n = parts.length; n > 0; n -= 1) out.push(joinPath(parts.slice(0, n)));
  return out;
}

export function getPath(obj, path) {
  let cur = obj;
  for (const p of Array.isArray(path) ? path : parsePath(path)) {
    if (cur === null || cur === undefined) return undefined;
    cur = cur[p];
  }
  return cur;
}

/** Set a value, creating objects/arrays on the way; `undefined` deletes the key. */
export function setPath(obj, path, value) {
  const parts = Array.isArray(path) ? path : parsePath(path);
  let cur = obj;
  for (let i = 0; i < parts.length - 1; i += 1) {
    const p = parts[i];
    if (cur[p] === null || cur[p] === undefined || typeof cur[p] !== 'object') {
      cur[p] = typeof parts[i + 1] === 'number' ? [] : {};
    }
    cur = cur[p];
  }
  const last = parts[parts.length - 1];
  if (value === undefined) {
    if (Array.isArray(cur) && typeof last === 'number') cur[last] = undefined;
    else delete cur[last];
  } else {
    cur[last] = value;
  }
  return obj;
}

/**
 * The data-testid of a config input: "config-<last key>-<parent path>", e.g.
 * wan_interfaces[0].weight -> "config-weight-wan_interfaces[0]",
 * health_check.retry_count -> "config-retry_count-health_check", a top-level key -> "config-<key>".
 */
export function configTestId(path) {
  const parts = parsePath(path);
  const last = parts[parts.length - 1];
  if (parts.length === 1) return `config-${last}`;
  const parent = joinPath(parts.slice(0, -1));
  if (typeof last === 'number') return `config-item-${parent}-${last}`;
  return `config-${last}-${parent}`;
}

// ---------- value parsing for inputs ----------

/** "8.8.8.8, 8.8.4.4" or one per line -> ["8.8.8.8", "8.8.4.4"] */
export function parseList(text) {
  return String(text || '')
    .split(/[\s,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function formatList(list) {
  return Array.isArray(list) ? list.join(', ') : '';
}

/** A number input's text -> number, or undefined when empty, or NaN when not a number. */
export function parseNumber(text) {
  const t = String(text ?? '').trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : NaN;
}

/** Deep copy of plain JSON data. */
export function clone(v) {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** The WAN role shown on a card: the daemon's `role` (disabled, maintenance, active, standby). */
export function wanRole(w) {
  return w.role ? String(w.role) : 'standby';
}

/** The state shown on a card: a disabled/maintained WAN shows grey "disabled". */
export function wanDisplayState(w) {
  const role = wanRole(w);
  if (role === 'disabled' || role === 'maintenance') return 'disabled';
  return w.state ? String(w.state) : 'unknown';
}

const MODE_TEXT = { dhcp: 'DHCP', static: 'Static', pppoe: 'PPPoE' };

/**
 * How a WAN's line is brought up, from the status' `line`: "PPPoE · VLAN 7", "DHCP",
 * "Static"; "System" when the system's own network config brings it up (no `mode`).
 */
export function lineText(line) {
  const l = line || {};
  const mode = l.mode ? MODE_TEXT[l.mode] || String(l.mode) : 'System';
  return l.vlan ? `${mode} · VLAN ${l.vlan}` : mode;
}

/**
 * A line's shaping for its card: {state, text, error}; state is off (not configured), on
 * (CAKE in place) or failed (configured, not in place: `error` says why).
 */
export function shapingView(shaping) {
  if (!shaping) return { state: 'off', text: 'off', error: null };
  const mbit = (kbit) => `${Number(kbit) / 1000}`;
  const rates = `↓ ${mbit(shaping.download_kbit)} / ↑ ${mbit(shaping.upload_kbit)} Mbit/s`;
  if (shaping.active) return { state: 'on', text: `on · ${rates}`, error: null };
  return { state: 'failed', text: `not applied: ${shaping.error || 'unknown error'}`, error: shaping.error || null };
}

const SESSION_TEXT = { connecting: 'connecting', up: 'up', down: 'down', auth_failed: 'authentication failed', stopped: 'stopped' };

/**
 * A PPPoE line's session for its card: {state, text, error}; state is the daemon's
 * (connecting | up | down | auth_failed) or "none" before pppd reported anything. Null for
 * lines that are not PPPoE.
 */
export function sessionView(line) {
  if (!line || line.mode !== 'pppoe') return null;
  const s = line.session;
  if (!s) return { state: 'none', text: 'not started yet', error: '' };
  const state = String(s.state || 'none');
  const error = s.last_error ? String(s.last_error) : '';
  let text = SESSION_TEXT[state] || state;
  if (error && state !== 'up' && error !== text) text += `: ${error}`;
  if (s.restarts > 0 && state !== 'up') text += ` (${s.restarts} ${s.restarts === 1 ? 'retry' : 'retries'})`;
  return { state, text, error };
}

/**
 * The HA pair's part of the status (`ha`: role, peer, since_ms, previous, engines) as the
 * dashboard's pair panel shows it; null when the box is not in a pair. `role` is what
 * keepalived last reported ("not reported yet" before its first notify), `change` the last
 * role change ("backup → master"), `vrrp`/`sync` keepalived's and conntrackd's states,
 * `peerConfig` whether the other box holds the same config (its beacon).
 */
export function pairView(ha, nowMs = Date.now()) {
  if (!ha) return null;
  const role = ha.role ? String(ha.role) : 'not reported yet';
  const since = Number(ha.since_ms);
  let change = DASH;
  if (ha.role && Number.isFinite(since) && since > 0) {
    const from = ha.previous ? `${ha.previous} → ` : '';
    change = `${from}${ha.role}, ${formatDuration(Math.max(0, nowMs - since))} ago`;
  }
  const engine = (name) => (ha.engines || []).find((e) => e.engine === name);
  const engineText = (name) => {
    const e = engine(name);
    if (!e) return DASH;
    let t = String(e.state);
    if (e.last_error && e.state !== 'running') t += `: ${e.last_error}`;
    if (e.restarts > 0) t += ` (${e.restarts} ${e.restarts === 1 ? 'restart' : 'restarts'})`;
    return t;
  };
  const PEER_CONFIG = { same: 'same as this box', differs: 'differs: edit both boxes alike', not_heard: 'not heard' };
  return {
    role,
    peer: ha.peer ? String(ha.peer) : DASH,
    peerConfig: PEER_CONFIG[ha.peer_config] || DASH,
    change,
    vrrp: engineText('keepalived'),
    sync: engineText('conntrackd'),
    healthy: ['master', 'backup'].includes(role) && ha.peer_config === 'same'
      && ['keepalived', 'conntrackd'].every((n) => (engine(n) || {}).state === 'running'),
  };
}

/**
 * A PPPoE section (as edited now) after its password field changed. The password is
 * write-only: the server shows `password_set` (and `password_file`) instead. Empty text keeps
 * the current password (the section keeps the `password_file` it came with, `keptFile`, or
 * none: the server then keeps what it has); a new password replaces the file, which the
 * server would otherwise refuse next to it.
 */
export function pppoeWithPassword(current, typed, keptFile) {
  const out = { ...(current || {}) };
  delete out.password;
  delete out.password_file;
  if (typed) out.password = typed;
  else if (keptFile) out.password_file = keptFile;
  return out;
}

/** Whether the server says a PPPoE section has a password (or a password file). */
export function pppoePasswordSet(pppoe) {
  return !!(pppoe && (pppoe.password_set === true || pppoe.password_file || pppoe.password));
}
