// Latency and throughput graphs with uPlot (vendor/uPlot.iife.min.js, global `uPlot`).
// One series per WAN for latency (ms); two per WAN for throughput (Mbit/s: down solid,
// up dashed). History comes from /api/v1/history/{wan}; the stream's status appends a point
// per WAN each second. Only the last hour is kept.

import { toMbps, h } from './util.js';

const PALETTE = ['#2563eb', '#c026d3', '#0d9488', '#ea580c', '#65a30d', '#db2777', '#7c3aed', '#0284c7'];
const HEIGHT = 220;
const MIN_SPAN_S = 300;
const TIME_INCRS = [60, 120, 300, 600, 900, 1800, 3600];

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function round1(v) {
  return v === null || v === undefined || !Number.isFinite(Number(v)) ? null : Number(v);
}

export function wanColor(index) {
  return PALETTE[index % PALETTE.length];
}

export class WanCharts {
  /** latencyEl/throughputEl: empty containers; windowSeconds: how much history to show */
  constructor(latencyEl, throughputEl, windowSeconds = 3600) {
    this.latencyEl = latencyEl;
    this.throughputEl = throughputEl;
    this.window = windowSeconds;
    this.wans = [];
    this.series = new Map(); // wan -> {t:[], lat:[], rx:[], tx:[]}
    this.latency = null;
    this.throughput = null;
    this.dirty = false;
    this.timer = setInterval(() => this.flush(), 1000);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(latencyEl);
    this.resize.observe(throughputEl);
  }

  get available() {
    return typeof window.uPlot === 'function';
  }

  /** Set the WANs shown (in card order); rebuilds the plots when the set changes. */
  setWans(names) {
    if (names.join('\n') === this.wans.join('\n')) return;
    this.wans = names.slice();
    for (const n of names) if (!this.series.has(n)) this.series.set(n, { t: [], lat: [], rx: [], tx: [] });
    this.build();
  }

  /** Points from /history: [{t_ms, latency_ms, rx_bps, tx_bps}], oldest first. */
  loadHistory(wan, points) {
    const s = this.series.get(wan) || { t: [], lat: [], rx: [], tx: [] };
    const firstLive = s.t.length ? s.t[0] : Infinity;
    const next = { t: [], lat: [], rx: [], tx: [] };
    for (const p of points || []) {
      const t = Math.round(Number(p.t_ms) / 1000);
      if (!Number.isFinite(t) || t >= firstLive) continue;
      if (next.t.length && next.t[next.t.length - 1] >= t) continue; // keep strictly increasing
      // The server merges 1 s throughput points with the daemon's probe rounds: a figure a
      // point does not carry is `undefined` (uPlot draws across it); only a probe round that
      // got no answer (latency null, loss known) is a gap (null) in the latency line.
      const noRound = p.loss_percent === null || p.loss_percent === undefined;
      next.t.push(t);
      next.lat.push(p.latency_ms === null || p.latency_ms === undefined ? (noRound ? undefined : null) : round1(p.latency_ms));
      next.rx.push(p.rx_bps === null || p.rx_bps === undefined ? undefined : toMbps(p.rx_bps));
      next.tx.push(p.tx_bps === null || p.tx_bps === undefined ? undefined : toMbps(p.tx_bps));
    }
    for (const k of ['t', 'lat', 'rx', 'tx']) next[k] = next[k].concat(s[k]);
    this.series.set(wan, next);
    this.dirty = true;
  }

  /** Append one point per WAN from a status message. */
  appendStatus(status) {
    const at = Number(status.at_ms ?? status.now_ms) || Date.now();
    const t = Math.round(at / 1000);
    for (const w of status.wans || []) {
      const s = this.series.get(w.name);
      if (!s) continue;
      const last = s.t.length - 1;
      const vals = [round1(w.latency_ms), toMbps(w.rx_bps), toMbps(w.tx_bps)];
      if (last >= 0 && s.t[last] >= t) {
        [s.lat[last], s.rx[last], s.tx[last]] = vals; // same second: the newer value wins
      } else {
        s.t.push(t);
        s.lat.push(vals[0]);
        s.rx.push(vals[1]);
        s.tx.push(vals[2]);
      }
    }
    this.dirty = true;
  }

  /** Time (s) of the oldest point of any WAN, or Infinity. */
  oldest() {
    let t = Infinity;
    for (const s of this.series.values()) if (s.t.length && s.t[0] < t) t = s.t[0];
    return t;
  }

