// Confirmation dialog (<dialog> in index.html), the one-time API key dialog, and toasts.

import { h, clear } from './util.js';

/**
 * Ask before doing something. `body` is text, a node, an array of them, or an async function
 * returning one of those (the OK button waits for it; e.g. the impact of disabling a WAN).
 * Resolves true when confirmed, false when cancelled (Cancel, Esc).
 */
export function confirmDialog({ title, body, okLabel = 'OK', danger = false }) {
  const dlg = document.getElementById('confirm-dialog');
  const bodyEl = document.getElementById('confirm-body');
  const ok = document.getElementById('confirm-ok');
  document.getElementById('confirm-title').textContent = title;
  ok.textContent = okLabel;
  ok.classList.toggle('btn-danger', danger);
  ok.classList.toggle('btn-primary', !danger);
  clear(bodyEl);

  const fill = (content) => {
    clear(bodyEl);
    for (const c of [].concat(content)) {
      if (c === null || c === undefined) continue;
      bodyEl.append(typeof c === 'string' ? h('p', { text: c }) : c);
    }
  };

  if (typeof body === 'function') {
    ok.disabled = true;
    bodyEl.dataset.loading = 'true';
    fill(h('p', { class: 'muted', text: 'Checking what this affects…' }));
    Promise.resolve()
      .then(body)
      .then(fill, () => fill(h('p', { text: 'Could not read the current figures; the action may still be carried out.' })))
      .finally(() => {
        ok.disabled = false;
        delete bodyEl.dataset.loading;
      });
  } else {
    ok.disabled = false;
    fill(body);
  }

  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    (document.getElementById('confirm-cancel')).focus();
  });
}

/** Show a freshly created API key once, with a copy button. Resolves when closed. */
export function showKeyDialog(key) {
  const dlg = document.getElementById('key-dialog');
  const input = document.getElementById('key-value');
  const copied = document.getElementById('key-copied');
  const copy = document.getElementById('key-copy');
  input.value = key;
  copied.hidden = true;
  const onCopy = async () => {
    let done = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(key);
        done = true;
      }
    } catch { /* fall back below */ }
    if (!done) {
      // Plain http on a LAN address is not a secure context: use the selection instead.
      input.focus();
      input.select();
      try { done = document.execCommand('copy'); } catch { done = false; }
    }
    copied.textContent = done ? 'Copied to the clipboard.' : 'Select the key and copy it by hand (Ctrl+C).';
    copied.hidden = false;
  };
  copy.addEventListener('click', onCopy);
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      copy.removeEventListener('click', onCopy);
      input.value = '';
      resolve();
    }, { once: true });
    dlg.showModal();
    input.focus();
    input.select();
  });
}

/** A short message at the bottom of the screen. kind: info | success | error. */
export function toast(message, kind = 'info', ms = kind === 'error' ? 8000 : 5000) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', text: '×' });
  const el = h('div', { class: `toast toast-${kind}`, testid: 'toast', dataset: { kind } },
    h('span', { class: 'toast-text', text: message }), close);
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(remove, ms);
}
