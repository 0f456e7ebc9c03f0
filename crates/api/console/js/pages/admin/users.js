// Admin: users. Create, change role and state, reset a password, unlock, delete.

import { api, query } from '../../api.js';
import { h, render, field, guarded, flash, when } from '../../dom.js';
import { pagedTable } from '../../table.js';

export function show(root) {
  const search = h('input', { name: 'search', type: 'search', 'aria-label': 'Search users' });
  const editor = h('section', { class: 'detail', tabindex: -1 });
  const table = pagedTable({
    caption: 'Users',
    columns: [
      ['Username', (u) => u.username],
      ['E-mail', (u) => u.email],
      ['Role', (u) => u.role],
      ['Active', (u) => (u.is_active ? 'yes' : 'no')],
      ['Created', (u) => when(u.created_at)],
      ['', (u) => h('button', { type: 'button', class: 'secondary', onclick: () => edit(u) }, 'Manage')],
    ],
    load: async ({ offset, limit }) => {
      const page = await api(`/admin/users/${query({ offset, limit, search: search.value })}`);
      return { rows: page.users, total: page.total };
    },
  });
  search.addEventListener('change', () => table.refresh());

  function edit(u) {
    const role = h('select', { name: 'role' }, ['user', 'admin'].map((r) => h('option', { value: r }, r)));
    role.value = u.role;
    const active = h('input', { type: 'checkbox', name: 'is_active', checked: u.is_active });
    const password = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password' });
    const done = (message) => { flash(message, 'info'); table.refresh(); };
    render(editor,
      h('h2', {}, `Manage ${u.username}`),
      field('Role', role),
      h('label', {}, active, ' Active'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => guarded(async () => {
          await api(`/admin/users/${u.user_id}`, { method: 'PUT', body: { role: role.value, is_active: active.checked } });
          done(`Updated ${u.username}.`);
        }) }, 'Save'),
        h('button', { type: 'button', class: 'secondary', onclick: () => guarded(async () => {
          const r = await api(`/admin/users/${u.user_id}/unlock`, { method: 'POST' });
          done(r.message || `Unlocked ${u.username}.`);
        }) }, 'Unlock'),
        h('button', { type: 'button', class: 'danger', onclick: () => guarded(async () => {
          if (!window.confirm(`Delete ${u.username} and their data?`)) return;
          await api(`/admin/users/${u.user_id}${query({ cascade: 'true' })}`, { method: 'DELETE' });
          render(editor);
          done(`Deleted ${u.username}.`);
        }) }, 'Delete')),
      h('p', {}, h('a', { href: `#/admin/rate-limits?user=${encodeURIComponent(u.user_id)}` }, `Rate limits of ${u.username}`)),
      field('New password', password),
      h('button', { type: 'button', class: 'secondary', onclick: () => guarded(async () => {
        await api(`/admin/users/${u.user_id}/reset-password`, { method: 'POST', body: { new_password: password.value } });
        password.value = '';
        done(`Password of ${u.username} reset.`);
      }) }, 'Reset password'));
    editor.focus();
  }

  const username = h('input', { name: 'username', required: true });
  const email = h('input', { name: 'email', type: 'email', required: true });
  const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' });
  const role = h('select', { name: 'role' }, ['user', 'admin'].map((r) => h('option', { value: r }, r)));
  const create = h('form', { class: 'card' }, h('h2', {}, 'New user'),
    h('div', { class: 'grid' }, field('Username', username), field('E-mail', email), field('Password', password), field('Role', role)),
    h('button', { type: 'submit' }, 'Create user'));
  create.addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      await api('/admin/users/', { method: 'POST', body: { username: username.value, email: email.value, password: password.value, role: role.value, is_active: true } });
      flash(`Created ${username.value}.`, 'info');
      create.reset();
      table.refresh();
    });
  });
  render(root, search, table.root, editor, create);
}
