// First-boot wizard, shown while the session says setup_required:
// 1 new admin password -> POST /setup/password; 2 WAN lines (DHCP, static or PPPoE, optional
// VLAN and MAC); 3 LAN; 4 time zone; 5 summary -> POST /setup/apply (a config change with
// commit-confirm; the daemon sets the time zone). Field errors from the server (by `path`)
// appear next to the fields on their step and in a list at the top.

import { api, ApiError, errorText } from './api.js';
import { toast } from './dialogs.js';
import { showFieldErrors, clearFieldErrors, showPending } from './config.js';
import { h, clear, parseList, formatList } from './util.js';

export const DEFAULT_PASSWORD = 'routeros123';
export const MIN_PASSWORD = 10;

export const TIMEZONES = [
  'UTC', 'Europe/London', 'Europe/Berlin', 'Europe/Paris', 'Europe/Madrid', 'America/New_York',
  'America/Chicago', 'America/Denver', 'America/Los_Angeles', 'America/Sao_Paulo', 'Africa/Johannesburg',
  'Asia/Kolkata', 'Asia/Manila', 'Asia/Singapore', 'Asia/Tokyo', 'Australia/Sydney',
];

const STEPS = ['Password', 'WAN lines', 'LAN', 'Time zone', 'Summary'];
const PASSWORD_DONE = 'routeros.setup.passwordDone';
const SKIPPED = 'routeros.setup.skipped';

/** The admin chose "skip for now" in this browser session (the wizard stays undone). */
export function wizardSkipped() {
  try {
    return sessionStorage.getItem(SKIPPED) === '1';
  } catch {
    return false;
  }
}

/** Client-side check of the new password; returns a reason or ''. */
export function passwordProblem(pw, again) {
  if (!pw || pw.length < MIN_PASSWORD) return `Use at least ${MIN_PASSWORD} characters.`;
  if (pw === DEFAULT_PASSWORD) return 'Choose a password other than the default one.';
  if (again !== undefined && pw !== again) return 'The two passwords differ.';
  return '';
}

/** "192.168.1.1/24" -> {start: "192.168.1.100", end: "192.168.1.200"} for a /24 (else null). */
export function suggestDhcpRange(cidr) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(String(cidr || '').trim());
  if (!m || Number(m[5]) !== 24) return null;
  const base = `${m[1]}.${m[2]}.${m[3]}`;
  return { start: `${base}.100`, end: `${base}.200` };
}

/** Problems of a VLAN id as typed ('' = untagged): a reason or ''. */
export function vlanProblem(text) {
  const t = String(text ?? '').trim();
  if (t === '') return '';
  return /^\d+$/.test(t) && Number(t) >= 1 && Number(t) <= 4094 ? '' : 'A VLAN id from 1 to 4094, or empty for none.';
}

/**
 * The body of POST /setup/apply from the wizard state:
 * {wans:[{name, mode, address?, gateway?, dns:[], weight, vlan?, mac?,
 *   pppoe?: {username, password?, service_name?}}],
 *  lan:{interface, address, dhcp_start, dhcp_end}, timezone}
 * An empty PPPoE password is left out (the server keeps a stored one).
 */
export function buildApplyBody(state) {
  const wans = state.interfaces
    .filter((n) => state.wans[n] && state.wans[n].use)
    .map((n) => {
      const w = state.wans[n];
      const out = { name: n, mode: w.mode, dns: w.mode === 'static' ? parseList(w.dns) : [], weight: Number(w.weight) };
      if (w.mode === 'static') {
        if (w.address.trim()) out.address = w.address.trim();
        if (w.gateway.trim()) out.gateway = w.gateway.trim();
      }
      const vlan = String(w.vlan ?? '').trim();
      if (vlan) out.vlan = /^\d+$/.test(vlan) ? Number(vlan) : vlan;
      const mac = String(w.mac ?? '').trim();
      if (mac) out.mac = mac.toLowerCase();
      if (w.mode === 'pppoe') {
        const p = { username: String(w.pppoeUser ?? '').trim() };
        if (w.pppoePassword) p.password = w.pppoePassword;
        const service = String(w.pppoeService ?? '').trim();
        if (service) p.service_name = service;
        out.pppoe = p;
      }
      return out;
    });
  return {
    wans,
    lan: {
      interface: state.lan.interface,
      address: state.lan.address.trim(),
      dhcp_start: state.lan.dhcp_start.trim(),
      dhcp_end: state.lan.dhcp_end.trim(),
    },
    timezone: state.timezone.trim(),
  };
}

