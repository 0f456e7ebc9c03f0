// Admin: system settings (every value the API reports, edited in place), reset and audit log.

import { api } from '../../api.js';
import { h, render, field, guarded, flash, when } from '../../dom.js';

/** The values an audit entry changed, as `key: old → new`. */
function changes(entry) {
  const before = entry.old_values || {};
  const after = entry.new_values || {};
  const changed = Object.keys(after).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  return changed.length ? changed.map((k) => `${k}: ${JSON.stringify(before[k])} → ${JSON.stringify(after[k])}`).join(', ') : 'no value changed';
}

export function show(root) {
  const form = h('form', { class: 'card' });
  const audit = h('div', { class: 'scroll' });
  let current = {};

  function fill(settings) {
    current = settings;
    const inputs = Object.entries(settings).map(([key, value]) => {
      const input = typeof value === 'boolean'
        ? h('input', { name: key, type: 'checkbox', checked: value })
        : h('input', { name: key, type: typeof value === 'number' ? 'number' : 'text', step: 'any', value });
      return typeof value === 'boolean' ? h('label', {}, input, ` ${key}`) : field(key, input);
    });
    render(form, h('div', { class: 'grid' }, inputs),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'),
        h('button', { type: 'button', class: 'danger', onclick: reset }, 'Reset to the configuration')));
  }
  const reset = () => guarded(async () => {
    fill(await api('/admin/settings/reset', { method: 'POST' }));
    flash('Settings reset.', 'info');
    loadAudit();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const body = {};
      for (const [key, value] of Object.entries(current)) {
        const input = form.elements.namedItem(key);
        if (!input) continue;
        body[key] = typeof value === 'boolean' ? input.checked : typeof value === 'number' ? Number(input.value) : input.value;
      }
      fill(await api('/admin/settings/', { method: 'PUT', body }));
      flash('Settings saved.', 'info');
      loadAudit();
    });
  });
  const loadAudit = () => guarded(async () => {
    const log = await api('/admin/settings/audit');
    const entries = Array.isArray(log) ? log : log.entries || log.audit || [];
    render(audit, entries.length
      ? h('ul', {}, entries.map((e) => h('li', {}, `${when(e.timestamp)} · ${e.username || e.user_id || ''} · ${(e.action || '').replace(/_/g, ' ')} · ${changes(e)}`)))
      : h('p', { class: 'muted' }, 'No changes recorded.'));
  });
  render(root, form, h('h2', {}, 'Audit log'), audit);
  guarded(async () => { fill(await api('/admin/settings/')); });
  loadAudit();
}
