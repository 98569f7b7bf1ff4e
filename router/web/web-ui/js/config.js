// Configuration (admin): a form generated from the JSON form of routeros.toml, the raw TOML,
// and the history with rollback. Known sections get labels, help and the right controls
// (SCHEMA below); any other key in the JSON is rendered generically from its value, so new
// keys (lan.dhcp_start, port_forwards, ...) show up without a UI change.
// Every input carries data-path="<TOML path>" so the server's 400 `fields` land next to it.
// A successful save is live at once and rolls back unless confirmed within the window the
// server names (`confirm_seconds`; a banner counts down to its `rollback_at_ms`).

import { api, ApiError, errorText } from './api.js';
import { confirmDialog, toast } from './dialogs.js';
import {
  h, clear, clone, getPath, setPath, parsePath, joinPath, pathAncestors, configTestId,
  parseList, formatList, parseNumber, humanize, formatTime, pppoeWithPassword, pppoePasswordSet,
} from './util.js';

// ---------- what we know about the schema ----------

const LEVELS = ['ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE'];

const PPPOE_FIELDS = {
  username: { label: 'PPPoE username', type: 'text', placeholder: 'customer@isp.example' },
  password: { label: 'PPPoE password', type: 'secret', help: 'Never shown. Leave empty to keep the current one.' },
  service_name: { label: 'Service name', type: 'text', optional: true, placeholder: 'any', help: 'Only if your ISP asks for one.' },
  mtu: { label: 'MTU', type: 'int', min: 576, max: 1500, help: '1492 fits most lines.' },
  password_file: { label: 'Password file', type: 'text', optional: true, advanced: true, help: 'Where the router keeps the password (root only). Set by the router.' },
  password_set: { type: 'hidden' },
};

/** Mode changed: a PPPoE line gets an account to fill in, other modes lose theirs. */
function modeChanged(form, path, mode) {
  const wan = parsePath(path).slice(0, -1);
  const pppoe = joinPath(wan.concat('pppoe'));
  if (mode === 'pppoe' && !getPath(form.work, pppoe)) form.write(pppoe, { username: '', mtu: 1492 });
  if (mode !== 'pppoe' && getPath(form.work, pppoe)) form.write(pppoe, undefined);
  form.onStructure();
}

const SHAPING_FIELDS = {
  enabled: { label: 'Shape this line', type: 'bool', help: 'Keeps latency low while the line is full: needs both speeds above, and a kernel with sch_cake.' },
  overhead_percent: { label: 'Overhead (%)', type: 'float', min: 0, max: 50, help: 'Taken off both speeds (0–50, default 5) so the queue builds here, not in the modem.' },
};

const WAN_FIELDS = {
  name: { label: 'Interface', type: 'text', placeholder: 'eth0' },
  mode: {
    label: 'Connection', type: 'select', optional: true, changed: modeChanged,
    options: [['', 'System network config'], ['dhcp', 'DHCP'], ['static', 'Static address'], ['pppoe', 'PPPoE']],
    help: 'How the router brings the line up; “System” leaves it to the system (netplan, cloud-init).',
  },
  address: { label: 'Address (CIDR)', type: 'text', optional: true, placeholder: '203.0.113.5/29', help: 'Static lines only.' },
  weight: { label: 'Weight', type: 'int', min: 1, max: 255, help: 'Share of new connections (1–255).' },
  priority: { label: 'Priority', type: 'int', min: 1, help: 'Failover mode: the lowest live priority carries all traffic.' },
  health_targets: { label: 'Own probe targets', type: 'list', optional: true, advanced: true, placeholder: '192.0.2.53, 2001:db8::53', help: 'Replace the health check’s targets for this line, per family.' },
  download_mbit: { label: 'Download speed (Mbit/s)', type: 'float', optional: true, placeholder: 'learned', help: 'As sold or measured. With weights from speeds, the line’s weight follows it; empty: learned from its traffic.' },
  upload_mbit: { label: 'Upload speed (Mbit/s)', type: 'float', optional: true, placeholder: 'learned', help: 'As sold or measured; empty: learned from its traffic.' },
  gateway: { label: 'Gateway', type: 'text', optional: true, placeholder: 'learned from DHCP', help: 'Static lines: required. DHCP: leave empty to learn it. PPPoE: none.' },
  dns: { label: 'DNS servers', type: 'list', placeholder: '8.8.8.8, 8.8.4.4', help: 'Comma separated; reached through this line.' },
  vlan: { label: 'VLAN', type: 'int', optional: true, min: 1, max: 4094, placeholder: 'untagged', help: '802.1Q tag your ISP expects (e.g. 7), any mode.' },
  mac: { label: 'MAC address', type: 'text', optional: true, placeholder: 'the port’s own', help: 'Clone the address of the box the line was bound to.' },
  ipv6: {
    label: 'IPv6', type: 'select', optional: true,
    options: [['', 'Automatic (router advertisements, DHCPv6)'], ['off', 'Off'], ['static', 'Static address']],
    help: 'Each line’s IPv6 is balanced and fails over on its own.',
  },
  address6: { label: 'IPv6 address (CIDR)', type: 'text', optional: true, placeholder: '2001:db8:1::2/64', help: 'Static IPv6 only.' },
  gateway6: { label: 'IPv6 gateway', type: 'text', optional: true, placeholder: 'fe80::1', help: 'Static IPv6 only: link-local or in the address’s prefix.' },
  prefix6: { label: 'Routed IPv6 prefix', type: 'text', optional: true, advanced: true, placeholder: '2001:db8:100::/56', help: 'Static IPv6 only: what the ISP routes to the line.' },
  pppoe: {
    label: 'PPPoE account', toggleLabel: 'PPPoE account', type: 'object', optional: true,
    make: () => ({ username: '', mtu: 1492 }), fields: PPPOE_FIELDS,
  },
  shaping: {
    label: 'Shaping (CAKE)', toggleLabel: 'Shaping (CAKE)', type: 'object', optional: true,
    make: () => ({ enabled: true, overhead_percent: 5 }), fields: SHAPING_FIELDS,
  },
  table: { label: 'Routing table', type: 'int', optional: true, advanced: true, placeholder: 'default' },
  mark: { label: 'Packet mark', type: 'int', optional: true, advanced: true, placeholder: 'default' },
};

