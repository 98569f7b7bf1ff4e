// Login view. 429 answers show "too many attempts, retry in Ns" with a countdown.

import { api, ApiError, errorText } from './api.js';
import { h } from './util.js';

export function mount(main, ctx) {
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, testid: 'login-username', autofocus: true });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'login-submit', text: 'Log in' });
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'login-error', hidden: true });
  let timer = null;

  const showError = (text) => {
    error.textContent = text;
    error.hidden = false;
  };

  const lockFor = (seconds) => {
    let left = Math.max(1, Math.ceil(seconds));
    submit.disabled = true;
    const tick = () => {
      if (left <= 0) {
        clearInterval(timer);
        timer = null;
        submit.disabled = false;
        error.hidden = true;
        return;
      }
      showError(`Too many attempts, retry in ${left}s.`);
      error.dataset.retry = String(left);
      left -= 1;
    };
    tick();
    clearInterval(timer);
    timer = setInterval(tick, 1000);
  };

  const form = h('form', { class: 'card login-card', testid: 'login-form', novalidate: true },
    h('div', { class: 'login-head' },
      h('img', { src: 'favicon.svg', alt: '', width: 40, height: 40 }),
      h('div', {},
        h('h1', { text: 'Phoenix Nexus Router' }),
        h('p', { class: 'muted', text: 'Log in to manage the router.' }))),
    h('label', { for: 'login-username', text: 'Username' }), user,
    h('label', { for: 'login-password', text: 'Password' }), pass,
    error,
    submit,
    h('p', { class: 'muted small', text: 'First boot: log in as admin with the default password from the manual; the setup wizard then asks for a new one.' }));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    error.hidden = true;
    if (!user.value.trim() || !pass.value) {
      showError('Enter a username and a password.');
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const s = await api.post('/login', { username: user.value.trim(), password: pass.value }, { quiet: true, noRedirect: true });
      pass.value = '';
      ctx.setSession(s);
      ctx.goHome();
      return;
    } catch (e) {
      if (e instanceof ApiError && e.status === 429) {
        submit.textContent = 'Log in';
        lockFor(e.retryAfter || Number(e.body.retry_after) || 60);
        return;
      }
      if (e instanceof ApiError && e.status === 401) showError('Wrong username or password.');
      else showError(errorText(e));
      pass.select();
    }
    submit.disabled = false;
    submit.textContent = 'Log in';
  });

  main.append(h('section', { class: 'login-wrap' }, form));
  user.focus();
  return () => clearInterval(timer);
}
