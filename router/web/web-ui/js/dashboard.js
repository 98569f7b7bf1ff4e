// Dashboard: a card per WAN (live from the stream), kill-switch controls with confirmation,
// latency/throughput graphs, the event log and the system panel.

import { api, enc } from './api.js';
import { confirmDialog, toast } from './dialogs.js';
import { onStream, latestStatus } from './stream.js';
import { WanCharts, chartUnavailable, wanColor } from './charts.js';
import { eventLog } from './events.js';
import {
  h, clear, DASH, formatMbps, formatMs, formatPercent, formatDuration, formatUptime,
  formatBytes, formatTime, wanRole, wanDisplayState, lineText, sessionView, formatSpeed, formatUse,
  shapingView, pairView,
} from './util.js';

const MAX_MAINT_MINUTES = 7 * 24 * 60;

const STATE_TEXT = {
  up: 'up', degraded: 'degraded', down: 'down', recovering: 'recovering', disabled: 'disabled', unknown: 'unknown',
};

/** Unix time of a maintenance end, given in seconds (daemon) or milliseconds. */
function untilMs(v) {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) return null;
  return n < 1e12 ? n * 1000 : n;
}

/** The WANs that may carry traffic (the daemon's `usable`), other than `except`. */
function usableWans(status, except) {
  return ((status && status.wans) || []).filter((w) => w.name !== except && w.usable === true);
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------- WAN cards ----------

function field(label, testid) {
  const dd = h('dd', { testid, text: DASH });
  return { node: h('div', { class: 'fig' }, h('dt', { text: label }), dd), dd };
}

function buildCard(name, index, ctx, actions) {
  const f = {
    line: field('Line', `wan-line-${name}`),
    device: field('Device', `wan-device-${name}`),
    address: field('Address', `wan-address-${name}`),
    gateway: field('Gateway', `wan-gateway-${name}`),
    latency: field('Latency', `wan-latency-${name}`),
    jitter: field('Jitter', `wan-jitter-${name}`),
    loss: field('Loss', `wan-loss-${name}`),
    rx: field('Down', `wan-rx-${name}`),
    tx: field('Up', `wan-tx-${name}`),
    connections: field('Connections', `wan-connections-${name}`),
    speedDown: field('Speed down', `wan-speed-down-${name}`),
    speedUp: field('Speed up', `wan-speed-up-${name}`),
    use: field('In use (down / up)', `wan-use-${name}`),
    shaping: field('Shaping', `wan-shaping-${name}`),
    ipv6: field('IPv6', `wan-ipv6-${name}`),
    ipv6Latency: field('IPv6 latency', `wan-ipv6-latency-${name}`),
  };
  const state = h('span', { class: 'state-pill', testid: `wan-state-${name}` });
  const role = h('span', { class: 'role-pill', testid: `wan-role-${name}` });
  const since = h('span', { class: 'since muted', testid: `wan-since-${name}` });
  const weight = h('span', { testid: `wan-weight-${name}`, text: DASH });
  const meta = h('div', { class: 'wan-meta' }, since, h('span', { class: 'muted small' }, 'weight ', weight));
  // PPPoE lines: the session as pppd reports it (state, and why the last one failed).
  const session = h('p', { class: 'wan-session small', testid: `wan-session-${name}`, hidden: true });
  const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  swatch.style.background = wanColor(index);

  let controls = null;
  const btn = {};
  let minutes = null;
  if (ctx.can('operator')) {
    btn.disable = h('button', { type: 'button', class: 'btn btn-small btn-danger-outline', testid: `wan-disable-${name}`, text: 'Disable', on: { click: () => actions.disable(name) } });
    btn.enable = h('button', { type: 'button', class: 'btn btn-small', testid: `wan-enable-${name}`, text: 'Enable', on: { click: () => actions.enable(name) } });
    minutes = h('input', { type: 'number', min: 1, max: MAX_MAINT_MINUTES, step: 1, value: '30', class: 'minutes', testid: `wan-maint-minutes-${name}`, 'aria-label': `Maintenance minutes for ${name}` });
    btn.maintenance = h('button', { type: 'button', class: 'btn btn-small', testid: `wan-maintenance-${name}`, text: 'Maintenance', on: { click: () => actions.maintenance(name, minutes) } });
    controls = h('div', { class: 'wan-controls', testid: `wan-controls-${name}` },
      btn.disable, btn.enable,
      h('span', { class: 'maint-group' }, btn.maintenance, minutes, h('span', { class: 'muted small', text: 'min' })));
  }

  const card = h('article', { class: 'card wan-card', testid: `wan-card-${name}`, dataset: { wan: name, state: 'unknown' } },
    h('header', { class: 'wan-head' },
      h('h2', { class: 'wan-name' }, swatch, name),
      h('div', { class: 'pills' }, state, role)),
    meta,
    session,
    h('dl', { class: 'wan-figures' }, Object.values(f).map((x) => x.node)),
    controls);
  return { card, f, state, role, since, weight, session, btn, minutes, sinceMs: null, untilMs: null, displayState: 'unknown', health: 'unknown' };
}

const wanName = (w) => w.name || DASH;

function updateCard(c, w) {
  const display = wanDisplayState(w);
  const role = wanRole(w);
  c.card.dataset.state = display;
  c.card.dataset.role = role;
  c.card.dataset.health = w.state || 'unknown';
  c.displayState = display;
  c.health = w.state || 'unknown';
  const out = role === 'disabled' || role === 'maintenance';
  // Out of service: the grey state pill names the reason and the role pill would repeat it.
  c.state.textContent = out ? role : STATE_TEXT[display] || display;
  c.state.dataset.state = display;
  c.role.textContent = role;
  c.role.dataset.role = role;
  // An unusable line the daemon still lists as active (every line is down: it keeps the
  // last routes) carries nothing: the red state pill says it all.
  c.role.hidden = out || (role === 'active' && w.usable !== true);
  c.sinceMs = Number(w.since_ms) || null;
  c.untilMs = role === 'maintenance' ? untilMs(w.maintenance_until) : null;
  const line = w.line || {};
  c.f.line.dd.textContent = lineText(line);
  c.card.dataset.mode = line.mode || 'system';
  c.f.device.dd.textContent = w.device || wanName(w);
  const s = sessionView(line);
  c.session.hidden = !s;
  if (s) {
    c.session.textContent = `PPPoE session: ${s.text}`;
    c.session.dataset.session = s.state;
  }
  c.f.address.dd.textContent = w.address || DASH;
  // A PPPoE line's next hop is its session's peer (no gateway address).
  c.f.gateway.dd.textContent = w.gateway || (w.address ? (line.mode === 'pppoe' ? 'PPP peer' : 'DHCP') : DASH);
  c.weight.textContent = w.weight ?? DASH;
  c.f.latency.dd.textContent = formatMs(w.latency_ms);
  c.f.jitter.dd.textContent = formatMs(w.jitter_ms);
  c.f.loss.dd.textContent = formatPercent(w.loss_percent);
  c.f.rx.dd.textContent = formatMbps(w.rx_bps);
  c.f.tx.dd.textContent = formatMbps(w.tx_bps);
  c.f.connections.dd.textContent = w.connections ?? DASH;
  // Speeds (declared, learned or default) and how much of them the line carries now: what
  // weights = "auto" and spare-capacity placement decide by.
  c.f.speedDown.dd.textContent = formatSpeed(w.speed_down);
  c.f.speedUp.dd.textContent = formatSpeed(w.speed_up);
  c.f.use.dd.textContent = `${formatUse(w.rx_bps, w.speed_down)} / ${formatUse(w.tx_bps, w.speed_up)}`;
  const shaping = shapingView(w.shaping);
  c.f.shaping.dd.textContent = shaping.text;
  c.f.shaping.dd.dataset.shaping = shaping.state;
  // The line's IPv6 side fails over on its own: its state, role and address.
  const v6 = w.ipv6;
  c.f.ipv6.dd.textContent = !v6 ? 'off'
    : !v6.address ? 'no address'
      : [v6.state || (v6.usable ? 'up' : 'down'), v6.active ? 'active' : (v6.usable ? 'standby' : 'out'), v6.address].join(' · ');
  c.f.ipv6.dd.dataset.usable = v6 && v6.usable ? 'true' : 'false';
  c.f.ipv6Latency.dd.textContent = v6 ? formatMs(v6.latency_ms) : DASH;
  if (c.btn.disable) {
    c.btn.disable.disabled = role === 'disabled';
    c.btn.enable.disabled = !out;
    c.btn.maintenance.disabled = false;
  }
  tickCard(c);
}

function tickCard(c) {
  const now = Date.now();
  let text = '';
  if (c.card.dataset.role === 'maintenance') {
    text = c.untilMs ? `back in service in ${formatDuration(Math.max(0, c.untilMs - now))}` : 'in maintenance';
    text += ` · line ${c.health}`;
  } else if (c.card.dataset.role === 'disabled') {
    text = `disabled by an operator · line ${c.health}`;
  } else if (c.sinceMs) {
    text = `${c.displayState} for ${formatDuration(now - c.sinceMs)}`;
  }
  c.since.textContent = text;
}

// ---------- system panel ----------

function meter(testid) {
  const fill = h('span', { class: 'meter-fill' });
  return { el: h('span', { class: 'meter', testid, role: 'presentation' }, fill), fill };
}

function setMeter(m, ratio) {
  const r = Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 0;
  m.fill.style.width = `${(r * 100).toFixed(1)}%`;
  m.el.dataset.level = r > 0.9 ? 'high' : r > 0.7 ? 'mid' : 'low';
  m.el.dataset.ratio = r.toFixed(3);
}

function systemPanel() {
  const v = (testid) => h('dd', { testid, text: DASH });
  const uptime = v('sys-uptime');
  const cpu = v('sys-cpu');
  const mem = v('sys-mem');
  const ct = v('sys-conntrack');
  const version = h('dd', { testid: 'sys-version', text: DASH });
  const cpuBar = meter('sys-cpu-bar');
  const memBar = meter('sys-mem-bar');
  const ctBar = meter('sys-conntrack-bar');
  const el = h('section', { class: 'card system-panel', testid: 'system-panel' },
    h('h2', { text: 'System' }),
    h('dl', { class: 'sys-list' },
      h('dt', { text: 'Uptime' }), uptime,
      h('dt', { text: 'CPU' }), h('div', { class: 'sys-meter' }, cpu, cpuBar.el),
      h('dt', { text: 'Memory' }), h('div', { class: 'sys-meter' }, mem, memBar.el),
      h('dt', { text: 'Connections' }), h('div', { class: 'sys-meter' }, ct, ctBar.el),
      h('dt', { text: 'Version' }), version));
  const update = (sys) => {
    if (!sys) return;
    uptime.textContent = formatUptime(sys.uptime_s);
    cpu.textContent = formatPercent(sys.cpu_percent);
    setMeter(cpuBar, Number(sys.cpu_percent) / 100);
    mem.textContent = sys.mem_total ? `${formatBytes(sys.mem_used)} of ${formatBytes(sys.mem_total)}` : DASH;
    setMeter(memBar, Number(sys.mem_used) / Number(sys.mem_total));
    ct.textContent = sys.conntrack_max ? `${sys.conntrack_count ?? 0} of ${sys.conntrack_max}` : String(sys.conntrack_count ?? DASH);
    setMeter(ctBar, Number(sys.conntrack_count) / Number(sys.conntrack_max));
    clear(version);
    const ver = sys.version ?? sys.versions;
    if (ver && typeof ver === 'object') {
      version.append(...Object.entries(ver).map(([k, x]) => h('span', { class: 'ver' }, h('span', { class: 'muted', text: `${k} ` }), String(x))));
    } else {
      version.textContent = ver ? String(ver) : DASH;
    }
  };
  return { el, update };
}

// ---------- HA pair panel (only while [ha] is enabled) ----------

function pairPanel() {
  const v = (testid) => h('dd', { testid, text: DASH });
  const role = h('span', { class: 'state-pill', testid: 'pair-role' });
  const peer = v('pair-peer');
  const peerConfig = v('pair-peer-config');
  const change = v('pair-change');
  const vrrp = v('pair-vrrp');
  const sync = v('pair-sync');
  const el = h('section', { class: 'card pair-panel', testid: 'pair-panel', hidden: true },
    h('div', { class: 'panel-head' }, h('h2', { text: 'HA pair' }), role),
    h('dl', { class: 'sys-list' },
      h('dt', { text: 'Peer' }), peer,
      h('dt', { text: 'Peer’s config' }), peerConfig,
      h('dt', { text: 'Last role change' }), change,
      h('dt', { text: 'VRRP (keepalived)' }), vrrp,
      h('dt', { text: 'Connection sync (conntrackd)' }), sync));
  const update = (ha) => {
    const p = pairView(ha);
    el.hidden = !p;
    if (!p) return;
    role.textContent = p.role;
    // The pill's colours: a master like an active line, a backup like a standby one.
    role.dataset.state = p.role === 'master' ? 'up' : p.role === 'backup' ? 'recovering' : 'down';
    peer.textContent = p.peer;
    peerConfig.textContent = p.peerConfig;
    peerConfig.dataset.state = ha.peer_config || '';
    change.textContent = p.change;
    vrrp.textContent = p.vrrp;
    sync.textContent = p.sync;
    el.dataset.healthy = String(p.healthy);
  };
  return { el, update };
}

// ---------- the view ----------

export async function mount(main, ctx) {
  const cards = new Map(); // name -> card state
  const grid = h('div', { class: 'wan-grid', testid: 'wan-grid' });
  const summary = h('div', { class: 'summary', testid: 'dash-summary' });
  const notices = h('div', { class: 'notices' });
  const latEl = h('div', { class: 'chart', testid: 'chart-latency' });
  const thrEl = h('div', { class: 'chart', testid: 'chart-throughput' });
  const system = systemPanel();
  const pair = pairPanel();
  const log = eventLog({ limit: 50 });
  let lastStatus = null;

  main.append(h('section', { class: 'page dashboard' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Dashboard' }), summary),
    notices,
    grid,
    h('div', { class: 'chart-row' },
      h('section', { class: 'card chart-card' }, latEl),
      h('section', { class: 'card chart-card' }, thrEl)),
    h('div', { class: 'bottom-row' },
      h('section', { class: 'card events-panel', testid: 'events-panel' },
        h('div', { class: 'panel-head' }, h('h2', { text: 'Recent events' }), h('a', { href: '#/events', class: 'small', testid: 'events-all', text: 'All events →' })),
        log.el),
      h('div', { class: 'side-panels' }, system.el, pair.el))));

  const charts = new WanCharts(latEl, thrEl, 3600);
  if (!charts.available) {
    latEl.append(chartUnavailable());
  }
  const historyLoaded = new Set();

  const refresh = async () => {
    try {
      apply(await api.get('/status', { quiet: true }));
    } catch { /* the stream will bring it */ }
  };

  const actions = {
    async disable(wan) {
      const ok = await confirmDialog({
        title: `Disable ${wan}?`,
        okLabel: `Disable ${wan}`,
        danger: true,
        body: async () => impactText(wan, 'disable'),
      });
      if (!ok) return;
      await act(wan, 'disable');
    },
    async enable(wan) {
      const ok = await confirmDialog({
        title: `Enable ${wan}?`,
        okLabel: `Enable ${wan}`,
        body: [
          `${wan} will carry new connections again as soon as its health checks pass.`,
          'Connections already running on the other lines stay where they are.',
        ],
      });
      if (!ok) return;
      await act(wan, 'enable');
    },
    async maintenance(wan, input) {
      const minutes = Math.round(Number(input.value));
      if (!Number.isFinite(minutes) || minutes < 1 || minutes > MAX_MAINT_MINUTES) {
        toast(`Maintenance minutes must be between 1 and ${MAX_MAINT_MINUTES}.`, 'error');
        input.focus();
        return;
      }
      const ok = await confirmDialog({
        title: `Maintenance on ${wan} for ${plural(minutes, 'minute', 'minutes')}?`,
        okLabel: 'Start maintenance',
        danger: true,
        body: async () => impactText(wan, 'maintenance', minutes),
      });
      if (!ok) return;
      await act(wan, 'maintenance', { minutes });
    },
  };

  // What taking `wan` out of service does, as the daemon will do it (GET /impact): its
  // connections are reset only when another line is in service to take them over; with no
  // other line they keep running on it, and a line already out of service has none to reset.
  async function impactText(wan, action, minutes) {
    const impact = await api.get(`/wans/${enc(wan)}/impact`, { quiet: true });
    const known = impact && impact.connections !== null && impact.connections !== undefined;
    const n = known ? Number(impact.connections) || 0 : 0;
    const reset = Number(impact && impact.reset_connections) || 0;
    const takeover = (impact && Array.isArray(impact.takeover)) ? impact.takeover : [];
    const via = takeover.length ? takeover.join(', ') : 'the other lines';
    const out = [];
    if (impact && impact.in_service === false) {
      out.push(h('p', { testid: 'impact-text', text: `${wan} is not carrying traffic now (${wanDisplayState(cardStatus(wan))}): no connections are reset.` }));
    } else if (reset > 0) {
      out.push(h('p', { testid: 'impact-text' }, h('strong', { text: plural(reset, 'connection', 'connections') }), ` on ${wan} will be reset and reconnect through ${via}.`));
    } else if (known && n > 0 && !takeover.length) {
      out.push(h('p', { testid: 'impact-text' }, 'Nothing is reset: ', h('strong', { text: plural(n, 'connection', 'connections') }), ` keep running on ${wan}, as there is no other line to move them to.`));
    } else if (known) {
      out.push(h('p', { testid: 'impact-text', text: `No connections on ${wan} need to be reset.` }));
    } else {
      out.push(h('p', { testid: 'impact-text', text: `The connections on ${wan} will be reset and reconnect through ${via}.` }));
    }
    if (action === 'disable') {
      out.push(`New connections will avoid ${wan} until you enable it.`);
    } else {
      const end = formatTime(Date.now() + minutes * 60000);
      out.push(`New connections will avoid ${wan} for ${plural(minutes, 'minute', 'minutes')} (until about ${end}); then it returns to service by itself. Enable ends it early.`);
    }
    const noOther = impact && Array.isArray(impact.takeover) ? takeover.length === 0 : !!lastStatus && usableWans(lastStatus, wan).length === 0;
    if (noOther) {
      out.push(h('p', { class: 'warn-text', testid: 'impact-warning', text: `No other line is up: new connections from the LAN get no internet access while ${wan} is out of service.` }));
    }
    return out;
  }

  function cardStatus(wan) {
    return ((lastStatus && lastStatus.wans) || []).find((w) => w.name === wan) || {};
  }

  async function act(wan, action, body) {
    const c = cards.get(wan);
    const buttons = c ? Object.values(c.btn) : [];
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const res = await api.post(`/wans/${enc(wan)}/${action}`, body || {});
      const msg = (res && res.message) || `${wan}: ${action} done`;
      const nReset = Number(res && res.reset_connections);
      const reset = Number.isFinite(nReset) && nReset > 0 ? ` (${plural(nReset, 'connection', 'connections')} reset)` : '';
      toast(msg + reset, 'success');
    } catch { /* api.js showed the error */ }
    await refresh();
    if (c && lastStatus) {
      const w = (lastStatus.wans || []).find((x) => x.name === wan);
      if (w) updateCard(c, w);
    }
  }

  function apply(status) {
    if (!status || !Array.isArray(status.wans)) return;
    lastStatus = status;
    const names = status.wans.map((w) => w.name);
    status.wans.forEach((w, i) => {
      let c = cards.get(w.name);
      if (!c) {
        c = buildCard(w.name, i, ctx, actions);
        cards.set(w.name, c);
      }
      updateCard(c, w);
      if (grid.children[i] !== c.card) grid.insertBefore(c.card, grid.children[i] || null);
    });
    for (const [name, c] of cards) {
      if (!names.includes(name)) {
        c.card.remove();
        cards.delete(name);
      }
    }
    grid.dataset.count = String(names.length);
    renderSummary(status);
    system.update(status.system);
    pair.update(status.ha);
    log.setWans(names);
    charts.setWans(names);
    charts.appendStatus(status);
    for (const n of names) {
      if (historyLoaded.has(n)) continue;
      historyLoaded.add(n);
      api.get(`/history/${enc(n)}?seconds=3600`, { quiet: true })
        .then((res) => { charts.loadHistory(n, res && res.points); charts.flush(true); })
        .catch(() => {});
    }
  }

  function renderSummary(status) {
    clear(summary);
    const mode = status.mode === 'failover' ? 'Failover by priority' : status.mode === 'ecmp' ? 'Weighted balancing' : status.mode;
    // The daemon keeps its last routes when every line is down (no blackhole), so a down
    // line can still be "active": it carries nothing. Count only usable active lines.
    const live = new Set(usableWans(status).map((w) => w.name));
    const active = (Array.isArray(status.active_wans) ? status.active_wans : status.wans.filter((w) => wanRole(w) === 'active').map((w) => w.name))
      .filter((n) => live.has(n));
    if (mode) summary.append(h('span', { class: 'chip', testid: 'dash-mode', text: mode }));
    summary.append(h('span', { class: 'chip', testid: 'dash-active' }, 'Carrying traffic: ', h('strong', { text: active.length ? active.join(', ') : 'none' })));
    clear(notices);
    const paused = untilMs(status.failover_paused_until);
    if (paused && paused > Date.now()) {
      notices.append(h('div', { class: 'notice notice-warn', testid: 'notice-paused', text: `Failover is paused (maintenance) until ${formatTime(paused)}.` }));
    }
    if (status.last_error) {
      notices.append(h('div', { class: 'notice notice-error', testid: 'notice-error', text: `Last apply failed: ${status.last_error}` }));
    }
    if (!active.length && status.wans.length) {
      notices.append(h('div', { class: 'notice notice-error', testid: 'notice-offline', text: 'No WAN is up and in service: new connections from the LAN get no internet access.' }));
    }
  }

  const offStatus = onStream('status', apply);
  const ticker = setInterval(() => cards.forEach(tickCard), 1000);
  const cached = latestStatus();
  if (cached) apply(cached);
  await refresh();

  return () => {
    offStatus();
    clearInterval(ticker);
    charts.destroy();
    log.destroy();
  };
}