const POLICY_FIELDS = {
  name: { label: 'Name', type: 'text', placeholder: 'bank', help: 'Letters, digits, - and _.' },
  src: { label: 'Source', type: 'text', optional: true, placeholder: '192.168.1.50 or CIDR', help: 'IPv4 or IPv6; a policy with no address matches both families.' },
  dst: { label: 'Destination', type: 'text', optional: true, placeholder: '203.0.113.0/24' },
  protocol: { label: 'Protocol', type: 'select', optional: true, options: [['', 'any'], ['tcp', 'TCP'], ['udp', 'UDP'], ['icmp', 'ICMP']] },
  src_port: { label: 'Source port(s)', type: 'text', optional: true, placeholder: '1000-2000' },
  dst_port: { label: 'Destination port(s)', type: 'text', optional: true, placeholder: '443' },
  via: { label: 'Via WANs', type: 'wans', help: 'One line, or several balanced by weight (Ctrl/Cmd-click to pick several).' },
  last_resort: { label: 'When every via WAN is down', type: 'select', options: [['default', 'use normal balancing'], ['drop', 'drop the connection']] },
  sticky_timeout: { label: 'Sticky timeout (s)', type: 'int', optional: true, min: 1, placeholder: 'off', help: 'Seconds a LAN host keeps the WAN it got first.' },
};

const CLASS_FIELDS = {
  name: { label: 'Name', type: 'text', placeholder: 'calls', help: 'Letters, digits, - and _.' },
  src: { label: 'Source', type: 'text', optional: true, placeholder: '192.168.1.50 or CIDR', help: 'IPv4 or IPv6; no address: both families.' },
  dst: { label: 'Destination', type: 'text', optional: true, placeholder: '203.0.113.0/24' },
  protocol: { label: 'Protocol', type: 'select', optional: true, options: [['', 'any'], ['tcp', 'TCP'], ['udp', 'UDP'], ['icmp', 'ICMP']] },
  src_port: { label: 'Source port(s)', type: 'text', optional: true, placeholder: '1000-2000' },
  dst_port: { label: 'Destination port(s)', type: 'text', optional: true, placeholder: '3478-3481' },
  dscp: { label: 'DSCP', type: 'text', placeholder: 'voice', help: 'voice, video, besteffort, bulk, or a value 0-63.' },
};

