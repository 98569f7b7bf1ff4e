import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load } from './load.mjs';

const s = await load('setup.js');

test('new admin password rules', () => {
  assert.match(s.passwordProblem('short'), /at least 10/);
  assert.match(s.passwordProblem('routeros123'), /other than the default/);
  assert.match(s.passwordProblem('a-long-secret', 'a-long-secreT'), /differ/);
  assert.equal(s.passwordProblem('a-long-secret', 'a-long-secret'), '');
});

test('DHCP range suggested for a /24 only', () => {
  assert.deepEqual(s.suggestDhcpRange('10.0.5.1/24'), { start: '10.0.5.100', end: '10.0.5.200' });
  assert.equal(s.suggestDhcpRange('10.0.0.1/16'), null);
  assert.equal(s.suggestDhcpRange('nonsense'), null);
});

test('wizard body matches POST /api/v1/setup/apply', () => {
  const state = {
    interfaces: ['eth0', 'eth1', 'eth2', 'eth3'],
    wans: {
      eth0: { use: true, mode: 'dhcp', address: 'ignored', gateway: '', dns: '9.9.9.9', weight: '2' },
      eth1: { use: true, mode: 'static', address: ' 198.51.100.2/29 ', gateway: '198.51.100.1', dns: '1.1.1.1, 9.9.9.9', weight: '1' },
      eth2: { use: false, mode: 'dhcp', address: '', gateway: '', dns: '', weight: '1' },
      eth3: { use: true, mode: 'pppoe', address: '', gateway: '', dns: '', weight: '1', pppoeUser: 'joe', pppoePassword: 'pw' },
    },
    lan: { interface: 'eth2', address: '192.168.1.1/24 ', dhcp_start: '192.168.1.100', dhcp_end: '192.168.1.200' },
    timezone: ' Europe/Vienna ',
  };
  assert.deepEqual(s.buildApplyBody(state), {
    wans: [
      { name: 'eth0', mode: 'dhcp', dns: [], weight: 2 },
      { name: 'eth1', mode: 'static', dns: ['1.1.1.1', '9.9.9.9'], weight: 1, address: '198.51.100.2/29', gateway: '198.51.100.1' },
      { name: 'eth3', mode: 'pppoe', dns: [], weight: 1, pppoe: { username: 'joe', password: 'pw' } },
    ],
    lan: { interface: 'eth2', address: '192.168.1.1/24', dhcp_start: '192.168.1.100', dhcp_end: '192.168.1.200' },
    timezone: 'Europe/Vienna',
  });
});