  trim() {
    const min = Date.now() / 1000 - this.window - 60;
    for (const s of this.series.values()) {
      let i = 0;
      while (i < s.t.length && s.t[i] < min) i += 1;
      if (i > 0) for (const k of ['t', 'lat', 'rx', 'tx']) s[k].splice(0, i);
    }
  }

  data() {
    const empty = [[]];
    const latTables = [];
    const thrTables = [];
    for (const n of this.wans) {
      const s = this.series.get(n);
      latTables.push([s.t, s.lat]);
      thrTables.push([s.t, s.rx, s.tx]);
    }
    if (!latTables.length) return { lat: empty, thr: empty };
    return { lat: window.uPlot.join(latTables), thr: window.uPlot.join(thrTables) };
  }

  build() {
    this.destroyPlots();
    if (!this.available || !this.wans.length) return;
    const axisColor = cssVar('--muted', '#64748b');
    const gridColor = cssVar('--grid', 'rgba(100,116,139,0.15)');
    // The last hour, but no wider than the data: a router up for two minutes would otherwise
    // draw its points as a sliver at the right edge. At least MIN_SPAN_S wide.
    const xRange = () => {
      const now = Date.now() / 1000;
      return [Math.max(now - this.window, Math.min(now - MIN_SPAN_S, this.oldest())), now];
    };
    // Time ticks every whole minute or more, labelled "12:47": uPlot's default labels for a
    // few minutes of data (":30", ":00" with a date line) collide with each other.
    const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const axes = () => [
      {
        stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, font: '12px system-ui, sans-serif',
        space: 70, incrs: TIME_INCRS, values: (u, splits) => splits.map(clock),
      },
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, size: 48, font: '12px system-ui, sans-serif' },
    ];
    const base = (el, title) => ({
      width: Math.max(280, el.clientWidth || 600),
      height: HEIGHT,
      title,
      scales: { x: { time: true, range: xRange }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1] } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    });
    const { lat, thr } = this.data();
    const latSeries = [{}].concat(this.wans.map((n, i) => ({
      label: n, stroke: wanColor(i), width: 2, spanGaps: false,
      value: (u, v) => (v === null || v === undefined ? '—' : `${v.toFixed(1)} ms`),
    })));
    this.latency = new window.uPlot(
      { ...base(this.latencyEl, 'Latency (ms)'), series: latSeries, axes: axes() }, lat, this.latencyEl);
    const thrSeries = [{}];
    this.wans.forEach((n, i) => {
      const fmt = (u, v) => (v === null || v === undefined ? '—' : `${v.toFixed(2)} Mbit/s`);
      thrSeries.push({ label: `${n} ↓`, stroke: wanColor(i), width: 2, value: fmt });
      thrSeries.push({ label: `${n} ↑`, stroke: wanColor(i), width: 1.5, dash: [6, 4], value: fmt });
    });
    this.throughput = new window.uPlot(
      { ...base(this.throughputEl, 'Throughput (Mbit/s)'), series: thrSeries, axes: axes() }, thr, this.throughputEl);
    this.latencyEl.dataset.ready = 'true';
    this.throughputEl.dataset.ready = 'true';
  }

  /** Redraw if new points arrived (at most once a second; skipped while the tab is hidden). */
  flush(force = false) {
    if (!this.latency || (!this.dirty && !force) || document.hidden) return;
    this.dirty = false;
    this.trim();
    const { lat, thr } = this.data();
    this.latency.setData(lat);
    this.throughput.setData(thr);
    this.latencyEl.dataset.points = String(lat[0].length);
    this.throughputEl.dataset.points = String(thr[0].length);
  }

  fit() {
    for (const [plot, el] of [[this.latency, this.latencyEl], [this.throughput, this.throughputEl]]) {
      if (plot && el.clientWidth) plot.setSize({ width: el.clientWidth, height: HEIGHT });
    }
  }

  destroyPlots() {
    if (this.latency) this.latency.destroy();
    if (this.throughput) this.throughput.destroy();
    this.latency = null;
    this.throughput = null;
  }

  destroy() {
    clearInterval(this.timer);
    this.resize.disconnect();
    this.destroyPlots();
  }
}

/** A fallback message when uPlot failed to load. */
export function chartUnavailable() {
  return h('p', { class: 'muted', text: 'Graphs are unavailable (uPlot did not load).' });
}