const SCHEMA = {
  wan_interfaces: {
    title: 'WAN lines', type: 'objects', fields: WAN_FIELDS, itemTitle: (it, i) => it.name || `WAN ${i + 1}`,
    help: 'One block per ISP line. Weights share new connections; priorities order the lines in failover mode.',
    newItem: () => ({ name: '', weight: 1, priority: 1, dns: [] }), addLabel: 'Add WAN',
  },
  routing: {
    title: 'Routing mode', type: 'object',
    fields: {
      load_balancing: { label: 'Mode', type: 'select', options: [['ecmp', 'Weighted (ECMP)'], ['failover', 'Failover (priority)']] },
      weights: { label: 'Weights', type: 'select', options: [['static', 'As set per line'], ['auto', 'From each line’s speed']], help: 'From speeds: the declared speed, else the one learned from the line’s traffic.' },
      placement: { label: 'New connections', type: 'select', options: [['weight', 'By weight'], ['spare_capacity', 'By weight × spare capacity']], help: 'Spare capacity: a line already full gets few new connections.' },
      sticky_sessions: { label: 'Sticky sessions', type: 'bool', help: 'A connection keeps its WAN for its whole life.' },
      packet_marking: { label: 'Packet marking', type: 'bool', help: 'Needed for traffic policies.' },
      degraded_share: { label: 'Degraded line’s share', type: 'float', min: 0.05, max: 1, help: 'The part of its share of new connections a slow or lossy line keeps (1: all).' },
      move_back_on_recovery: { label: 'Move back on recovery', type: 'bool', help: 'When a better line recovers, reset connections left on lines that no longer carry new traffic.' },
    },
  },
  health_check: {
    title: 'Health checks', type: 'object',
    help: 'How each line is probed and when it counts as down, degraded or recovered.',
    fields: {
      timeout_seconds: { label: 'Timeout (s)', type: 'float', min: 0.1, help: 'A probe without answer after this long is lost.' },
      retry_count: { label: 'Retry count', type: 'int', min: 1, help: 'Failed rounds in a row before a line is down.' },
      check_interval: { label: 'Check interval (s)', type: 'float', min: 0.1, help: 'Seconds between probe rounds.' },
      failure_interval: { label: 'Failure interval (s)', type: 'float', optional: true, min: 0.1, placeholder: 'check interval', help: 'After a failed round, until the line is judged: probe slowly while healthy, fast once in doubt.' },
      recovery_interval: { label: 'Recovery interval (s)', type: 'float', optional: true, min: 0.1, placeholder: 'check interval', help: 'While a line is down or recovering.' },
      target_host: { label: 'Target host', type: 'text', placeholder: '1.1.1.1' },
      targets: { label: 'Targets', type: 'list', placeholder: '1.1.1.1, 9.9.9.9', help: 'Replaces the target host when set.' },
      targets6: { label: 'IPv6 targets', type: 'list', placeholder: '2606:4700:4700::1111', help: 'Probed through every line with IPv6; empty: IPv6 follows the link only.' },
      reliability: { label: 'Reliability', type: 'int', min: 1, help: 'Targets that must answer for a round to succeed.' },
      recovery_count: { label: 'Recovery count', type: 'int', min: 1, help: 'Good rounds before a down line is used again.' },
      degraded_latency_ms: { label: 'Degraded latency (ms)', type: 'int', min: 1 },
      degraded_loss_percent: { label: 'Degraded loss (%)', type: 'int', min: 0, max: 100 },
    },
  },
  policies: {
    title: 'Traffic policies', type: 'objects', fields: POLICY_FIELDS, itemTitle: (it, i) => it.name || `Policy ${i + 1}`,
    help: 'Checked in order before weighted balancing; a matching connection leaves through “via”.',
    newItem: () => ({ name: '', via: [], last_resort: 'default' }), addLabel: 'Add policy', orderable: true,
  },
  classes: {
    title: 'Traffic classes', type: 'objects', fields: CLASS_FIELDS, itemTitle: (it, i) => it.name || `Class ${i + 1}`,
    help: 'Packets leaving by a WAN get the DSCP of the first class their connection matches, so a shaper can put calls before downloads.',
    newItem: () => ({ name: '', dscp: 'voice' }), addLabel: 'Add class', orderable: true,
  },
  qos: {
    title: 'Traffic classification', type: 'object',
    fields: {
      default_classes: { label: 'Built-in classes', type: 'bool', help: 'After yours: DNS, SIP, STUN and RTP as voice, SSH as video, BitTorrent as bulk.' },
    },
  },
  lan: {
    title: 'LAN', type: 'object',
    fields: {
      interface: { label: 'Interface', type: 'text', placeholder: 'eth2' },
      address: { label: 'Address (CIDR)', type: 'text', placeholder: '192.168.1.1/24', help: 'Router address and LAN prefix.' },
      address6: { label: 'IPv6 address (/64)', type: 'text', placeholder: 'fd7a:9e51:5c34::1/64', help: 'The LAN’s one IPv6 prefix, announced to clients; each line translates it.' },
      dhcp: {
        label: 'DHCP server', type: 'object',
        fields: {
          enabled: { label: 'Serve DHCP on the LAN', type: 'bool' },
          start: { label: 'Range start', type: 'text', optional: true, placeholder: '.100 of the LAN' },
          end: { label: 'Range end', type: 'text', optional: true, placeholder: '.200 of the LAN' },
          lease_seconds: { label: 'Lease time (s)', type: 'int', min: 60 },
          static_leases: {
            label: 'Static leases', type: 'objects', addLabel: 'Add static lease',
            itemTitle: (it, i) => it.name || it.mac || `Lease ${i + 1}`,
            newItem: () => ({ mac: '', address: '' }),
            fields: {
              mac: { label: 'MAC address', type: 'text', placeholder: 'aa:bb:cc:dd:ee:ff' },
              address: { label: 'Address', type: 'text', placeholder: '192.168.1.20' },
              name: { label: 'Name', type: 'text', optional: true },
            },
          },
        },
      },
    },
  },
  port_forwards: {
    title: 'Port forwards', type: 'objects', itemTitle: (it, i) => it.name || `Forward ${i + 1}`,
    help: 'Connections from the internet to a port of the router go to a LAN host (LAN clients can use the public address too).',
    addLabel: 'Add port forward',
    newItem: () => ({ name: '', protocol: 'tcp', wan_port: '', to: '' }),
    fields: {
      name: { label: 'Name', type: 'text', placeholder: 'nas' },
      protocol: { label: 'Protocol', type: 'select', options: [['tcp', 'TCP'], ['udp', 'UDP']] },
      wan_port: { label: 'WAN port(s)', type: 'text', placeholder: '8443 or 5000-5010' },
      family: { label: 'Family', type: 'select', optional: true, options: [['', 'IPv4'], ['ipv6', 'IPv6'], ['both', 'IPv4 and IPv6']] },
      to: { label: 'LAN host', type: 'text', optional: true, placeholder: '192.168.1.20', help: 'IPv4 and both.' },
      to6: { label: 'LAN host (IPv6)', type: 'text', optional: true, placeholder: 'fd7a:9e51:5c34::20', help: 'IPv6 and both: the host’s address in the LAN prefix.' },
      to_port: { label: 'LAN port', type: 'int', optional: true, min: 1, max: 65535, placeholder: 'same', help: 'Single WAN ports only.' },
      wans: { label: 'On WANs', type: 'wans', help: 'None selected: every WAN.' },
    },
  },
  logging: {
    title: 'Logging', type: 'object',
    fields: {
      level: { label: 'Level', type: 'select', options: LEVELS.map((l) => [l, l]) },
      file: { label: 'File', type: 'text', optional: true, nullable: true, help: 'Root only: set in the config file on the router; a change here is refused.' },
      max_size: { label: 'Max size', type: 'text', placeholder: '10MB', help: 'Root only, like the file.' },
    },
  },
  alerts: {
    title: 'Alerts', type: 'object',
    fields: {
      webhook_url: { label: 'Webhook URL', type: 'text', optional: true, placeholder: 'https://example.net/hooks/router' },
      retries: { label: 'Retries', type: 'int', min: 0 },
      min_interval_seconds: { label: 'Min. interval (s)', type: 'int', min: 0, help: 'The same alert at most this often.' },
      smtp: {
        label: 'Mail alerts (SMTP)', toggleLabel: 'Send alerts by mail', type: 'object', optional: true,
        make: () => ({ server: '', port: 587, starttls: true, from: '', to: [] }),
        fields: {
          server: { label: 'Server', type: 'text' },
          port: { label: 'Port', type: 'int', min: 1, max: 65535 },
          starttls: { label: 'STARTTLS', type: 'bool' },
          from: { label: 'From', type: 'text' },
          to: { label: 'To', type: 'list' },
          username: { label: 'Username', type: 'text', optional: true },
          password: { label: 'Password', type: 'password', optional: true },
        },
      },
    },
  },
};

