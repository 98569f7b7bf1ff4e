// Guards for what the server's Content-Security-Policy (default-src 'self') and the
// offline appliance require: nothing inline, nothing from the internet, no eval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { UI } from './load.mjs';

function files(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}
const all = files(UI);
const own = all.filter((f) => !f.includes(`${path.sep}vendor${path.sep}`));
const read = (f) => fs.readFileSync(f, 'utf8');
const html = read(path.join(UI, 'index.html'));

test('index.html: no inline script, style or event handler', () => {
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    assert.match(m[1], /\bsrc=/, 'every <script> has a src');
    assert.equal(m[2].trim(), '', 'no inline script body');
  }
  assert.doesNotMatch(html, /<style\b/i);
  assert.doesNotMatch(html, /\sstyle\s*=/i);
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i);
  assert.doesNotMatch(html, /javascript:/i);
});

test('nothing is loaded from another origin', () => {
  const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]+)"/g)].map((m) => m[1]);
  assert.ok(refs.length > 3);
  for (const r of refs) assert.doesNotMatch(r, /^(https?:)?\/\//, r);
  for (const f of own.filter((x) => /\.(js|css)$/.test(x))) {
    const text = read(f);
    assert.doesNotMatch(text, /@import\s+url\(\s*["']?(https?:)?\/\//, f);
    assert.doesNotMatch(text, /url\(\s*["']?(https?:)?\/\//, f);
    assert.doesNotMatch(text, /\bimport\s*\(?\s*["'](https?:)?\/\//, f);
    assert.doesNotMatch(text, /fetch\(\s*["'`]https?:/, f);
  }
});

test('every file index.html references exists', () => {
  for (const m of html.matchAll(/\b(?:src|href)\s*=\s*"([^"#]+)"/g)) {
    assert.ok(fs.existsSync(path.join(UI, m[1])), m[1]);
  }
  for (const f of own.filter((x) => x.endsWith('.js'))) {
    for (const m of read(f).matchAll(/from\s+'(\.\/[^']+)'/g)) {
      assert.ok(fs.existsSync(path.join(path.dirname(f), m[1])), `${f}: ${m[1]}`);
    }
  }
});

test('no eval, no HTML injection, no inline style attributes from JS', () => {
  for (const f of own.filter((x) => x.endsWith('.js'))) {
    const text = read(f);
    assert.doesNotMatch(text, /\beval\s*\(/, f);
    assert.doesNotMatch(text, /new\s+Function\s*\(/, f);
    assert.doesNotMatch(text, /\.innerHTML\s*=|insertAdjacentHTML|outerHTML\s*=/, f);
    assert.doesNotMatch(text, /setAttribute\(\s*['"](style|on[a-z]+)['"]/, f);
    assert.doesNotMatch(text, /setTimeout\(\s*['"`]/, f);
  }
});

test('data-testid values in index.html are unique', () => {
  const ids = [...html.matchAll(/data-testid="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length);
});

test('uPlot is vendored with its license and version', () => {
  for (const f of ['uPlot.iife.min.js', 'uPlot.min.css', 'LICENSE', 'README.md']) {
    assert.ok(fs.existsSync(path.join(UI, 'vendor', f)), f);
  }
  const head = read(path.join(UI, 'vendor', 'uPlot.iife.min.js')).slice(0, 120);
  const version = /\(v(\d+\.\d+\.\d+)\)/.exec(head)[1];
  assert.match(read(path.join(UI, 'vendor', 'README.md')), new RegExp(version.replace(/\./g, '\\.')));
});
