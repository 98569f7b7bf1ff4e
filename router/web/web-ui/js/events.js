// The event log: a list (time, kind, WAN, message) with WAN and kind filters; new events from
// the stream are prepended when they match. Used as a panel on the dashboard and as the
// full Events page.

import { api, qs } from './api.js';
import { onStream, latestStatus } from './stream.js';
import { h, clear, formatTime, humanize } from './util.js';

export const EVENT_KINDS = ['state_change', 'failover', 'high_latency', 'operator', 'config_change', 'session', 'ha'];

// Detail keys not worth a reader's time: `at` repeats the row's time as epoch ms, `mark` is
// the WAN's internal packet mark.
const HIDDEN_DETAILS = new Set(['at', 'mark']);

function detailText(details) {
  if (!details || typeof details !== 'object') return '';
  return Object.entries(details)
    .filter(([k, v]) => !HIDDEN_DETAILS.has(k) && v !== null && v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${humanize(k)}: ${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(1)) : v}`)
    .join(' · ');
}

function eventRow(e) {
  const extra = detailText(e.details);
  return h('li', { class: 'event-row', testid: 'event-row', dataset: { kind: e.kind || '', wan: e.wan || '', at: String(e.at_ms || '') } },
    h('time', { class: 'ev-time mono', datetime: new Date(Number(e.at_ms) || 0).toISOString(), title: formatTime(e.at_ms, true), text: formatTime(e.at_ms) }),
    h('span', { class: `pill kind-${e.kind || 'other'}`, text: humanize(e.kind || 'event') }),
    h('span', { class: 'ev-wan', text: e.wan || '—' }),
    h('span', { class: 'ev-msg' }, e.message || '', extra ? h('span', { class: 'ev-details muted', text: extra }) : null));
}

/**
 * Build an event log. opts.limit: rows shown; opts.prefix: testid prefix ('event' on both the
 * dashboard and the events page). Returns {el, setWans(names), destroy()}.
 */
export function eventLog(opts = {}) {
  const limit = opts.limit || 500;
  const prefix = opts.prefix || 'event';
  const wanSel = h('select', { testid: `${prefix}-filter-wan`, 'aria-label': 'Filter by WAN' }, h('option', { value: '', text: 'All WANs' }));
  const kindSel = h('select', { testid: `${prefix}-filter-kind`, 'aria-label': 'Filter by kind' },
    h('option', { value: '', text: 'All kinds' }),
    EVENT_KINDS.map((k) => h('option', { value: k, text: humanize(k) })));
  const list = h('ol', { class: 'event-list', testid: `${prefix}-list`, 'aria-live': 'polite' });
  const empty = h('p', { class: 'muted empty', testid: `${prefix}-empty`, text: 'No events yet.', hidden: true });
  const el = h('div', { class: 'event-log' },
    h('div', { class: 'filters' },
      h('label', { class: 'inline' }, h('span', { text: 'WAN' }), wanSel),
      h('label', { class: 'inline' }, h('span', { text: 'Kind' }), kindSel)),
    list, empty);

  let events = []; // newest first
  let seq = 0;

  const matches = (e) => (!wanSel.value || e.wan === wanSel.value) && (!kindSel.value || e.kind === kindSel.value);

  const addOption = (sel, value, text) => {
    if (value && ![...sel.options].some((o) => o.value === value)) sel.append(h('option', { value, text: text || value }));
  };

  const render = () => {
    clear(list);
    const shown = events.filter(matches).slice(0, limit);
    for (const e of shown) list.append(eventRow(e));
    list.dataset.count = String(shown.length);
    empty.hidden = shown.length > 0;
  };

  const load = async () => {
    const mine = ++seq;
    list.dataset.loading = 'true';
    try {
      const res = await api.get(`/events${qs({ wan: wanSel.value, kind: kindSel.value })}`);
      if (mine !== seq) return;
      events = (res && res.events ? res.events : []).slice().sort((a, b) => (b.at_ms || 0) - (a.at_ms || 0));
      for (const e of events) {
        addOption(wanSel, e.wan);
        addOption(kindSel, e.kind, humanize(e.kind || ''));
      }
      render();
    } catch {
      empty.hidden = false;
      empty.textContent = 'Could not load the events.';
    } finally {
      if (mine === seq) delete list.dataset.loading;
    }
  };

  wanSel.addEventListener('change', load);
  kindSel.addEventListener('change', load);

  const off = onStream('event', (e) => {
    addOption(wanSel, e.wan);
    addOption(kindSel, e.kind, humanize(e.kind || ''));
    if (!matches(e)) return;
    events.unshift(e);
    if (events.length > limit * 2) events.length = limit * 2;
    const row = eventRow(e);
    row.classList.add('fresh');
    list.prepend(row);
    while (list.children.length > limit) list.lastElementChild.remove();
    list.dataset.count = String(list.children.length);
    empty.hidden = true;
  });

  const setWans = (names) => names.forEach((n) => addOption(wanSel, n));
  load();
  return { el, setWans, reload: load, destroy: off };
}

/** The Events page: the whole log with filters. */
export async function mount(main) {
  const log = eventLog({ limit: 1000 });
  main.append(h('section', { class: 'page events-page' },
    h('div', { class: 'page-head' },
      h('h1', { text: 'Events' }),
      h('p', { class: 'muted', text: 'State changes, failovers, operator actions and configuration changes, newest first. New events appear as they happen.' })),
    h('div', { class: 'card' }, log.el)));
  const s = latestStatus();
  if (s && s.wans) log.setWans(s.wans.map((w) => w.name));
  else api.get('/status', { quiet: true }).then((st) => log.setWans((st.wans || []).map((w) => w.name))).catch(() => {});
  return () => log.destroy();
}