const SECTION_ORDER = ['wan_interfaces', 'routing', 'health_check', 'policies', 'classes', 'qos', 'lan', 'port_forwards', 'logging', 'alerts'];

function kindOf(value, hint) {
  if (hint && hint.type) return hint.type;
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return 'number';
  if (Array.isArray(value)) return value.some((v) => v && typeof v === 'object') ? 'objects' : 'list';
  if (value && typeof value === 'object') return 'object';
  return 'text';
}

/** A label for a key the schema does not know: "dhcp_start" -> "Dhcp start". */
function labelFor(key) {
  const t = humanize(key);
  return t.charAt(0).toUpperCase() + t.slice(1);
}

function domId(path) {
  return `cfg-${path.replace(/[^a-zA-Z0-9_-]+/g, '-')}`;
}

// ---------- the form ----------

class ConfigForm {
  constructor(config, onStructure) {
    this.work = clone(config);
    this.onStructure = onStructure; // re-render after add/remove/move
  }

  wanNames() {
    return (this.work.wan_interfaces || []).map((w) => w && w.name).filter(Boolean);
  }

  write(path, value) {
    setPath(this.work, path, value);
  }

  render() {
    const keys = SECTION_ORDER.filter((k) => k in this.work)
      .concat(Object.keys(this.work).filter((k) => !SECTION_ORDER.includes(k)));
    return keys.map((k) => this.section(k));
  }

  section(key) {
    const hint = SCHEMA[key] || {};
    const value = this.work[key];
    const kind = kindOf(value, hint.type ? hint : null);
    const body = [];
    if (kind === 'objects') body.push(this.list(key, value || [], hint));
    else if (kind === 'object') body.push(h('div', { class: 'field-grid' }, this.objectFields(key, value || {}, hint.fields || {})));
    else body.push(h('div', { class: 'field-grid' }, this.field(key, value, hint)));
    return h('section', { class: 'card cfg-section', testid: `config-section-${key}`, dataset: { groupPath: key } },
      h('h2', { text: hint.title || labelFor(key) }),
      hint.help ? h('p', { class: 'muted small', text: hint.help }) : null,
      h('p', { class: 'field-error', dataset: { errorFor: key }, hidden: true }),
      body);
  }

  /** Fields of an object: the known ones in schema order, then any other keys it has. */
  objectFields(path, obj, fields) {
    const keys = Object.keys(fields).concat(Object.keys(obj).filter((k) => !(k in fields)));
    const plain = [];
    const advanced = [];
    const nested = [];
    for (const k of keys) {
      const hint = fields[k] || {};
      const p = joinPath(parsePath(path).concat(k));
      const v = obj[k];
      const kind = kindOf(v, hint.type ? hint : null);
      if (kind === 'object') nested.push(this.nestedObject(p, v, hint));
      else if (kind === 'objects') nested.push(h('div', { class: 'nested-list span-all' }, h('h3', { text: hint.label || labelFor(k) }), this.list(p, v || [], hint)));
      else (hint.advanced ? advanced : plain).push(this.field(p, v, hint));
    }
    const out = plain;
    if (advanced.length) out.push(h('details', { class: 'advanced span-all' }, h('summary', { text: 'Advanced' }), h('div', { class: 'field-grid' }, advanced)));
    return out.concat(nested);
  }

  nestedObject(path, value, hint) {
    const label = hint.label || labelFor(parsePath(path).pop());
    const present = value !== undefined && value !== null;
    const box = h('fieldset', { class: 'nested span-all', dataset: { groupPath: path } }, h('legend', { text: label }));
    if (hint.optional) {
      const toggle = h('input', {
        type: 'checkbox', checked: present, 'data-path': `${path}`, testid: configTestId(path),
        on: {
          change: () => {
            this.write(path, toggle.checked ? (hint.make ? hint.make() : {}) : undefined);
            this.onStructure();
          },
        },
      });
      box.append(h('label', { class: 'check' }, toggle, h('span', { text: hint.toggleLabel || `Use ${label}` })));
    }
    box.append(h('p', { class: 'field-error', dataset: { errorFor: path }, hidden: true }));
    if (present || !hint.optional) box.append(h('div', { class: 'field-grid' }, this.objectFields(path, value || {}, hint.fields || {})));
    return box;
  }

