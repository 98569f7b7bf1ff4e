// Entry point: the session, the top bar, and routing between views by hash
// (#/login, #/setup, #/dashboard, #/config, #/events, #/audit, #/users, #/system).
// Each view module exports mount(container, ctx) which may return a cleanup function.

import { api, onApi } from './api.js';
import { toast } from './dialogs.js';
import { startStream, stopStream, onStream } from './stream.js';
import * as login from './login.js';
import * as setup from './setup.js';
import * as dashboard from './dashboard.js';
import * as config from './config.js';
import * as events from './events.js';
import * as admin from './admin.js';
import * as system from './system.js';

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };

/**
 * Whether the session belongs in the first-boot wizard: the default password is still in
 * force (setup_required), or an admin has not finished the wizard (wizard_done: false) and
 * has not chosen to skip it in this browser session.
 */
export function inWizard(s) {
  if (!s) return false;
  if (s.setup_required) return true;
  return s.wizard_done === false && s.role === 'admin' && !setup.wizardSkipped();
}

const ROUTES = {
  login: { view: login, title: 'Log in', public: true },
  setup: { view: setup, title: 'First-boot setup', role: 'admin' },
  dashboard: { view: dashboard, title: 'Dashboard', role: 'viewer' },
  events: { view: events, title: 'Events', role: 'viewer' },
  config: { view: config, title: 'Configuration', role: 'admin' },
  audit: { view: admin.audit, title: 'Audit log', role: 'admin' },
  users: { view: admin.users, title: 'Users & API keys', role: 'admin' },
  system: { view: system, title: 'System', role: 'viewer' },
};

const ctx = {
  session: null,
  /** true when the logged-in role is at least `role` */
  can(role) {
    const mine = ctx.session ? ROLE_RANK[ctx.session.role] ?? -1 : -1;
    return mine >= (ROLE_RANK[role] ?? 99);
  },
  /** After login: the view asked for before (a deep link), else the dashboard. */
  goHome() {
    const target = inWizard(ctx.session) ? 'setup' : wanted && ROUTES[wanted] ? wanted : 'dashboard';
    wanted = null;
    ctx.navigate(target);
  },
  navigate(name) {
    const target = `#/${name}`;
    if (location.hash === target) route();
    else location.hash = target;
  },
  /** Called by login and setup with the new session ({username, role, setup_required}). */
  setSession(session) {
    ctx.session = session;
    renderTopbar();
    if (session && !session.setup_required) {
      startStream();
      if (ctx.can('admin')) config.checkPending(ctx);
    } else {
      stopStream();
    }
  },
};

let cleanup = null;
let wanted = null; // the view asked for before logging in

function parseHash() {
  const m = /^#\/([a-z]+)/.exec(location.hash || '');
  return m ? m[1] : '';
}

function renderTopbar() {
  const bar = document.getElementById('topbar');
  const s = ctx.session;
  bar.hidden = !s || inWizard(s);
  if (!s) return;
  document.getElementById('nav-username').textContent = s.username;
  const roleEl = document.getElementById('nav-role');
  roleEl.textContent = s.role;
  roleEl.dataset.role = s.role;
  for (const a of document.querySelectorAll('#nav a[data-role]')) {
    a.hidden = !ctx.can(a.dataset.role);
  }
}

function markNav(name) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route() {
  let name = parseHash();
  const s = ctx.session;
  if (!s) {
    if (name && name !== 'login' && name !== 'setup') wanted = name;
    name = 'login';
  } else if (inWizard(s)) {
    name = 'setup';
  } else if (!name || name === 'login' || name === 'setup' || !ROUTES[name]) {
    name = wanted && ROUTES[wanted] ? wanted : 'dashboard';
    wanted = null;
  }
  const r = ROUTES[name];
  if (r.role && !ctx.can(r.role) && name !== 'setup') {
    toast(`${r.title} needs the ${r.role} role.`, 'error');
    name = 'dashboard';
  }
  if (`#/${name}` !== location.hash) {
    history.replaceState(null, '', `#/${name}`);
  }
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  const main = document.getElementById('view');
  main.replaceChildren();
  main.dataset.view = name;
  document.body.dataset.view = name;
  document.title = `${ROUTES[name].title} · Phoenix Nexus Router`;
  markNav(name);
  try {
    cleanup = (await ROUTES[name].view.mount(main, ctx)) || null;
  } catch (e) {
    console.error(e);
  }
}

function setBadge(state) {
  const b = document.getElementById('live-badge');
  b.dataset.live = state;
  b.textContent = state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : 'offline';
  b.className = `badge ${state === 'live' ? 'badge-live' : state === 'reconnecting' ? 'badge-warn' : 'badge-off'}`;
  b.title = state === 'live' ? 'Receiving live updates' : 'Live updates interrupted; reconnecting';
}

async function logout() {
  try {
    await api.post('/logout', {}, { quiet: true, noRedirect: true });
  } catch { /* logged out either way */ }
  ctx.setSession(null);
  config.clearPending();
  ctx.navigate('login');
}

async function boot() {
  onApi('unauthorized', () => {
    if (!ctx.session) return;
    ctx.setSession(null);
    config.clearPending();
    toast('Your session has ended. Please log in again.', 'info');
    ctx.navigate('login');
  });
  onApi('setupRequired', () => {
    if (ctx.session) ctx.session.setup_required = true;
    ctx.setSession(ctx.session);
    ctx.navigate('setup');
  });
  onStream('state', setBadge);
  // The pending-change banner sticks just under the top bar, whose height varies (phones wrap it).
  const bar = document.getElementById('topbar');
  new ResizeObserver(() => {
    document.documentElement.style.setProperty('--topbar-h', `${bar.hidden ? 0 : bar.offsetHeight}px`);
  }).observe(bar);
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);

  try {
    const s = await api.get('/session', { quiet: true, noRedirect: true });
    ctx.setSession(s && s.username ? s : null);
  } catch {
    ctx.setSession(null);
  }
  route();
}

boot();
