// Import the UI's ES modules under node. router/web-ui has no package.json (it is served as
// is), so node would read its .js files as CommonJS; copy them to a temporary folder marked
// "type": "module" and import from there. Works on node 18 and later.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../web-ui');

let dir = null;

export async function load(name) {
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'web-ui-test-'));
    fs.mkdirSync(path.join(dir, 'js'));
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
    for (const f of fs.readdirSync(path.join(UI, 'js'))) {
      fs.copyFileSync(path.join(UI, 'js', f), path.join(dir, 'js', f));
    }
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return import(pathToFileURL(path.join(dir, 'js', name)).href);
}