  /** A list of objects (WANs, policies, port forwards): one fieldset per item. */
  list(path, items, hint) {
    const wrap = h('div', { class: 'list-editor', testid: `config-list-${path}`, dataset: { groupPath: path } });
    items.forEach((item, i) => {
      const ip = `${path}[${i}]`;
      const title = hint.itemTitle ? hint.itemTitle(item || {}, i) : `${humanize(path)} ${i + 1}`;
      const tools = h('div', { class: 'item-tools' });
      if (hint.orderable) {
        tools.append(
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: `config-up-${ip}`, disabled: i === 0, title: 'Move up', text: '↑', on: { click: () => this.move(path, i, -1) } }),
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: `config-down-${ip}`, disabled: i === items.length - 1, title: 'Move down', text: '↓', on: { click: () => this.move(path, i, 1) } }));
      }
      if (hint.newItem || items.length > 0) {
        tools.append(h('button', { type: 'button', class: 'btn btn-small btn-danger-outline', testid: `config-remove-${ip}`, text: 'Remove', on: { click: () => this.remove(path, i) } }));
      }
      wrap.append(h('fieldset', { class: 'item', dataset: { groupPath: ip }, testid: `config-item-${ip}` },
        h('legend', {}, h('span', { class: 'item-title', text: title }), tools),
        h('p', { class: 'field-error', dataset: { errorFor: ip }, hidden: true }),
        h('div', { class: 'field-grid' }, this.objectFields(ip, item || {}, hint.fields || {}))));
    });
    const template = hint.newItem || (items.length && items[0] && typeof items[0] === 'object' ? () => blankLike(items[0]) : null);
    if (!items.length) wrap.append(h('p', { class: 'muted empty', text: template ? 'None yet.' : 'None yet. Add the first one in the TOML tab.' }));
    if (template) {
      wrap.append(h('button', {
        type: 'button', class: 'btn btn-small', testid: `config-add-${path}`, text: hint.addLabel || 'Add',
        on: { click: () => { const list = getPath(this.work, path) || []; list.push(template()); this.write(path, list); this.onStructure(); } },
      }));
    }
    return wrap;
  }

  move(path, i, d) {
    const list = getPath(this.work, path);
    const j = i + d;
    if (!list || j < 0 || j >= list.length) return;
    [list[i], list[j]] = [list[j], list[i]];
    this.onStructure();
  }

  remove(path, i) {
    const list = getPath(this.work, path);
    if (!list) return;
    list.splice(i, 1);
    this.onStructure();
  }

  /** One labelled input bound to `path`. */
  field(path, value, hint = {}) {
    const key = parsePath(path).pop();
    const kind = kindOf(value, hint.type ? hint : null);
    const id = domId(path);
    const common = { id, 'data-path': path, testid: configTestId(path) };
    let input;
    const write = (v) => this.write(path, v);
    const emptyValue = () => {
      if (hint.nullable || value === null) return null;
      return hint.optional ? undefined : '';
    };

    if (kind === 'hidden') return null;
    if (kind === 'secret') return this.secretField(path, hint, common);
    if (kind === 'bool') {
      input = h('input', { ...common, type: 'checkbox', checked: !!value });
      input.addEventListener('change', () => write(input.checked));
      return h('div', { class: 'field field-check' },
        h('label', { class: 'check', for: id }, input, h('span', { text: hint.label || labelFor(key) })),
        hint.help ? h('p', { class: 'help', text: hint.help }) : null,
        h('p', { class: 'field-error', dataset: { errorFor: path }, hidden: true }));
    }
    if (kind === 'select') {
      input = h('select', common, (hint.options || []).map(([v, t]) => h('option', { value: v, text: t })));
      const cur = value === undefined || value === null ? '' : String(value);
      if (![...input.options].some((o) => o.value === cur)) input.append(h('option', { value: cur, text: cur }));
      input.value = cur;
      input.addEventListener('change', () => {
        write(input.value === '' && hint.optional ? undefined : input.value);
        if (hint.changed) hint.changed(this, path, input.value);
      });
    } else if (kind === 'wans') {
      const names = this.wanNames();
      const cur = Array.isArray(value) ? value : [];
      const all = names.concat(cur.filter((n) => !names.includes(n)));
      input = h('select', { ...common, multiple: true, size: Math.min(Math.max(all.length, 2), 6) },
        all.map((n) => h('option', { value: n, text: n, selected: cur.includes(n) })));
      input.addEventListener('change', () => write([...input.selectedOptions].map((o) => o.value)));
    } else if (kind === 'list') {
      input = h('input', { ...common, type: 'text', value: formatList(value), placeholder: hint.placeholder || '', autocomplete: 'off' });
      input.addEventListener('input', () => write(parseList(input.value)));
    } else if (kind === 'int' || kind === 'float' || kind === 'number') {
      input = h('input', {
        ...common, type: 'number', inputmode: kind === 'int' ? 'numeric' : 'decimal',
        step: kind === 'int' ? 1 : 'any', min: hint.min, max: hint.max,
        value: value === undefined || value === null ? '' : String(value), placeholder: hint.placeholder || '',
      });
      input.addEventListener('input', () => {
        const n = parseNumber(input.value);
        write(n === undefined ? (hint.optional ? undefined : null) : Number.isNaN(n) ? input.value : n);
      });
    } else {
      input = h('input', {
        ...common, type: kind === 'password' ? 'password' : 'text', autocomplete: 'off', spellcheck: 'false',
        value: value === undefined || value === null ? '' : String(value), placeholder: hint.placeholder || '',
      });
      input.addEventListener('input', () => write(input.value === '' ? emptyValue() : input.value));
      if (key === 'name' && /^wan_interfaces\[\d+\]\.name$/.test(path)) {
        input.addEventListener('change', () => this.onStructure()); // refresh policy "via" choices
      }
    }
    return h('div', { class: 'field' },
      h('label', { for: id, text: hint.label || labelFor(key) }),
      input,
      hint.help ? h('p', { class: 'help', text: hint.help }) : null,
      h('p', { class: 'field-error', dataset: { errorFor: path }, hidden: true }));
  }
}

