// System page: the running appliance image version and its A/B upgrade (GET/POST
// /api/v1/system/upgrade, POST /api/v1/system/upgrade/bundle). Every role sees the state, the
// log of the last upgrade and the history; admins can start an upgrade from a URL or by
// uploading a bundle (XMLHttpRequest: fetch has no upload progress). The state is polled every
// 2 s while the page is open; while the router reboots into the new version the poll keeps
// going quietly until it answers again.

import { api, ApiError, BASE, errorText } from './api.js';
import { confirmDialog, toast } from './dialogs.js';
import { h, clear, DASH, formatBytes, formatDuration, formatTime } from './util.js';

export const POLL_MS = 2000;

/** States in which nothing new can be started: the root helper has (or is about to have) work. */
const BUSY = ['queued', 'running', 'rebooting'];

const STATES = {
  idle: { label: 'idle', tone: 'neutral' },
  queued: { label: 'queued', tone: 'busy' },
  running: { label: 'installing', tone: 'busy' },
  failed: { label: 'failed', tone: 'error' },
  rebooting: { label: 'rebooting', tone: 'busy' },
  installed: { label: 'installed', tone: 'ok' },
  rolled_back: { label: 'rolled back', tone: 'warn' },
};

// ---------- pure helpers (unit-tested in router/web-ui-tests/system.test.mjs) ----------

/** Whether an upgrade is under way (queued, running, rebooting). */
export function upgradeBusy(state) {
  return BUSY.includes(String(state || ''));
}

/** Badge text and tone (neutral | busy | error | ok | warn) of an upgrade state. */
export function stateInfo(state) {
  const s = String(state || 'idle');
  return STATES[s] || { label: s.replace(/_/g, ' '), tone: 'neutral' };
}

/**
 * Whether an admin may start an upgrade now, and if not why:
 * {ok: true} or {ok: false, reason: "..."}.
 */
export function actionBlock(status) {
  if (!status) return { ok: false, reason: 'Reading the upgrade state…' };
  if (status.available === false) {
    return { ok: false, reason: status.unavailable_reason || 'Upgrades are not available on this router.' };
  }
  if (upgradeBusy(status.state)) {
    return {
      ok: false,
      reason: status.state === 'rebooting'
        ? 'The router is restarting into the new version.'
        : 'An upgrade is already under way.',
    };
  }
  return { ok: true, reason: '' };
}

/**
 * The reasons a 400 gives for one body field. The server's fields are [{path, reason}]; the
 * {field, message} spelling is accepted too.
 */
export function fieldReasons(fields, name) {
  return (Array.isArray(fields) ? fields : [])
    .filter((f) => f && (f.path ?? f.field) === name)
    .map((f) => String(f.reason ?? f.message ?? ''))
    .filter(Boolean);
}

/**
 * The server's messages are lower-case phrases ("waiting for the upgrade service to start"):
 * capitalise a leading plain word for display; leave names, versions and paths alone.
 */
export function sentence(text) {
  const t = String(text ?? '').trim();
  return /^[a-z]+(\s|$)/.test(t) ? t[0].toUpperCase() + t.slice(1) : t;
}

