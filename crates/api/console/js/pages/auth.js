// Sign in and register.

import { api } from '../api.js';
import { h, render, field, flash, heading } from '../dom.js';

export function showLogin(main, { signedIn }) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow' },
    heading('Sign in'),
    field('Username', username),
    field('Password', password),
    button,
    h('p', {}, 'No account? ', h('a', { href: '#/register' }, 'Register')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    try {
      await api('/auth/login', { method: 'POST', form: { username: username.value, password: password.value } });
      flash('');
      await signedIn(await api('/auth/me'));
    } catch (err) {
      flash(err.message);
    } finally {
      button.disabled = false;
    }
  });
  render(main, form);
  username.focus();
}

export function showRegister(main, { signedIn }) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
  const button = h('button', { type: 'submit' }, 'Create account');
  const form = h('form', { class: 'card narrow' },
    heading('Register'),
    field('Username', username),
    field('E-mail', email),
    field('Password', password),
    button,
    h('p', {}, 'Have an account? ', h('a', { href: '#/login' }, 'Sign in')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    try {
      await api('/auth/register', { method: 'POST', body: { username: username.value, email: email.value, password: password.value } });
      await api('/auth/login', { method: 'POST', form: { username: username.value, password: password.value } });
      flash('Account created.', 'info');
      await signedIn(await api('/auth/me'));
    } catch (err) {
      flash(err.message);
    } finally {
      button.disabled = false;
    }
  });
  render(main, form);
  username.focus();
}