/** One summary line for a WAN of the apply body (never the password). */
export function wanSummary(w) {
  let how = 'DHCP';
  if (w.mode === 'static') how = `static ${w.address || '?'} via ${w.gateway || '?'}`;
  if (w.mode === 'pppoe') how = `PPPoE ${(w.pppoe && w.pppoe.username) || '?'}${w.pppoe && w.pppoe.service_name ? ` (service ${w.pppoe.service_name})` : ''}`;
  return [
    how,
    w.vlan ? `VLAN ${w.vlan}` : '',
    w.mac ? `MAC ${w.mac}` : '',
    `weight ${w.weight}`,
    w.dns && w.dns.length ? `DNS ${formatList(w.dns)}` : '',
  ].filter(Boolean).join(' · ');
}

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function errSlot(path, extra = {}) {
  return h('p', { class: 'field-error', dataset: { errorFor: path, ...extra }, hidden: true });
}

export async function mount(main, ctx) {
  // The password step is over once the session no longer says setup_required.
  const passwordDone = () => !(ctx.session && ctx.session.setup_required) || sessionStorage.getItem(PASSWORD_DONE) === '1';
  const state = {
    step: passwordDone() ? 1 : 0,
    interfaces: [],
    wans: {},
    lan: { interface: '', address: '192.168.1.1/24', dhcp_start: '192.168.1.100', dhcp_end: '192.168.1.200' },
    timezone: browserZone(),
  };
  let dhcpTouched = false;

  try {
    const info = await api.get('/setup', { quiet: true });
    state.interfaces = (info && info.interfaces) || [];
    const done = info && (info.wizard_done === true || (info.wizard_done === undefined && info.setup_required === false));
    if (done) {
      const s = await api.get('/session', { quiet: true, noRedirect: true }).catch(() => null);
      if (s) { ctx.setSession({ ...s, wizard_done: true }); ctx.goHome(); return undefined; }
    }
  } catch (e) {
    toast(`Could not read the interfaces: ${errorText(e)}`, 'error');
  }
  if (!state.interfaces.length) state.interfaces = ['eth0', 'eth1', 'eth2'];
  const ifs = state.interfaces;
  ifs.forEach((n, i) => {
    state.wans[n] = {
      use: ifs.length === 1 || i < ifs.length - 1, mode: 'dhcp', address: '', gateway: '', dns: '', weight: i === 0 && ifs.length > 2 ? 2 : 1,
      vlan: '', mac: '', pppoeUser: '', pppoePassword: '', pppoeService: '',
    };
  });
  state.lan.interface = ifs.length > 1 ? ifs[ifs.length - 1] : '';

  const errors = h('div', { class: 'error-summary', role: 'alert', testid: 'setup-errors', hidden: true });
  const progress = h('ol', { class: 'steps', testid: 'setup-progress' },
    STEPS.map((s, i) => h('li', { testid: `setup-step-${i + 1}`, dataset: { step: String(i + 1) } }, h('span', { class: 'step-n', text: String(i + 1) }), h('span', { text: s }))));
  const back = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'setup-back', text: 'Back' });
  const next = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'setup-next', text: 'Next' });
  const skip = h('button', { type: 'button', class: 'linklike small', testid: 'setup-skip', text: 'Skip the wizard for now' });
  skip.addEventListener('click', () => {
    sessionStorage.setItem(SKIPPED, '1');
    ctx.setSession(ctx.session);
    ctx.goHome();
  });
  const panes = [passwordPane(), wanPane(), lanPane(), tzPane(), summaryPane()];
  const form = h('form', { class: 'card wizard', testid: 'setup-form', novalidate: true },
    progress, errors, panes.map((p) => p.el), h('div', { class: 'wizard-actions' }, back, skip, next));

  main.append(h('section', { class: 'page setup-page' },
    h('div', { class: 'page-head' },
      h('h1', { text: 'Welcome: set up your router' }),
      h('p', { class: 'muted', text: 'A few questions, then the router starts balancing your lines. You can change everything later.' })),
    form));

  function go(step) {
    state.step = Math.max(0, Math.min(STEPS.length - 1, step));
    panes.forEach((p, i) => { p.el.hidden = i !== state.step; });
    [...progress.children].forEach((li, i) => {
      li.dataset.state = i < state.step ? 'done' : i === state.step ? 'current' : 'todo';
      if (i === state.step) li.setAttribute('aria-current', 'step'); else li.removeAttribute('aria-current');
    });
    form.dataset.step = String(state.step + 1);
    back.hidden = state.step === 0 || (state.step === 1 && passwordDone());
    skip.hidden = state.step === 0 || !passwordDone();
    next.textContent = state.step === 0 ? 'Set password' : state.step === STEPS.length - 1 ? 'Apply' : 'Next';
    next.dataset.testid = state.step === 0 ? 'setup-password-submit' : state.step === STEPS.length - 1 ? 'setup-apply' : 'setup-next';
    if (panes[state.step].enter) panes[state.step].enter();
    const first = panes[state.step].el.querySelector('input:not([type=checkbox]), select');
    if (first && state.step < STEPS.length - 1) first.focus();
  }

  back.addEventListener('click', () => go(state.step - 1));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const pane = panes[state.step];
    const problems = pane.check ? pane.check() : [];
    clearFieldErrors(form, errors);
    if (problems.length) {
      showFieldErrors(form, errors, problems, '');
      return;
    }
    if (pane.submit) {
      next.disabled = true;
      try { await pane.submit(); } finally { next.disabled = false; }
      return;
    }
    go(state.step + 1);
  });

  const serverErrors = (e) => {
    if (e instanceof ApiError && e.fields.length) {
      showFieldErrors(form, errors, e.fields, e.body.message || '', (el) => {
        const i = panes.findIndex((p) => p.el.contains(el));
        if (i >= 0 && i !== state.step) go(i);
      });
    } else if (!(e instanceof ApiError && e.status === 401)) {
      showFieldErrors(form, errors, [], errorText(e));
    }
  };

  // ----- step 1: password -----
  function passwordPane() {
    const pw = h('input', { type: 'password', id: 'setup-password', autocomplete: 'new-password', testid: 'setup-password', 'data-path': 'new_password' });
    const pw2 = h('input', { type: 'password', id: 'setup-password2', autocomplete: 'new-password', testid: 'setup-password2', 'data-path': 'new_password_again' });
    const skipPw = h('button', { type: 'button', class: 'linklike small', testid: 'setup-skip-password', text: 'Continue with the password already set' });
    skipPw.addEventListener('click', () => { sessionStorage.setItem(PASSWORD_DONE, '1'); clearFieldErrors(form, errors); go(1); });
    skipPw.hidden = true; // shown when the server says the password was already changed (409)
    const el = h('div', { class: 'pane', testid: 'setup-pane-password' },
      h('h2', { text: 'Choose a new admin password' }),
      h('p', { class: 'muted', text: `The default password works only until you replace it. Use at least ${MIN_PASSWORD} characters.` }),
      h('div', { class: 'field' }, h('label', { for: 'setup-password', text: 'New password' }), pw, errSlot('new_password')),
      h('div', { class: 'field' }, h('label', { for: 'setup-password2', text: 'Repeat it' }), pw2, errSlot('new_password_again')),
      skipPw);
    return {
      el,
      check() {
        const p = passwordProblem(pw.value);
        if (p) return [{ path: 'new_password', reason: p }];
        if (pw.value !== pw2.value) return [{ path: 'new_password_again', reason: 'The two passwords differ.' }];
        return [];
      },
      async submit() {
        try {
          await api.post('/setup/password', { new_password: pw.value }, { quiet: true });
          sessionStorage.setItem(PASSWORD_DONE, '1');
          pw.value = '';
          pw2.value = '';
          toast('Password changed.', 'success');
          // Every route is open now; the session says so (setup_required: false).
          const s = await api.get('/session', { quiet: true, noRedirect: true }).catch(() => null);
          if (s && s.username) ctx.setSession({ ...s, wizard_done: s.wizard_done ?? false });
          go(1);
        } catch (e) {
          if (e instanceof ApiError && e.status === 409) skipPw.hidden = false;
          serverErrors(e);
        }
      },
    };
  }

  // ----- step 2: WAN lines -----
  function wanPane() {
    const rows = [];
    const list = h('div', { class: 'wan-setup-list' });
    for (const n of ifs) {
      const w = state.wans[n];
      const use = h('input', { type: 'checkbox', checked: w.use, testid: `setup-wan-use-${n}`, id: `setup-wan-use-${n}` });
      const mode = h('select', { testid: `setup-wan-mode-${n}`, id: `setup-wan-mode-${n}`, dataset: { field: 'mode' } },
        h('option', { value: 'dhcp', text: 'DHCP' }),
        h('option', { value: 'static', text: 'Static address' }),
        h('option', { value: 'pppoe', text: 'PPPoE' }));
      mode.value = w.mode;
      const input = (field, placeholder, value) => h('input', { type: 'text', id: `setup-wan-${field}-${n}`, testid: `setup-wan-${field}-${n}`, placeholder, value, dataset: { field }, autocomplete: 'off', spellcheck: 'false' });
      const address = input('address', '203.0.113.2/29', w.address);
      const gateway = input('gateway', '203.0.113.1', w.gateway);
      const dns = input('dns', '8.8.8.8, 1.1.1.1', w.dns);
      const weight = h('input', { type: 'number', min: 1, max: 255, step: 1, id: `setup-wan-weight-${n}`, testid: `setup-wan-weight-${n}`, value: String(w.weight), dataset: { field: 'weight' } });
      const lbl = (field, text) => h('label', { for: `setup-wan-${field}-${n}`, text });
      // `path`: the field under wans[i] the server names (defaults to the input's name).
      const fld = (field, text, node, help, path = field) => h('div', { class: 'field', dataset: { wanField: path } }, lbl(field, text), node, help ? h('p', { class: 'help', text: help }) : null, errSlot('', { wanField: path }));
      const staticBox = h('div', { class: 'field-grid static-fields', testid: `setup-wan-static-${n}` },
        fld('address', 'Address (CIDR)', address), fld('gateway', 'Gateway', gateway), fld('dns', 'DNS servers', dns, 'Comma separated.'));
      const vlan = input('vlan', 'none', w.vlan);
      vlan.inputMode = 'numeric';
      const mac = input('mac', 'the port’s own', w.mac);
      const pppoeUser = input('pppoe-user', 'customer@isp.example', w.pppoeUser);
      pppoeUser.dataset.field = 'pppoe.username';
      const pppoePassword = h('input', { type: 'password', id: `setup-wan-pppoe-password-${n}`, testid: `setup-wan-pppoe-password-${n}`, autocomplete: 'new-password', dataset: { field: 'pppoe.password' } });
      const pppoeService = input('pppoe-service', 'any', w.pppoeService);
      pppoeService.dataset.field = 'pppoe.service_name';
      const pppoeBox = h('div', { class: 'field-grid pppoe-fields', testid: `setup-wan-pppoe-${n}` },
        fld('pppoe-user', 'PPPoE username', pppoeUser, null, 'pppoe.username'),
        fld('pppoe-password', 'PPPoE password', pppoePassword, 'Stored readable only by the router; never shown again.', 'pppoe.password'),
        fld('pppoe-service', 'Service name', pppoeService, 'Only if your ISP asks for one.', 'pppoe.service_name'),
        errSlot('', { wanField: 'pppoe' }));
      const lineBox = h('div', { class: 'field-grid', testid: `setup-wan-line-${n}` },
        fld('vlan', 'VLAN', vlan, 'Only if your ISP tags the line (e.g. 7).'),
        fld('mac', 'MAC address', mac, 'Only if the line is bound to another box’s address.'));
      const body = h('div', { class: 'wan-setup-body' },
        h('div', { class: 'field-grid' }, fld('mode', 'Connection', mode), fld('weight', 'Weight', weight, 'Share of new connections, e.g. 2 for a line twice as fast.')),
        staticBox, pppoeBox, lineBox);
      const card = h('fieldset', { class: 'item wan-setup', testid: `setup-wan-${n}`, dataset: { iface: n } },
        h('legend', {}, h('label', { class: 'check', for: `setup-wan-use-${n}` }, use, h('span', {}, 'Use ', h('strong', { text: n }), ' as a WAN line'))),
        errSlot('', { wanField: '' }), body);
      const sync = () => {
        w.use = use.checked;
        w.mode = mode.value;
        w.address = address.value;
        w.gateway = gateway.value;
        w.dns = dns.value;
        w.weight = weight.value;
        w.vlan = vlan.value;
        w.mac = mac.value;
        w.pppoeUser = pppoeUser.value;
        w.pppoePassword = pppoePassword.value;
        w.pppoeService = pppoeService.value;
        body.hidden = !w.use;
        staticBox.hidden = w.mode !== 'static';
        pppoeBox.hidden = w.mode !== 'pppoe';
        card.dataset.use = String(w.use);
        card.dataset.mode = w.mode;
      };
      for (const x of [use, mode, address, gateway, dns, weight, vlan, mac, pppoeUser, pppoePassword, pppoeService]) {
        x.addEventListener('input', sync);
        x.addEventListener('change', () => { sync(); renumber(); });
      }
      sync();
      rows.push({
        n, card,
        nodes: { mode, address, gateway, dns, weight, vlan, mac, 'pppoe.username': pppoeUser, 'pppoe.password': pppoePassword, 'pppoe.service_name': pppoeService },
      });
      list.append(card);
    }
    // data-path follows the index in the `wans` array sent, i.e. among the used interfaces.
    function renumber() {
      let i = 0;
      for (const r of rows) {
        const used = state.wans[r.n].use;
        const base = used ? `wans[${i}]` : '';
        r.card.dataset.groupPath = base;
        for (const slot of r.card.querySelectorAll('[data-wan-field]')) {
          if (slot.classList.contains('field-error')) {
            slot.dataset.errorFor = used ? (slot.dataset.wanField ? `${base}.${slot.dataset.wanField}` : base) : '';
          }
        }
        for (const [field, node] of Object.entries(r.nodes)) {
          if (used) node.dataset.path = `${base}.${field}`;
          else delete node.dataset.path;
        }
        if (used) i += 1;
      }
    }
    renumber();
    const el = h('div', { class: 'pane', testid: 'setup-pane-wans', dataset: { groupPath: 'wans' } },
      h('h2', { text: 'WAN lines' }),
      h('p', { class: 'muted', text: 'Tick each interface that connects to an ISP. Weights share new connections between the lines.' }),
      errSlot('wans'), list);
    return {
      el,
      enter: renumber,
      check() {
        renumber();
        const out = [];
        const used = ifs.filter((n) => state.wans[n].use);
        if (!used.length) out.push({ path: 'wans', reason: 'Pick at least one WAN line.' });
        used.forEach((n, i) => {
          const w = state.wans[n];
          const wt = Number(w.weight);
          if (!Number.isInteger(wt) || wt < 1 || wt > 255) out.push({ path: `wans[${i}].weight`, reason: 'A whole number from 1 to 255.' });
          if (w.mode === 'static') {
            if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(w.address.trim())) out.push({ path: `wans[${i}].address`, reason: 'An address with prefix, e.g. 203.0.113.2/29.' });
            if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(w.gateway.trim())) out.push({ path: `wans[${i}].gateway`, reason: 'The ISP gateway address, e.g. 203.0.113.1.' });
          }
          if (w.mode === 'pppoe' && !w.pppoeUser.trim()) out.push({ path: `wans[${i}].pppoe.username`, reason: 'The PPPoE username from your ISP.' });
          const vp = vlanProblem(w.vlan);
          if (vp) out.push({ path: `wans[${i}].vlan`, reason: vp });
        });
        return out;
      },
    };
  }

  // ----- step 3: LAN -----
  function lanPane() {
    const iface = h('select', { id: 'setup-lan-interface', testid: 'setup-lan-interface', 'data-path': 'lan.interface' });
    const address = h('input', { type: 'text', id: 'setup-lan-address', testid: 'setup-lan-address', 'data-path': 'lan.address', value: state.lan.address, placeholder: '192.168.1.1/24', spellcheck: 'false' });
    const start = h('input', { type: 'text', id: 'setup-lan-dhcp-start', testid: 'setup-lan-dhcp-start', 'data-path': 'lan.dhcp_start', value: state.lan.dhcp_start, spellcheck: 'false' });
    const end = h('input', { type: 'text', id: 'setup-lan-dhcp-end', testid: 'setup-lan-dhcp-end', 'data-path': 'lan.dhcp_end', value: state.lan.dhcp_end, spellcheck: 'false' });
    const fill = () => {
      clear(iface);
      const free = ifs.filter((n) => !state.wans[n].use);
      const choices = free.length ? free : ifs;
      for (const n of choices) iface.append(h('option', { value: n, text: n }));
      if (!choices.includes(state.lan.interface)) state.lan.interface = choices[0] || '';
      iface.value = state.lan.interface;
    };
    iface.addEventListener('change', () => { state.lan.interface = iface.value; });
    address.addEventListener('input', () => {
      state.lan.address = address.value;
      const s = suggestDhcpRange(address.value);
      if (s && !dhcpTouched) {
        start.value = s.start; end.value = s.end;
        state.lan.dhcp_start = s.start; state.lan.dhcp_end = s.end;
      }
    });
    for (const [node, key] of [[start, 'dhcp_start'], [end, 'dhcp_end']]) {
      node.addEventListener('input', () => { state.lan[key] = node.value; dhcpTouched = true; });
    }
    const el = h('div', { class: 'pane', testid: 'setup-pane-lan', dataset: { groupPath: 'lan' } },
      h('h2', { text: 'LAN' }),
      h('p', { class: 'muted', text: 'The network of your computers. The router hands out addresses from the DHCP range.' }),
      errSlot('lan'),
      h('div', { class: 'field-grid' },
        h('div', { class: 'field' }, h('label', { for: 'setup-lan-interface', text: 'Interface' }), iface, errSlot('lan.interface')),
        h('div', { class: 'field' }, h('label', { for: 'setup-lan-address', text: 'Router address (CIDR)' }), address, errSlot('lan.address')),
        h('div', { class: 'field' }, h('label', { for: 'setup-lan-dhcp-start', text: 'DHCP range start' }), start, errSlot('lan.dhcp_start')),
        h('div', { class: 'field' }, h('label', { for: 'setup-lan-dhcp-end', text: 'DHCP range end' }), end, errSlot('lan.dhcp_end'))));
    fill();
    return {
      el,
      enter: fill,
      check() {
        const out = [];
        if (!state.lan.interface) out.push({ path: 'lan.interface', reason: 'Pick the LAN interface.' });
        if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(state.lan.address.trim())) out.push({ path: 'lan.address', reason: 'An address with prefix, e.g. 192.168.1.1/24.' });
        return out;
      },
    };
  }

  // ----- step 4: time zone -----
  function tzPane() {
    const zones = TIMEZONES.includes(state.timezone) ? TIMEZONES : [state.timezone].concat(TIMEZONES);
    const sel = h('select', { id: 'setup-timezone-select', testid: 'setup-timezone-select' },
      zones.map((z) => h('option', { value: z, text: z.replace(/_/g, ' ') })),
      h('option', { value: '', text: 'Other…' }));
    const text = h('input', { type: 'text', id: 'setup-timezone', testid: 'setup-timezone', 'data-path': 'timezone', value: state.timezone, placeholder: 'Region/City, e.g. Europe/Vienna', spellcheck: 'false' });
    sel.value = state.timezone;
    sel.addEventListener('change', () => {
      if (sel.value) { text.value = sel.value; state.timezone = sel.value; } else { text.focus(); text.select(); }
    });
    text.addEventListener('input', () => {
      state.timezone = text.value;
      sel.value = zones.includes(text.value) ? text.value : '';
    });
    const el = h('div', { class: 'pane', testid: 'setup-pane-timezone' },
      h('h2', { text: 'Time zone' }),
      h('p', { class: 'muted', text: 'Set as the router\'s system time zone (its logs and clock). The dashboard shows times in your browser\'s time zone.' }),
      h('div', { class: 'field-grid' },
        h('div', { class: 'field' }, h('label', { for: 'setup-timezone-select', text: 'Common zones' }), sel),
        h('div', { class: 'field' }, h('label', { for: 'setup-timezone', text: 'Time zone' }), text,
          h('p', { class: 'help', text: 'Any IANA name, e.g. Europe/Vienna.' }), errSlot('timezone'))));
    return {
      el,
      check: () => (state.timezone.trim() ? [] : [{ path: 'timezone', reason: 'Pick or type a time zone.' }]),
    };
  }

  // ----- step 5: summary -----
  function summaryPane() {
    const body = h('div', { testid: 'setup-summary' });
    const el = h('div', { class: 'pane', testid: 'setup-pane-summary' }, h('h2', { text: 'Check and apply' }), body);
    const row = (k, v) => h('tr', {}, h('th', { text: k }), h('td', { text: v }));
    return {
      el,
      enter() {
        const b = buildApplyBody(state);
        clear(body);
        body.append(h('table', { class: 'table summary-table' }, h('tbody', {},
          b.wans.map((w) => row(`WAN ${w.name}`, wanSummary(w))),
          row(`LAN ${b.lan.interface}`, `${b.lan.address} · DHCP ${b.lan.dhcp_start || '?'} – ${b.lan.dhcp_end || '?'}`),
          row('Time zone', b.timezone))));
        body.append(h('p', { class: 'muted small', text: 'Applying is live at once. If the LAN address changes, reconnect to the new address. Like every change, it rolls back by itself unless you confirm it in time on the dashboard.' }));
      },
      async submit() {
        const b = buildApplyBody(state);
        let res;
        try {
          res = await api.post('/setup/apply', b, { quiet: true });
        } catch (e) {
          serverErrors(e);
          return;
        }
        sessionStorage.removeItem(PASSWORD_DONE);
        toast('Setup applied. Welcome!', 'success');
        let s = null;
        try { s = await api.get('/session', { quiet: true, noRedirect: true }); } catch { /* keep going */ }
        ctx.setSession({ ...(s || ctx.session), setup_required: false, wizard_done: true });
        if (res && res.pending) showPending(res.pending, res.confirm_seconds);
        const tz = res && res.timezone;
        if (tz && tz.set === false) {
          const why = String(tz.message || 'the system could not set it').replace(/^time zone not set:\s*/i, '');
          toast(`Time zone ${tz.name} not set: ${why}. Everything else was applied.`, 'error');
        }
        ctx.goHome();
      },
    };
  }

  go(state.step);
  return undefined;
}
