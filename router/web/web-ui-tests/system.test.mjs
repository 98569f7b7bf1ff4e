import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load } from './load.mjs';

const s = await load('system.js');

test('busy states block new upgrades', () => {
  for (const st of ['queued', 'running', 'rebooting']) assert.equal(s.upgradeBusy(st), true, st);
  for (const st of ['idle', 'failed', 'installed', 'rolled_back', undefined, null]) assert.equal(s.upgradeBusy(st), false, String(st));
});

test('state badges', () => {
  assert.deepEqual(s.stateInfo('failed'), { label: 'failed', tone: 'error' });
  assert.deepEqual(s.stateInfo('rolled_back'), { label: 'rolled back', tone: 'warn' });
  assert.deepEqual(s.stateInfo('installed'), { label: 'installed', tone: 'ok' });
  assert.equal(s.stateInfo('queued').tone, 'busy');
  assert.equal(s.stateInfo(null).label, 'idle');
  assert.deepEqual(s.stateInfo('new_state'), { label: 'new state', tone: 'neutral' });
});

test('when an admin may act', () => {
  assert.equal(s.actionBlock(null).ok, false);
  assert.deepEqual(s.actionBlock({ available: true, state: 'idle' }), { ok: true, reason: '' });
  assert.deepEqual(s.actionBlock({ available: true, state: 'failed' }), { ok: true, reason: '' });
  assert.deepEqual(s.actionBlock({ available: false, unavailable_reason: 'installed from the .deb: use apt', state: 'idle' }),
    { ok: false, reason: 'installed from the .deb: use apt' });
  assert.match(s.actionBlock({ available: false, unavailable_reason: null }).reason, /not available/);
  assert.match(s.actionBlock({ available: true, state: 'running' }).reason, /under way/);
  assert.match(s.actionBlock({ available: true, state: 'rebooting' }).reason, /restarting/);
});

test('field reasons from a 400, either spelling', () => {
  const fields = [{ path: 'url', reason: 'only http:// or https://' }, { path: 'other', reason: 'x' }, { field: 'url', message: 'no spaces' }];
  assert.deepEqual(s.fieldReasons(fields, 'url'), ['only http:// or https://', 'no spaces']);
  assert.deepEqual(s.fieldReasons(undefined, 'url'), []);
});

test('version from a bundle name or URL', () => {
  assert.equal(s.bundleVersion('router_0.1.0.2.upgrade.tar'), '0.1.0.2');
  assert.equal(s.bundleVersion('http://203.0.113.10:8001/router_0.1.0.2.upgrade.tar'), '0.1.0.2');
  assert.equal(s.bundleVersion('https://x/y/router_1.2.upgrade.tar?sig=1#a'), '1.2');
  assert.equal(s.bundleVersion('router_0.1.0.2.img'), null);
  assert.equal(s.bundleVersion('ftp://x'), null);
  assert.equal(s.bundleVersion(''), null);
});

test('upload progress text', () => {
  assert.equal(s.progressText(120 * 2 ** 20, 260 * 2 ** 20), '120 MiB of 260 MiB (46 %)');
  assert.equal(s.progressText(260 * 2 ** 20, 260 * 2 ** 20), '260 MiB of 260 MiB (100 %)');
  assert.equal(s.progressText(5 * 2 ** 20, 0), '5.0 MiB sent');
});

test('history lines: the leading UTC time is split off', () => {
  const p = s.parseHistoryLine('2026-11-28T14:00:00Z installed 0.1.0.2 from 0.1.0.1 (3 tries)');
  assert.equal(p.atMs, Date.UTC(2026, 10, 28, 14, 0, 0));
  assert.equal(p.text, 'installed 0.1.0.2 from 0.1.0.1 (3 tries)');
  assert.deepEqual(s.parseHistoryLine('something else'), { atMs: null, text: 'something else' });
  assert.deepEqual(s.parseHistoryLine('2026-13-99T99:00:00Z bad date'), { atMs: null, text: '2026-13-99T99:00:00Z bad date' });
});

test('server messages are capitalised only when they start with a plain word', () => {
  assert.equal(s.sentence('waiting for the upgrade service to start'), 'Waiting for the upgrade service to start');
  assert.equal(s.sentence('SHA256SUMS.sig is not a valid signature'), 'SHA256SUMS.sig is not a valid signature');
  assert.equal(s.sentence('0.1.0.2 is running'), '0.1.0.2 is running');
  assert.equal(s.sentence('routeros-upgrade: no space left'), 'routeros-upgrade: no space left');
  assert.equal(s.sentence(''), '');
  assert.equal(s.sentence(null), '');
});
