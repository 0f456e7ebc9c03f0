// Admin: the default rate-limit rules, and one user's override (multiplier, bypass) and usage.

import { api } from '../../api.js';
import { h, render, field, guarded, flash } from '../../dom.js';

export function show(root, { params }) {
  const defaults = h('div', { class: 'scroll' });
  const userId = h('input', { name: 'user_id', placeholder: 'user id (see Users)' });
  const user = h('section', { class: 'detail', tabindex: -1 });
  const lookup = h('form', { class: 'card' }, h('h2', {}, 'A user’s limits'), field('User id', userId), h('button', { type: 'submit' }, 'Show'));

  async function showUser(id) {
    const r = await api(`/admin/rate-limits/${encodeURIComponent(id)}`);
    const config = r.rate_limit_config || { bypass_rate_limit: false, global_multiplier: 1, rules: [] };
    const multiplier = h('input', { name: 'global_multiplier', type: 'number', step: '0.1', min: '0', value: config.global_multiplier });
    const bypass = h('input', { name: 'bypass_rate_limit', type: 'checkbox', checked: config.bypass_rate_limit });
    render(user,
      h('h3', {}, `Limits of ${id}`),
      field('Multiplier', multiplier),
      h('label', {}, bypass, ' No rate limits'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => guarded(async () => {
          await api(`/admin/rate-limits/${encodeURIComponent(id)}`, { method: 'PUT', body: { global_multiplier: Number(multiplier.value), bypass_rate_limit: bypass.checked, rules: config.rules } });
          flash('Override saved.', 'info');
          await showUser(id);
        }) }, 'Save override'),
        h('button', { type: 'button', class: 'secondary', onclick: () => guarded(async () => {
          await api(`/admin/rate-limits/${encodeURIComponent(id)}/reset`, { method: 'POST' });
          flash('Counters reset.', 'info');
          await showUser(id);
        }) }, 'Reset counters')),
      h('h4', {}, 'Current usage'),
      h('pre', { class: 'out' }, JSON.stringify(r.current_usage, null, 2)));
  }
  lookup.addEventListener('submit', (e) => { e.preventDefault(); guarded(() => showUser(userId.value.trim())); });
  render(root, h('h2', {}, 'Default rules'), defaults, lookup, user);
  const wanted = params.get('user');
  if (wanted) {
    userId.value = wanted;
    guarded(() => showUser(wanted));
  }
  guarded(async () => {
    const rules = await api('/admin/rate-limits/defaults');
    render(defaults, h('table', {},
      h('caption', {}, 'Rules, first match wins by priority'),
      h('thead', {}, h('tr', {}, ['Pattern', 'Group', 'Requests', 'Window (s)', 'Algorithm', 'Burst'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rules.map((r) => h('tr', {},
        h('td', {}, h('code', {}, r.endpoint_pattern)), h('td', {}, r.group), h('td', {}, r.requests),
        h('td', {}, r.window_seconds), h('td', {}, r.algorithm), h('td', {}, r.burst_multiplier))))));
  });
}