/**
 * The write-only PPPoE password: an empty field keeps the current one, a "set" / "not set"
 * badge says whether there is one (`config-password-set-<section path>`, data-set).
 */
ConfigForm.prototype.secretField = function secretField(path, hint, common) {
  const parent = joinPath(parsePath(path).slice(0, -1));
  const original = getPath(this.work, parent) || {};
  const isSet = pppoePasswordSet(original);
  const keptFile = original.password_file;
  const input = h('input', {
    ...common, type: 'password', autocomplete: 'new-password', value: '',
    placeholder: isSet ? 'unchanged' : 'required',
  });
  input.addEventListener('input', () => this.write(parent, pppoeWithPassword(getPath(this.work, parent), input.value, keptFile)));
  const badge = h('span', {
    class: `badge ${isSet ? 'badge-ok' : 'badge-warn'}`, testid: `config-password-set-${parent}`,
    dataset: { set: String(isSet) }, text: isSet ? 'set' : 'not set',
  });
  return h('div', { class: 'field' },
    h('label', { for: common.id }, `${hint.label || 'Password'} `, badge),
    input,
    hint.help ? h('p', { class: 'help', text: hint.help }) : null,
    h('p', { class: 'field-error', dataset: { errorFor: path }, hidden: true }));
};

/** An empty item shaped like `sample` (same keys and value types). */
function blankLike(sample) {
  const out = {};
  for (const [k, v] of Object.entries(sample)) {
    if (typeof v === 'boolean') out[k] = false;
    else if (typeof v === 'number') out[k] = 0;
    else if (Array.isArray(v)) out[k] = [];
    else if (v && typeof v === 'object') out[k] = blankLike(v);
    else out[k] = '';
  }
  return out;
}

// ---------- field errors ----------

/** Show `fields` ([{path, reason}]) next to their inputs (or nearest group) and in a summary. */
export function showFieldErrors(root, summaryEl, fields, message, reveal = null) {
  clearFieldErrors(root, summaryEl);
  if (!fields.length && !message) return;
  const placed = [];
  for (const f of fields) {
    const path = String(f.path || '');
    let target = null;
    for (const p of path ? pathAncestors(path) : []) {
      target = [...root.querySelectorAll('[data-error-for]')].find((e) => e.dataset.errorFor === p);
      if (target) break;
    }
    if (target) {
      target.textContent = target.hidden ? f.reason : `${target.textContent}; ${f.reason}`;
      target.hidden = false;
      const field = target.closest('.field, fieldset, section');
      if (field) field.classList.add('has-error');
      const input = [...root.querySelectorAll('[data-path]')].find((e) => e.dataset.path === target.dataset.errorFor);
      if (input) input.setAttribute('aria-invalid', 'true');
      placed.push({ f, input, target });
    } else {
      placed.push({ f, input: null, target: null });
    }
  }
  const n = fields.length;
  append(summaryEl,
    h('strong', { text: n ? `${n} ${n === 1 ? 'problem' : 'problems'}: nothing was changed.` : 'Not saved.' }),
    message && !n ? h('p', { text: message }) : null,
    n ? h('ul', {}, placed.map(({ f, input, target }) => h('li', { testid: 'config-error-item', dataset: { errorPath: f.path || '' } },
      h('button', {
        type: 'button', class: 'linklike mono', text: f.path || '(file)',
        on: { click: () => { if (reveal) reveal(input || target); focusField(input || target); } },
      }),
      `: ${f.reason}`))) : null);
  summaryEl.hidden = false;
  summaryEl.scrollIntoView({ block: 'start' });
}

function append(parent, ...nodes) {
  for (const n of nodes) if (n) parent.append(n);
}

function focusField(el) {
  if (!el) return;
  const details = el.closest('details');
  if (details) details.open = true;
  el.scrollIntoView({ block: 'center', behavior: 'smooth' });
  if (el.focus) el.focus({ preventScroll: true });
}