/** "router_0.1.0.2.upgrade.tar" (or a URL ending in it) -> "0.1.0.2"; anything else -> null. */
export function bundleVersion(nameOrUrl) {
  const base = String(nameOrUrl || '').split(/[?#]/)[0].split('/').pop();
  const m = /^router_(.+)\.upgrade\.tar$/.exec(base);
  return m ? m[1] : null;
}

/** Upload progress: "120 MiB of 260 MiB (46 %)", or just what was sent when the size is unknown. */
export function progressText(loaded, total) {
  const l = Number(loaded) || 0;
  const t = Number(total) || 0;
  if (t <= 0) return `${formatBytes(l)} sent`;
  const pct = Math.min(100, Math.floor((l / t) * 100));
  return `${formatBytes(l)} of ${formatBytes(t)} (${pct} %)`;
}

/**
 * A history line "2026-11-28T14:00:00Z installed 0.1.0.2 from 0.1.0.1 (3 tries)" ->
 * {atMs, text: "installed 0.1.0.2 from 0.1.0.1 (3 tries)"}; a line without a leading
 * timestamp -> {atMs: null, text: line}.
 */
export function parseHistoryLine(line) {
  const s = String(line ?? '').trim();
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s+(.*)$/.exec(s);
  if (m) {
    const atMs = Date.parse(m[1]);
    if (Number.isFinite(atMs)) return { atMs, text: m[2] };
  }
  return { atMs: null, text: s };
}

// ---------- the upload (kept across route changes: the DOM goes, the transfer does not) ----------

/** The bundle being uploaded: {xhr, name, loaded, total, listeners:Set} or null. */
let upload = null;

function notifyUpload() {
  if (upload) upload.listeners.forEach((fn) => fn(upload));
}

/** Resolves with the JSON answer; rejects with an ApiError (status 0: network, or aborted). */
function sendBundle(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    upload = { xhr, name: file.name, loaded: 0, total: file.size, listeners: new Set() };
    const warnLeave = (ev) => { ev.preventDefault(); ev.returnValue = ''; };
    window.addEventListener('beforeunload', warnLeave);
    const done = () => {
      window.removeEventListener('beforeunload', warnLeave);
      upload = null;
    };
    xhr.open('POST', `${BASE}/system/upgrade/bundle`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (ev) => {
      if (!upload) return;
      upload.loaded = ev.loaded;
      if (ev.lengthComputable) upload.total = ev.total;
      notifyUpload();
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch {
        data = { error: `http_${xhr.status}`, message: String(xhr.responseText).slice(0, 200) };
      }
      done();
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener('error', () => {
      done();
      reject(new ApiError(0, { error: 'network', message: 'The upload was interrupted: the router did not take the file.' }));
    });
    xhr.addEventListener('abort', () => {
      done();
      reject(new ApiError(0, { error: 'aborted', message: 'Upload cancelled.' }));
    });
    xhr.send(file);
  });
}

// ---------- the view ----------

function row(label, testid) {
  const dt = h('dt', { text: label });
  const dd = h('dd', { testid, text: DASH });
  return {
    dt,
    dd,
    set(text) { dd.textContent = text === null || text === undefined || text === '' ? DASH : String(text); },
    show(on) { dt.hidden = !on; dd.hidden = !on; },
  };
}

function whatHappens(status) {
  const current = status && status.running_version;
  return [
    h('ul', { class: 'impact-list', testid: 'upgrade-impact' },
      h('li', { text: 'The router checks the bundle’s signature and refuses a bundle that is not signed by a trusted key.' }),
      h('li', { text: 'It writes the new version to its other system slot; the running version stays untouched until the restart.' }),
      h('li', { class: 'warn-text', text: 'Then it reboots into the new version: LAN clients lose their internet connection for a few minutes.' }),
      h('li', { text: `If the new version does not come up and pass its boot check, the router falls back to ${current ? `the current version ${current}` : 'the current version'} by itself.` }),
      h('li', { text: 'The configuration, users and keys are kept.' })),
  ];
}

export async function mount(main, ctx) {
  const isAdmin = ctx.can('admin');
  let status = null;
  let timer = null;
  let alive = true;
  let inFlight = false;
  let failures = 0;

  // --- status card ---
  const version = h('span', { class: 'version-value', testid: 'upgrade-running-version', text: DASH });
  const badge = h('span', { class: 'upgrade-state', testid: 'upgrade-state', dataset: { state: 'idle', tone: 'neutral' }, text: '…' });
  const message = h('div', { class: 'notice upgrade-message', testid: 'upgrade-message', hidden: true });
  const reboot = h('div', { class: 'notice notice-info', testid: 'upgrade-rebooting', role: 'status', hidden: true });
  const conn = h('p', { class: 'small warn-text', testid: 'upgrade-conn', hidden: true });
  const rows = {
    target: row('Target version', 'upgrade-target'),
    source: row('Source', 'upgrade-source'),
    by: row('Requested by', 'upgrade-by'),
    updated: row('Updated', 'upgrade-updated'),
  };
  rows.source.dd.classList.add('wrap-anywhere');
  const statusCard = h('section', { class: 'card upgrade-status', testid: 'upgrade-status' },
    h('h2', { text: 'Appliance image' }),
    h('dl', { class: 'sys-list' },
      h('dt', { text: 'Running version' }), h('dd', {}, version),
      h('dt', { text: 'Upgrade' }), h('dd', {}, badge),
      Object.values(rows).map((r) => [r.dt, r.dd])),
    message, reboot, conn);

  // --- admin card ---
  let actionCard = null;
  const ui = {};
  if (isAdmin) {
    ui.unavailable = h('div', { class: 'notice', testid: 'upgrade-unavailable', hidden: true });
    ui.url = h('input', {
      type: 'url', id: 'upgrade-url', testid: 'upgrade-url', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'https://…/router_<version>.upgrade.tar', 'data-path': 'url',
    });
    ui.urlError = h('p', { class: 'field-error', testid: 'upgrade-url-error', dataset: { errorFor: 'url' }, hidden: true });
    ui.urlSubmit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'upgrade-url-submit', text: 'Upgrade from URL' });
    ui.urlForm = h('form', { class: 'upgrade-form', testid: 'upgrade-url-form', novalidate: true },
      h('div', { class: 'field' },
        h('label', { for: 'upgrade-url', text: 'Bundle URL' }),
        h('div', { class: 'input-row' }, ui.url, ui.urlSubmit),
        ui.urlError,
        h('p', { class: 'help', text: 'The router downloads the bundle itself: the address must be reachable from the router.' })));

    ui.file = h('input', { type: 'file', id: 'upgrade-file', testid: 'upgrade-file', accept: '.tar,application/x-tar' });
    ui.fileSubmit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'upgrade-file-submit', text: 'Upload and upgrade', disabled: true });
    ui.fileError = h('p', { class: 'field-error', testid: 'upgrade-file-error', dataset: { errorFor: 'bundle' }, hidden: true });
    ui.fill = h('span', { class: 'meter-fill' });
    ui.meter = h('span', { class: 'meter upgrade-meter', testid: 'upgrade-progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': 'Upload progress' }, ui.fill);
    ui.progressText = h('span', { class: 'small muted', testid: 'upgrade-progress-text' });
    ui.cancel = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'upgrade-upload-cancel', text: 'Cancel upload' });
    ui.progress = h('div', { class: 'upload-progress', testid: 'upgrade-upload', hidden: true },
      h('div', { class: 'upload-progress-head' }, ui.progressText, ui.cancel), ui.meter);
    ui.fileForm = h('form', { class: 'upgrade-form', testid: 'upgrade-file-form', novalidate: true },
      h('div', { class: 'field' },
        h('label', { for: 'upgrade-file', text: 'Bundle file' }),
        h('div', { class: 'input-row' }, ui.file, ui.fileSubmit),
        ui.fileError,
        h('p', { class: 'help', text: 'A file downloaded to this computer; keep this page open until the upload is done.' })),
      ui.progress);

    actionCard = h('section', { class: 'card upgrade-actions', testid: 'upgrade-actions' },
      h('h2', { text: 'Install an upgrade' }),
      h('p', { class: 'muted small', text: 'A signed upgrade bundle, router_<version>.upgrade.tar (about 260 MB). The router installs it in its other system slot and restarts into it; if the new version fails its boot check it comes back on this one.' }),
      ui.unavailable,
      ui.urlForm,
      h('div', { class: 'or-sep', 'aria-hidden': 'true' }, h('span', { text: 'or' })),
      ui.fileForm);
  } else {
    actionCard = h('section', { class: 'card upgrade-actions', testid: 'upgrade-actions-readonly' },
      h('h2', { text: 'Install an upgrade' }),
      h('p', { class: 'muted', text: 'Installing an upgrade needs the admin role. This page shows the state of the router’s upgrades.' }));
  }

  // --- log and history ---
  const logPre = h('pre', { class: 'upgrade-log', testid: 'upgrade-log', dataset: { count: '0' } });
  const logEmpty = h('p', { class: 'muted empty', testid: 'upgrade-log-empty', text: 'No output yet.' });
  const logSummary = h('summary', { text: 'Output of the last upgrade' });
  const logCard = h('section', { class: 'card' },
    h('details', { class: 'log-details', open: true, testid: 'upgrade-log-details' }, logSummary, logPre, logEmpty));
  const histList = h('ol', { class: 'history-list', testid: 'upgrade-history', dataset: { count: '0' } });
  const histEmpty = h('p', { class: 'muted empty', testid: 'upgrade-history-empty', text: 'No upgrades yet.' });
  const histCard = h('section', { class: 'card' },
    h('h2', { text: 'History' }),
    h('p', { class: 'muted small', text: 'Installs and fallbacks on this router, newest first.' }),
    histList, histEmpty);

  main.append(h('section', { class: 'page system-page', testid: 'system-page' },
    h('div', { class: 'page-head' },
      h('h1', { text: 'System' }),
      h('p', { class: 'muted', text: 'The appliance image this router runs, and upgrades to a new one (A/B: the new version goes to the other slot and the router falls back by itself if it does not boot).' })),
    h('div', { class: 'two-col' }, statusCard, actionCard),
    h('div', { class: 'two-col upgrade-lower' }, logCard, histCard)));

  // --- rendering ---
  let lastLog = null;
  let lastHistory = null;

  function render(s) {
    status = s;
    version.textContent = s.running_version || DASH;
    const info = stateInfo(s.state);
    badge.textContent = info.label;
    badge.dataset.state = String(s.state || 'idle');
    badge.dataset.tone = info.tone;

    // While rebooting, the reboot notice below says it all (and counts the time).
    const msg = s.state === 'rebooting' ? '' : sentence(s.message);
    message.textContent = msg;
    message.hidden = !msg;
    message.dataset.tone = info.tone;

    const values = {
      target: s.target_version,
      source: s.source,
      by: s.requested_by,
      updated: s.updated_ms ? formatTime(s.updated_ms, true) : null,
    };
    for (const [k, v] of Object.entries(values)) {
      rows[k].set(v);
      rows[k].show(v !== null && v !== undefined && v !== '');
    }

    renderReboot();

    const lines = Array.isArray(s.log) ? s.log.map(String) : [];
    const logKey = lines.join('\n');
    if (logKey !== lastLog) {
      lastLog = logKey;
      clear(logPre);
      lines.forEach((l, i) => {
        if (i > 0) logPre.append('\n');
        logPre.append(h('span', { class: 'log-line', testid: 'upgrade-log-line' }, l));
      });
      logPre.dataset.count = String(lines.length);
      logPre.hidden = !lines.length;
      logEmpty.hidden = !!lines.length;
      logSummary.textContent = lines.length ? `Output of the last upgrade (last ${lines.length} ${lines.length === 1 ? 'line' : 'lines'})` : 'Output of the last upgrade';
      if (upgradeBusy(s.state)) logPre.scrollTop = logPre.scrollHeight;
    }

    const hist = Array.isArray(s.history) ? s.history.map(String) : [];
    const histKey = hist.join('\n');
    if (histKey !== lastHistory) {
      lastHistory = histKey;
      clear(histList);
      for (const line of hist.slice().reverse()) {
        const p = parseHistoryLine(line);
        histList.append(h('li', { class: 'history-row', testid: 'upgrade-history-row', dataset: { line }, title: line },
          h('span', { class: 'history-time muted', text: p.atMs ? formatTime(p.atMs, true) : '' }),
          h('span', { class: 'history-text', text: p.text })));
      }
      histList.dataset.count = String(hist.length);
      histEmpty.hidden = hist.length > 0;
    }

    renderActions();
  }

  function renderReboot() {
    const s = status;
    if (!s || s.state !== 'rebooting') { reboot.hidden = true; return; }
    const target = s.target_version ? ` into ${s.target_version}` : '';
    const since = s.updated_ms ? ` (${formatDuration(Date.now() - Number(s.updated_ms))} so far)` : '';
    reboot.textContent = `The router is restarting${target}${since}. LAN clients are offline meanwhile. This page comes back by itself when the router answers again, usually within a few minutes; you will be asked to log in again.`;
    reboot.hidden = false;
  }

  function renderActions() {
    if (!isAdmin) return;
    const block = actionBlock(status);
    const uploading = !!upload;
    // Why the actions are off: not an appliance image (warn), or an upgrade under way (info).
    const unavailable = !!status && status.available === false;
    ui.unavailable.textContent = unavailable || !status ? block.reason : `${block.reason} Wait for it to finish.`;
    ui.unavailable.hidden = block.ok || !status;
    ui.unavailable.dataset.kind = unavailable ? 'unavailable' : 'busy';
    ui.unavailable.className = unavailable ? 'notice notice-warn' : 'busy-note muted small';
    const off = !block.ok || uploading;
    ui.url.disabled = off;
    ui.urlSubmit.disabled = off;
    ui.file.disabled = off;
    ui.fileSubmit.disabled = off || !(ui.file.files && ui.file.files.length);
    const title = block.ok ? (uploading ? 'An upload is in progress.' : '') : block.reason;
    for (const b of [ui.urlSubmit, ui.fileSubmit]) b.title = title;
    renderUpload();
  }

  function renderUpload() {
    if (!isAdmin) return;
    ui.progress.hidden = !upload;
    if (!upload) return;
    const ratio = upload.total > 0 ? Math.min(1, upload.loaded / upload.total) : 0;
    ui.fill.style.width = `${(ratio * 100).toFixed(1)}%`;
    ui.meter.dataset.ratio = ratio.toFixed(3);
    ui.meter.setAttribute('aria-valuenow', String(Math.floor(ratio * 100)));
    ui.progressText.textContent = ratio >= 1
      ? `${upload.name}: ${progressText(upload.loaded, upload.total)} · waiting for the router to store it…`
      : `${upload.name}: ${progressText(upload.loaded, upload.total)}`;
  }

  // --- polling ---
  async function poll() {
    if (!alive || inFlight) return;
    inFlight = true;
    try {
      const s = await api.get('/system/upgrade', { quiet: true, noRedirect: true });
      failures = 0;
      conn.hidden = true;
      if (alive && s) render(s);
    } catch (e) {
      if (!alive) return;
      failures += 1;
      if (e instanceof ApiError && e.status === 401) {
        // Sessions live in memory: after the reboot everyone logs in again. Reload the page
        // (the new version may bring a new UI) and come back here after the login.
        sessionLost();
        return;
      }
      if (e instanceof ApiError && e.status === 403 && e.code === 'setup_required') {
        api.get('/system/upgrade').catch(() => {}); // let api.js send us to the wizard
        return;
      }
      if (status && status.state === 'rebooting') {
        // Expected: the router is down. Keep the reboot notice (its "so far" ticks on).
        renderReboot();
        conn.hidden = true;
      } else {
        conn.textContent = failures > 1 ? `The router does not answer (${errorText(e)}); retrying…` : '';
        conn.hidden = failures < 2;
      }
    } finally {
      inFlight = false;
      if (alive) timer = setTimeout(poll, POLL_MS);
    }
  }

  function sessionLost() {
    // Reload rather than switch views: after a reboot into a new version the UI files may be
    // new too. The reloaded app finds no session, shows the login and comes back to #/system.
    alive = false;
    location.hash = '#/system';
    location.reload();
  }

  // --- actions ---
  function showFieldError(slot, input, text) {
    slot.textContent = text || '';
    slot.hidden = !text;
    const field = slot.closest('.field');
    if (field) field.classList.toggle('has-error', !!text);
    if (input) {
      if (text) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
  }

  function handleError(e, slot, input, name) {
    if (e instanceof ApiError && e.status === 401) { sessionLost(); return; }
    const reasons = e instanceof ApiError ? fieldReasons(e.fields, name) : [];
    if (reasons.length) {
      showFieldError(slot, input, reasons.join('; '));
      if (input) input.focus();
      return;
    }
    if (e instanceof ApiError && e.status === 400) {
      showFieldError(slot, input, errorText(e));
      return;
    }
    if (e instanceof ApiError && e.code === 'aborted') {
      toast(e.message, 'info');
      return;
    }
    toast(errorText(e), 'error');
  }

  async function submitted(res) {
    if (res && typeof res === 'object' && 'state' in res) render(res);
    toast('Upgrade requested: the router checks the bundle and installs it, then restarts.', 'success');
    if (timer) clearTimeout(timer);
    timer = null;
    if (!inFlight) poll();
  }

  if (isAdmin) {
    ui.url.addEventListener('input', () => showFieldError(ui.urlError, ui.url, ''));
    ui.urlForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const url = ui.url.value.trim();
      showFieldError(ui.urlError, ui.url, '');
      if (!url) {
        showFieldError(ui.urlError, ui.url, 'Enter the address of an upgrade bundle.');
        ui.url.focus();
        return;
      }
      if (!actionBlock(status).ok) return;
      const ver = bundleVersion(url);
      const ok = await confirmDialog({
        title: ver ? `Upgrade the router to ${ver}?` : 'Upgrade the router?',
        okLabel: 'Upgrade and reboot',
        danger: true,
        body: [
          h('p', {}, 'The router downloads ', h('span', { class: 'mono wrap-anywhere', text: url }), '.'),
          ...whatHappens(status),
        ],
      });
      if (!ok || !alive) return;
      ui.urlSubmit.disabled = true;
      try {
        const res = await api.post('/system/upgrade', { url }, { quiet: true, noRedirect: true });
        await submitted(res);
      } catch (e) {
        handleError(e, ui.urlError, ui.url, 'url');
      } finally {
        if (alive) renderActions();
      }
    });

    ui.file.addEventListener('change', () => {
      showFieldError(ui.fileError, null, '');
      renderActions();
    });
    ui.cancel.addEventListener('click', () => { if (upload) upload.xhr.abort(); });
    ui.fileForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = ui.file.files && ui.file.files[0];
      showFieldError(ui.fileError, null, '');
      if (!file) return;
      if (!actionBlock(status).ok || upload) return;
      const ver = bundleVersion(file.name);
      const ok = await confirmDialog({
        title: ver ? `Upgrade the router to ${ver}?` : 'Upgrade the router?',
        okLabel: 'Upload and upgrade',
        danger: true,
        body: [
          h('p', {}, 'This computer uploads ', h('span', { class: 'mono wrap-anywhere', text: file.name }), ` (${formatBytes(file.size)}) to the router; keep this page open until the upload is done.`),
          ver ? null : h('p', { class: 'warn-text', testid: 'upgrade-name-warning', text: 'The file name does not look like an upgrade bundle (router_<version>.upgrade.tar); the router refuses it unless it is a signed bundle.' }),
          ...whatHappens(status),
        ],
      });
      if (!ok || !alive) return;
      const p = sendBundle(file);
      const listener = () => renderUpload();
      upload.listeners.add(listener);
      renderActions();
      try {
        const res = await p;
        ui.file.value = '';
        if (alive) await submitted(res);
        else toast('Upgrade bundle uploaded: the router checks it and installs it, then restarts.', 'success');
      } catch (e) {
        if (alive) handleError(e, ui.fileError, null, 'bundle');
        else toast(errorText(e), e.code === 'aborted' ? 'info' : 'error');
      } finally {
        if (alive) renderActions();
      }
    });
    // An upload started before leaving the page and coming back: follow it again.
    if (upload) upload.listeners.add(() => { if (alive) renderUpload(); });
  }

  const ticker = setInterval(() => { if (status && status.state === 'rebooting') renderReboot(); }, 1000);
  renderActions();
  await poll();

  return () => {
    alive = false;
    if (timer) clearTimeout(timer);
    clearInterval(ticker);
    if (upload) upload.listeners.clear();
  };
}
