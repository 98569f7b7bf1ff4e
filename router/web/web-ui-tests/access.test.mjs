// WAN access types in the UI: the line and PPPoE session on the dashboard cards, the
// write-only PPPoE password in the config editor, the wizard's body and summary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load } from './load.mjs';

const u = await load('util.js');
const s = await load('setup.js');

test('a card names the line: mode and VLAN', () => {
  assert.equal(u.lineText({ mode: 'pppoe', vlan: 7 }), 'PPPoE · VLAN 7');
  assert.equal(u.lineText({ mode: 'dhcp', vlan: null }), 'DHCP');
  assert.equal(u.lineText({ mode: 'static' }), 'Static');
  assert.equal(u.lineText({ mode: null, vlan: null }), 'System');
  assert.equal(u.lineText(undefined), 'System');
});

test('a PPPoE card shows the session state and why it failed', () => {
  const failed = u.sessionView({ mode: 'pppoe', session: { state: 'auth_failed', last_error: 'authentication failed', since_ms: 1, restarts: 3 } });
  assert.deepEqual(failed, { state: 'auth_failed', text: 'authentication failed (3 retries)', error: 'authentication failed' });
  const down = u.sessionView({ mode: 'pppoe', session: { state: 'down', last_error: 'no PPPoE server answered', restarts: 1 } });
  assert.equal(down.text, 'down: no PPPoE server answered (1 retry)');
  const up = u.sessionView({ mode: 'pppoe', session: { state: 'up', last_error: 'peer hung up', restarts: 2 } });
  assert.equal(up.text, 'up');
  assert.deepEqual(u.sessionView({ mode: 'pppoe', session: null }), { state: 'none', text: 'not started yet', error: '' });
  assert.equal(u.sessionView({ mode: 'dhcp', session: null }), null);
});

test('the PPPoE password is write-only in the editor', () => {
  const shown = { username: 'joe', password_file: '/opt/routeros/config/secrets/wan2.pppoe', password_set: true, mtu: 1492 };
  assert.equal(u.pppoePasswordSet(shown), true);
  assert.equal(u.pppoePasswordSet({ username: 'joe', password_set: false }), false);
  assert.equal(u.pppoePasswordSet(undefined), false);
  // A new password replaces the file; clearing the field brings the file back.
  const typed = u.pppoeWithPassword({ ...shown, username: 'joe2' }, 'n3w', shown.password_file);
  assert.deepEqual(typed, { username: 'joe2', password_set: true, mtu: 1492, password: 'n3w' });
  const cleared = u.pppoeWithPassword(typed, '', shown.password_file);
  assert.deepEqual(cleared, { username: 'joe2', password_set: true, mtu: 1492, password_file: shown.password_file });
  // No file to keep: the section goes without password (the server keeps its own).
  assert.deepEqual(u.pppoeWithPassword({ username: 'joe' }, '', undefined), { username: 'joe' });
});

function wizardState(w) {
  return {
    interfaces: ['wan1', 'lan0'],
    wans: {
      wan1: { use: true, address: '', gateway: '', dns: '', weight: '1', vlan: '', mac: '', pppoeUser: '', pppoePassword: '', pppoeService: '', ...w },
      lan0: { use: false },
    },
    lan: { interface: 'lan0', address: '192.168.1.1/24', dhcp_start: '192.168.1.100', dhcp_end: '192.168.1.200' },
    timezone: 'UTC',
  };
}

test('the wizard sends each mode with its fields', () => {
  const ppp = s.buildApplyBody(wizardState({ mode: 'pppoe', vlan: ' 7 ', mac: '02:00:5E:10:00:01', pppoeUser: ' joe@isp ', pppoePassword: 'pw with space ', pppoeService: 'fiber' }));
  assert.deepEqual(ppp.wans[0], {
    name: 'wan1', mode: 'pppoe', dns: [], weight: 1, vlan: 7, mac: '02:00:5e:10:00:01',
    pppoe: { username: 'joe@isp', password: 'pw with space ', service_name: 'fiber' },
  });
  // An empty password is left out: the server keeps a stored one.
  const again = s.buildApplyBody(wizardState({ mode: 'pppoe', pppoeUser: 'joe' }));
  assert.deepEqual(again.wans[0].pppoe, { username: 'joe' });
  const stat = s.buildApplyBody(wizardState({ mode: 'static', address: '192.0.2.2/29', gateway: '192.0.2.1', dns: '192.0.2.1', pppoeUser: 'ignored' }));
  assert.deepEqual(stat.wans[0], { name: 'wan1', mode: 'static', dns: ['192.0.2.1'], weight: 1, address: '192.0.2.2/29', gateway: '192.0.2.1' });
  // A VLAN that is not a number goes as typed: the server names the field.
  assert.equal(s.buildApplyBody(wizardState({ mode: 'dhcp', vlan: 'x' })).wans[0].vlan, 'x');
});

test('VLAN ids are checked before sending', () => {
  assert.equal(s.vlanProblem(''), '');
  assert.equal(s.vlanProblem('7'), '');
  assert.equal(s.vlanProblem('4094'), '');
  for (const bad of ['0', '4095', 'x', '7.5', '-1']) assert.match(s.vlanProblem(bad), /1 to 4094/, bad);
});

test('the summary names the line, never the password', () => {
  const b = s.buildApplyBody(wizardState({ mode: 'pppoe', vlan: '35', pppoeUser: 'joe@isp', pppoePassword: 'S3cret!' }));
  const text = s.wanSummary(b.wans[0]);
  assert.equal(text, 'PPPoE joe@isp · VLAN 35 · weight 1');
  assert.ok(!text.includes('S3cret'));
  const st = s.buildApplyBody(wizardState({ mode: 'static', address: '192.0.2.2/29', gateway: '192.0.2.1' }));
  assert.equal(s.wanSummary(st.wans[0]), 'static 192.0.2.2/29 via 192.0.2.1 · weight 1');
});

test('a card says whether its line is shaped', () => {
  assert.deepEqual(u.shapingView(null), { state: 'off', text: 'off', error: null });
  assert.deepEqual(u.shapingView({ active: true, upload_kbit: 19000, download_kbit: 95000, error: null }),
    { state: 'on', text: 'on · ↓ 95 / ↑ 19 Mbit/s', error: null });
  const failed = u.shapingView({ active: false, upload_kbit: 1350, download_kbit: 14400, error: 'this kernel has no sch_cake' });
  assert.equal(failed.state, 'failed');
  assert.equal(failed.text, 'not applied: this kernel has no sch_cake');
});
