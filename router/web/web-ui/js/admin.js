// Admin pages: the audit log, and users & API keys.

import { api, ApiError, enc } from './api.js';
import { confirmDialog, showKeyDialog, toast } from './dialogs.js';
import { h, clear, formatTime } from './util.js';

const ROLES = ['viewer', 'operator', 'admin'];
const ROLE_HELP = {
  viewer: 'read only',
  operator: 'read, plus enable/disable/maintenance',
  admin: 'everything',
};

function roleSelect(testid, id) {
  return h('select', { testid, id }, ROLES.map((r) => h('option', { value: r, text: `${r} (${ROLE_HELP[r]})` })));
}

function fieldErrors(form, e) {
  for (const el of form.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
  if (!(e instanceof ApiError)) return;
  for (const f of e.fields) {
    const slot = form.querySelector(`.field-error[data-error-for="${String(f.path).replace(/"/g, '')}"]`);
    if (slot) { slot.textContent = f.reason; slot.hidden = false; } else toast(`${f.path}: ${f.reason}`, 'error');
  }
  if (!e.fields.length) toast(e.message, 'error');
}

/** "Nov 28, 2026" */
function formatDate(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n)) return '—';
  return new Date(n).toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
}

// ---------- audit ----------

/** {wan: "wan1", connections: 12} -> "wan: wan1 · connections: 12" */
function detailText(d) {
  if (d === null || d === undefined) return '';
  if (typeof d !== 'object') return String(d);
  return Object.entries(d)
    .map(([k, v]) => `${k}: ${v !== null && typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' · ');
}

export const audit = {
  async mount(main) {
    const filter = h('input', { type: 'search', placeholder: 'Filter by user, action, detail…', testid: 'audit-filter', 'aria-label': 'Filter' });
    const tbody = h('tbody', {});
    const table = h('table', { class: 'table', testid: 'audit-table' },
      h('thead', {}, h('tr', {}, ['Time', 'User', 'Role', 'From', 'Action', 'Detail'].map((t) => h('th', { text: t })))),
      tbody);
    const empty = h('p', { class: 'muted empty', hidden: true, text: 'No entries.', testid: 'audit-empty' });
    const refresh = h('button', { type: 'button', class: 'btn btn-small', testid: 'audit-refresh', text: 'Refresh' });
    main.append(h('section', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', { text: 'Audit log' })),
      h('p', { class: 'muted', text: 'Who changed what, from where: logins, kill-switch actions, configuration, users and keys. Newest first.' }),
      h('div', { class: 'card' }, h('div', { class: 'filters' }, filter, refresh), h('div', { class: 'table-scroll' }, table), empty)));

    let entries = [];
    const render = () => {
      const q = filter.value.trim().toLowerCase();
      const shown = entries.filter((e) => !q || [e.user, e.role, e.from, e.action, e.detail].some((x) => String(x ?? '').toLowerCase().includes(q)));
      clear(tbody);
      for (const e of shown) {
        tbody.append(h('tr', { testid: 'audit-row', dataset: { action: e.action || '', user: e.user || '' } },
          h('td', { class: 'nowrap', text: formatTime(e.at_ms, true) }),
          h('td', { text: e.user || '—' }),
          h('td', {}, h('span', { class: 'role-tag', dataset: { role: e.role || '' }, text: e.role || '—' })),
          h('td', { class: 'mono', text: e.from || '—' }),
          h('td', { class: 'mono', text: e.action || '' }),
          h('td', { class: 'detail', text: detailText(e.detail) })));
      }
      table.dataset.count = String(shown.length);
      empty.hidden = shown.length > 0;
    };
    const load = async () => {
      try {
        const res = await api.get('/audit');
        entries = (res && res.entries ? res.entries : []).slice().sort((a, b) => (b.at_ms || 0) - (a.at_ms || 0));
      } catch {
        entries = [];
      }
      render();
    };
    filter.addEventListener('input', render);
    refresh.addEventListener('click', load);
    await load();
  },
};

// ---------- users & API keys ----------

export const users = {
  async mount(main, ctx) {
    const userBody = h('tbody', {});
    const keyBody = h('tbody', {});

    const uName = h('input', { id: 'user-new-name', testid: 'user-new-name', autocomplete: 'off', required: true });
    const uPass = h('input', { id: 'user-new-password', testid: 'user-new-password', type: 'password', autocomplete: 'new-password', required: true });
    const uRole = roleSelect('user-new-role', 'user-new-role');
    const uForm = h('form', { class: 'inline-form', testid: 'user-form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'user-new-name', text: 'Username' }), uName, h('p', { class: 'field-error', dataset: { errorFor: 'username' }, hidden: true })),
      h('div', { class: 'field' }, h('label', { for: 'user-new-password', text: 'Password' }), uPass, h('p', { class: 'field-error', dataset: { errorFor: 'password' }, hidden: true })),
      h('div', { class: 'field' }, h('label', { for: 'user-new-role', text: 'Role' }), uRole, h('p', { class: 'field-error', dataset: { errorFor: 'role' }, hidden: true })),
      h('button', { type: 'submit', class: 'btn btn-primary', testid: 'user-create', text: 'Create user' }));

    const kLabel = h('input', { id: 'key-new-label', testid: 'key-new-label', autocomplete: 'off', placeholder: 'e.g. prometheus' });
    const kRole = roleSelect('key-new-role', 'key-new-role');
    const kForm = h('form', { class: 'inline-form', testid: 'key-form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'key-new-label', text: 'Label' }), kLabel, h('p', { class: 'field-error', dataset: { errorFor: 'label' }, hidden: true })),
      h('div', { class: 'field' }, h('label', { for: 'key-new-role', text: 'Role' }), kRole, h('p', { class: 'field-error', dataset: { errorFor: 'role' }, hidden: true })),
      h('button', { type: 'submit', class: 'btn btn-primary', testid: 'key-create', text: 'Create API key' }));

    main.append(h('section', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', { text: 'Users & API keys' })),
      h('div', { class: 'two-col' },
        h('section', { class: 'card' },
          h('h2', { text: 'Users' }),
          h('div', { class: 'table-scroll' }, h('table', { class: 'table', testid: 'user-table' },
            h('thead', {}, h('tr', {}, h('th', { text: 'Username' }), h('th', { text: 'Role' }), h('th', {}))), userBody)),
          h('h3', { text: 'New user' }), uForm),
        h('section', { class: 'card' },
          h('h2', { text: 'API keys' }),
          h('p', { class: 'muted small', text: 'For scripts and monitoring: send “Authorization: Bearer <key>”. A key is shown once, when it is created.' }),
          h('div', { class: 'table-scroll' }, h('table', { class: 'table', testid: 'key-table' },
            h('thead', {}, h('tr', {}, h('th', { text: 'Label' }), h('th', { text: 'ID' }), h('th', { text: 'Role' }), h('th', { text: 'Created' }), h('th', {}))), keyBody)),
          h('h3', { text: 'New API key' }), kForm))));

    const loadUsers = async () => {
      let list = [];
      try { list = (await api.get('/users')).users || []; } catch { /* toast shown */ }
      clear(userBody);
      for (const u of list) {
        const self = ctx.session && u.username === ctx.session.username;
        userBody.append(h('tr', { testid: 'user-row', dataset: { username: u.username } },
          h('td', {}, u.username, self ? h('span', { class: 'chip chip-small', text: 'you' }) : null),
          h('td', {}, h('span', { class: 'role-tag', dataset: { role: u.role }, text: u.role })),
          h('td', { class: 'right' }, h('button', {
            type: 'button', class: 'btn btn-small btn-danger-outline', testid: `user-delete-${u.username}`, disabled: self,
            title: self ? 'You cannot delete yourself' : '', text: 'Delete',
            on: { click: () => deleteUser(u.username) },
          }))));
      }
      if (!list.length) userBody.append(h('tr', {}, h('td', { colspan: 3, class: 'muted', text: 'No users.' })));
    };

    const loadKeys = async () => {
      let list = [];
      try { list = (await api.get('/keys')).keys || []; } catch { /* toast shown */ }
      clear(keyBody);
      for (const k of list) {
        keyBody.append(h('tr', { testid: 'key-row', dataset: { id: String(k.id) } },
          h('td', { text: k.label || '—' }),
          h('td', { class: 'mono', text: String(k.id) }),
          h('td', {}, h('span', { class: 'role-tag', dataset: { role: k.role }, text: k.role })),
          // The date only (the time is in the tooltip): the table must fit a half-width card
          // with its Revoke button visible.
          h('td', { class: 'nowrap', title: formatTime(k.created_ms, true), text: formatDate(k.created_ms) }),
          h('td', { class: 'right' }, h('button', {
            type: 'button', class: 'btn btn-small btn-danger-outline', testid: `key-delete-${k.id}`, text: 'Revoke',
            on: { click: () => deleteKey(k) },
          }))));
      }
      if (!list.length) keyBody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted', text: 'No API keys.' })));
    };

    async function deleteUser(name) {
      const ok = await confirmDialog({ title: `Delete user ${name}?`, okLabel: 'Delete', danger: true, body: `${name} can no longer log in; open sessions of ${name} end.` });
      if (!ok) return;
      try {
        await api.del(`/users/${enc(name)}`);
        toast(`User ${name} deleted.`, 'success');
      } catch { /* toast shown */ }
      loadUsers();
    }

    async function deleteKey(k) {
      const ok = await confirmDialog({ title: `Revoke API key ${k.label || k.id}?`, okLabel: 'Revoke', danger: true, body: 'Scripts using this key stop working at once.' });
      if (!ok) return;
      try {
        await api.del(`/keys/${enc(k.id)}`);
        toast('API key revoked.', 'success');
      } catch { /* toast shown */ }
      loadKeys();
    }

    uForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      fieldErrors(uForm, null);
      if (!uName.value.trim() || !uPass.value) {
        fieldErrors(uForm, new ApiError(400, { fields: [
          ...(!uName.value.trim() ? [{ path: 'username', reason: 'Enter a username.' }] : []),
          ...(!uPass.value ? [{ path: 'password', reason: 'Enter a password.' }] : []),
        ] }));
        return;
      }
      try {
        await api.post('/users', { username: uName.value.trim(), password: uPass.value, role: uRole.value }, { quiet: true });
        toast(`User ${uName.value.trim()} created.`, 'success');
        uName.value = '';
        uPass.value = '';
        loadUsers();
      } catch (e) {
        fieldErrors(uForm, e);
      }
    });

    kForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      fieldErrors(kForm, null);
      try {
        const res = await api.post('/keys', { role: kRole.value, label: kLabel.value.trim() }, { quiet: true });
        kLabel.value = '';
        loadKeys();
        if (res && res.key) await showKeyDialog(res.key);
      } catch (e) {
        fieldErrors(kForm, e);
      }
    });

    await Promise.all([loadUsers(), loadKeys()]);
  },
};