export function clearFieldErrors(root, summaryEl) {
  for (const e of root.querySelectorAll('[data-error-for]')) { e.hidden = true; e.textContent = ''; }
  for (const e of root.querySelectorAll('.has-error')) e.classList.remove('has-error');
  for (const e of root.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  if (summaryEl) { clear(summaryEl); summaryEl.hidden = true; }
}

// ---------- pending change: the global banner ----------

let pending = null; // {id, deadline, timer}
// The commit-confirm window in seconds, as the server last said (`confirm_seconds`).
let confirmSeconds = null;

/** Remember the server's commit-confirm window from an answer that carries it. */
function noteWindow(res) {
  const n = Number(res && res.confirm_seconds);
  if (Number.isFinite(n) && n > 0) confirmSeconds = n;
}

/** "after 60 seconds" with the server's window ("in time" before it is known). */
function windowText(prefix) {
  return confirmSeconds ? `${prefix} ${confirmSeconds} seconds` : 'in time';
}

export function clearPending() {
  if (pending) clearInterval(pending.timer);
  pending = null;
  clear(document.getElementById('global-banner'));
}

/** Show "Applied. Rolls back in N s unless you confirm" with a countdown and Confirm. */
export function showPending(p, seconds) {
  if (!p || !p.id) return;
  clearPending();
  noteWindow({ confirm_seconds: seconds });
  // The deadline is the server's clock; fall back to the server's window if ours disagrees.
  const windowMs = (confirmSeconds || 0) * 1000;
  let left = Number(p.rollback_at_ms) - Date.now();
  if (windowMs && (!Number.isFinite(left) || left <= 0 || left > 5 * windowMs)) left = windowMs;
  const deadline = Date.now() + left;
  const slot = document.getElementById('global-banner');
  const count = h('strong', { testid: 'pending-countdown' });
  const confirm = h('button', { type: 'button', class: 'btn btn-primary btn-small', testid: 'config-confirm', text: 'Confirm' });
  const text = h('span', { class: 'banner-text' }, 'Applied. Rolls back in ', count, ' unless you confirm.');
  const banner = h('div', { class: 'banner banner-warn', role: 'alert', testid: 'pending-banner', dataset: { id: String(p.id) } }, text, confirm);
  slot.append(banner);
  const tick = () => {
    const s = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    count.textContent = `${s} s`;
    banner.dataset.seconds = String(s);
    if (s <= 0) {
      clearInterval(pending.timer);
      pending = null;
      clear(text);
      text.append('Not confirmed: the previous configuration has been restored.');
      banner.className = 'banner banner-error';
      banner.dataset.rolledBack = 'true';
      confirm.textContent = 'Dismiss';
      confirm.className = 'btn btn-small';
      confirm.onclick = null;
      confirm.addEventListener('click', () => clearPending());
      window.dispatchEvent(new CustomEvent('config-changed'));
    }
  };
  pending = { id: p.id, timer: setInterval(tick, 250) };
  tick();
  confirm.addEventListener('click', async () => {
    if (!pending) return;
    confirm.disabled = true;
    try {
      await api.post('/config/confirm', { id: p.id });
      clearPending();
      toast('Configuration confirmed: the change stays.', 'success');
      window.dispatchEvent(new CustomEvent('config-changed'));
    } catch {
      confirm.disabled = false;
    }
  });
}

/** After login (admins): show the banner if a change is waiting for confirmation. */
export async function checkPending() {
  try {
    const res = await api.get('/config', { quiet: true });
    if (res && res.pending) showPending(res.pending, res.confirm_seconds);
  } catch { /* not fatal */ }
}

// ---------- the view ----------

const introText = () => `Changes are live as soon as you apply them, and roll back by themselves ${windowText('after')} unless you confirm. A mistake cannot lock you out.`;

export async function mount(main) {
  const intro = h('p', { class: 'muted', testid: 'config-intro', text: introText() });
  const errorsBox = h('div', { class: 'error-summary', role: 'alert', testid: 'config-errors', hidden: true });
  const formBody = h('div', { class: 'cfg-body' });
  const versionTag = h('span', { class: 'chip', testid: 'config-version' });
  const dirtyTag = h('span', { class: 'muted small', testid: 'config-dirty', hidden: true, text: 'Unsaved changes' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'config-save', text: 'Apply' });
  const reset = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'config-reset', text: 'Discard changes' });
  const form = h('form', { class: 'cfg-form', testid: 'config-form', novalidate: true }, formBody,
    h('div', { class: 'savebar' }, dirtyTag, reset, save));

  const toml = h('textarea', { class: 'mono toml', testid: 'config-toml', spellcheck: 'false', rows: 28, 'aria-label': 'routeros.toml' });
  const saveToml = h('button', { type: 'button', class: 'btn btn-primary', testid: 'config-save-toml', text: 'Apply TOML' });
  const tomlPane = h('div', { class: 'card', hidden: true, testid: 'config-pane-toml' },
    h('p', { class: 'muted small', text: 'The configuration file as text. Comments are kept when you apply from here.' }), toml,
    h('div', { class: 'savebar' }, saveToml));

  const historyBody = h('div', {});
  const historyPane = h('div', { class: 'card', hidden: true, testid: 'config-pane-history' }, historyBody);
  const formPane = h('div', { testid: 'config-pane-form' }, form);

  const tabs = {};
  const panes = { form: formPane, toml: tomlPane, history: historyPane };
  const showTab = (name) => {
    for (const [k, pane] of Object.entries(panes)) {
      pane.hidden = k !== name;
      tabs[k].setAttribute('aria-selected', String(k === name));
    }
    if (name === 'history') loadHistory();
  };
  for (const [k, label] of [['form', 'Settings'], ['toml', 'TOML'], ['history', 'History']]) {
    tabs[k] = h('button', { type: 'button', role: 'tab', class: 'tab', testid: `config-tab-${k}`, text: label, on: { click: () => showTab(k) } });
  }

  main.append(h('section', { class: 'page config-page' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Configuration' }), versionTag),
    intro,
    h('div', { class: 'tabs', role: 'tablist' }, Object.values(tabs)),
    errorsBox, formPane, tomlPane, historyPane));

  let original = null;
  let current = null; // ConfigForm
  let version = null;

  const markDirty = () => {
    const dirty = current && JSON.stringify(current.work) !== JSON.stringify(original);
    dirtyTag.hidden = !dirty;
    form.dataset.dirty = String(!!dirty);
  };

  const rerender = () => {
    clear(formBody);
    formBody.append(...current.render());
    markDirty();
  };

  const load = async () => {
    let res;
    try {
      res = await api.get('/config');
    } catch {
      clear(formBody);
      formBody.append(h('p', { class: 'muted', text: 'Could not load the configuration.' }));
      return;
    }
    original = res.config || {};
    version = res.version ?? null;
    versionTag.textContent = version !== null ? `version ${version}` : '';
    versionTag.hidden = version === null;
    current = new ConfigForm(original, rerender);
    toml.value = res.toml || '';
    clearFieldErrors(main, errorsBox);
    rerender();
    noteWindow(res);
    intro.textContent = introText();
    if (res.pending) showPending(res.pending, res.confirm_seconds);
  };

  form.addEventListener('input', markDirty);
  form.addEventListener('change', markDirty);
  reset.addEventListener('click', () => {
    current = new ConfigForm(original, rerender);
    clearFieldErrors(main, errorsBox);
    rerender();
  });

  const submit = async (body, button) => {
    clearFieldErrors(main, errorsBox);
    button.disabled = true;
    try {
      const res = await api.put('/config', body, { quiet: true });
      noteWindow(res);
      if (res && res.pending) showPending(res.pending, res.confirm_seconds);
      toast(`Applied. Confirm ${windowText('within')} to keep it.`, 'success');
      await load();
    } catch (e) {
      if (e instanceof ApiError && (e.status === 400 || e.fields.length)) {
        showFieldErrors(main, errorsBox, e.fields, e.body.message || '');
      } else if (e instanceof ApiError && e.status === 401) {
        /* back to login */
      } else {
        showFieldErrors(main, errorsBox, [], errorText(e));
      }
    } finally {
      button.disabled = false;
    }
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (current) submit({ config: current.work }, save);
  });
  saveToml.addEventListener('click', () => submit({ toml: toml.value }, saveToml));

  async function loadHistory() {
    clear(historyBody);
    historyBody.append(h('p', { class: 'muted', text: 'Loading…' }));
    let res;
    try {
      res = await api.get('/config/history');
    } catch {
      clear(historyBody);
      historyBody.append(h('p', { class: 'muted', text: 'Could not load the history.' }));
      return;
    }
    const versions = (res && res.versions ? res.versions : []).slice().sort((a, b) => (b.version ?? 0) - (a.version ?? 0));
    clear(historyBody);
    if (!versions.length) {
      historyBody.append(h('p', { class: 'muted', text: 'No saved versions yet.' }));
      return;
    }
    historyBody.append(h('table', { class: 'table', testid: 'config-history' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Version' }), h('th', { text: 'Saved' }), h('th', { text: 'By' }), h('th', {}))),
      h('tbody', {}, versions.map((v) => {
        const isCurrent = version !== null && String(v.version) === String(version);
        return h('tr', { testid: 'config-history-row', dataset: { version: String(v.version) } },
          h('td', { class: 'mono' }, String(v.version), isCurrent ? h('span', { class: 'chip chip-small', text: 'current' }) : null),
          h('td', { text: formatTime(v.saved_at_ms, true) }),
          h('td', { text: v.by || '—' }),
          h('td', { class: 'right' }, h('button', {
            type: 'button', class: 'btn btn-small', testid: `config-rollback-${v.version}`, disabled: isCurrent, text: 'Roll back to this',
            on: { click: () => rollback(v.version) },
          })));
      }))));
  }

  async function rollback(v) {
    const ok = await confirmDialog({
      title: `Roll back to version ${v}?`,
      okLabel: 'Roll back',
      body: [`The configuration of version ${v} becomes live at once.`, `Like any change, it rolls back again ${windowText('after')} unless you confirm it.`],
    });
    if (!ok) return;
    try {
      const res = await api.post('/config/rollback', { version: v });
      noteWindow(res);
      if (res && res.pending) showPending(res.pending, res.confirm_seconds);
      toast(`Version ${v} applied. Confirm ${windowText('within')} to keep it.`, 'success');
      await load();
      loadHistory();
    } catch (e) {
      if (e instanceof ApiError && e.fields.length) showFieldErrors(main, errorsBox, e.fields, e.body.message || '');
    }
  }

  const onChanged = () => { load(); if (!historyPane.hidden) loadHistory(); };
  window.addEventListener('config-changed', onChanged);
  showTab('form');
  await load();
  return () => window.removeEventListener('config-changed', onChanged);
}
