import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load } from './load.mjs';

const u = await load('util.js');

test('line speeds with their source, and the share of them in use', () => {
  assert.equal(u.formatSpeed({ kbit: 100_000, source: 'declared' }), '100 Mbit/s (declared)');
  assert.equal(u.formatSpeed({ kbit: 48_500, source: 'learned' }), '48.5 Mbit/s (learned)');
  assert.equal(u.formatSpeed(null), u.DASH);
  assert.equal(u.formatSpeed({ kbit: 0, source: 'default' }), u.DASH);
  assert.equal(u.formatUse(42_000_000, { kbit: 100_000 }), '42 %');
  assert.equal(u.formatUse(130_000_000, { kbit: 100_000 }), '100 %');
  assert.equal(u.formatUse(0, { kbit: 100_000 }), '0 %');
  assert.equal(u.formatUse(null, { kbit: 100_000 }), u.DASH);
  assert.equal(u.formatUse(5e6, undefined), u.DASH);
});

test('the HA pair panel: role, peer, last change, engines', () => {
  assert.equal(u.pairView(undefined), null);
  const now = 1_000_000;
  const v = u.pairView({
    role: 'master', previous: 'backup', since_ms: now - 75_000, peer: '10.99.0.2', peer_config: 'same',
    engines: [{ engine: 'keepalived', state: 'running', restarts: 0 }, { engine: 'conntrackd', state: 'running', restarts: 1 }],
  }, now);
  assert.equal(v.role, 'master');
  assert.equal(v.peer, '10.99.0.2');
  assert.equal(v.change, 'backup → master, 1m 15s ago');
  assert.equal(v.vrrp, 'running');
  assert.equal(v.sync, 'running (1 restart)');
  assert.equal(v.peerConfig, 'same as this box');
  assert.equal(v.healthy, true);
  assert.equal(u.pairView({ role: 'backup', peer_config: 'differs', engines: [] }, now).peerConfig, 'differs: edit both boxes alike');
  const fresh = u.pairView({ role: null, since_ms: null, peer: null, engines: [{ engine: 'conntrackd', state: 'exited', last_error: 'exit 1', restarts: 2 }] }, now);
  assert.equal(fresh.role, 'not reported yet');
  assert.equal(fresh.change, u.DASH);
  assert.equal(fresh.sync, 'exited: exit 1 (2 restarts)');
  assert.equal(fresh.vrrp, u.DASH);
  assert.equal(fresh.healthy, false);
});

test('throughput in Mbit/s', () => {
  assert.equal(u.formatMbps(12_345_678), '12.3 Mbit/s');
  assert.equal(u.formatMbps(250_000_000), '250 Mbit/s');
  assert.equal(u.formatMbps(50_000), '0.05 Mbit/s');
  assert.equal(u.formatMbps(0), '0.0 Mbit/s');
  assert.equal(u.formatMbps(null), u.DASH);
  assert.equal(u.toMbps(2e6), 2);
  assert.equal(u.toMbps(undefined), null);
});

test('latency, percent, bytes', () => {
  assert.equal(u.formatMs(23.44), '23.4 ms');
  assert.equal(u.formatMs(612.3), '612 ms');
  assert.equal(u.formatMs(null), u.DASH);
  assert.equal(u.formatPercent(0), '0 %');
  assert.equal(u.formatPercent(33.333), '33.3 %');
  assert.equal(u.formatBytes(612 * 2 ** 20), '612 MiB');
  assert.equal(u.formatBytes(3.8 * 2 ** 30), '3.8 GiB');
});

test('durations: "for 3m 12s"', () => {
  assert.equal(u.formatDuration(192_000), '3m 12s');
  assert.equal(u.formatDuration(5_400), '5s');
  assert.equal(u.formatDuration(3_720_000), '1h 02m');
  assert.equal(u.formatDuration(2 * 86_400_000 + 3 * 3_600_000), '2d 3h');
  assert.equal(u.formatDuration(-5), '0s');
  assert.equal(u.formatUptime(3 * 86400 + 4 * 3600 + 12 * 60), '3d 4h 12m');
});

test('TOML paths', () => {
  assert.deepEqual(u.parsePath('wan_interfaces[0].weight'), ['wan_interfaces', 0, 'weight']);
  assert.deepEqual(u.parsePath('wan_interfaces[1].dns[2]'), ['wan_interfaces', 1, 'dns', 2]);
  assert.equal(u.joinPath(['wan_interfaces', 0, 'weight']), 'wan_interfaces[0].weight');
  assert.equal(u.joinPath(['lan', 'address']), 'lan.address');
  assert.deepEqual(u.pathAncestors('wan_interfaces[1].dns[2]'),
    ['wan_interfaces[1].dns[2]', 'wan_interfaces[1].dns', 'wan_interfaces[1]', 'wan_interfaces']);
});

test('get/set by path; undefined deletes', () => {
  const c = { wan_interfaces: [{ name: 'eth0', gateway: '192.0.2.1' }] };
  assert.equal(u.getPath(c, 'wan_interfaces[0].name'), 'eth0');
  assert.equal(u.getPath(c, 'nope[3].x'), undefined);
  u.setPath(c, 'wan_interfaces[0].weight', 3);
  assert.equal(c.wan_interfaces[0].weight, 3);
  u.setPath(c, 'wan_interfaces[0].gateway', undefined);
  assert.ok(!('gateway' in c.wan_interfaces[0]));
  u.setPath(c, 'lan.address', '192.168.1.1/24');
  assert.deepEqual(c.lan, { address: '192.168.1.1/24' });
  u.setPath(c, 'policies[0].via', ['eth0']);
  assert.deepEqual(c.policies, [{ via: ['eth0'] }]);
});

test('config test ids follow config-<key>-<parent>', () => {
  assert.equal(u.configTestId('wan_interfaces[0].weight'), 'config-weight-wan_interfaces[0]');
  assert.equal(u.configTestId('health_check.retry_count'), 'config-retry_count-health_check');
  assert.equal(u.configTestId('policies'), 'config-policies');
});

test('list and number inputs', () => {
  assert.deepEqual(u.parseList('8.8.8.8, 8.8.4.4'), ['8.8.8.8', '8.8.4.4']);
  assert.deepEqual(u.parseList(' 1.1.1.1\n9.9.9.9;; '), ['1.1.1.1', '9.9.9.9']);
  assert.deepEqual(u.parseList(''), []);
  assert.equal(u.formatList(['a', 'b']), 'a, b');
  assert.equal(u.parseNumber(''), undefined);
  assert.equal(u.parseNumber(' 2.5 '), 2.5);
  assert.ok(Number.isNaN(u.parseNumber('x')));
});

test('WAN role and card state', () => {
  // The daemon names the role; the UI does not derive it from the flags.
  assert.equal(u.wanRole({ role: 'standby', active: true }), 'standby');
  assert.equal(u.wanRole({ role: 'disabled', disabled: true }), 'disabled');
  assert.equal(u.wanRole({ role: 'maintenance', maintenance_until: 1_800_000_000 }), 'maintenance');
  assert.equal(u.wanRole({}), 'standby');
  assert.equal(u.wanDisplayState({ state: 'up', role: 'disabled' }), 'disabled');
  assert.equal(u.wanDisplayState({ state: 'recovering' }), 'recovering');
  assert.equal(u.wanDisplayState({}), 'unknown');
});
