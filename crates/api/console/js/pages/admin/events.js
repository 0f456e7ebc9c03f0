// Admin: browse events with filters, see one in full, export the matching ones.

import { api, query } from '../../api.js';
import { h, render, field, when, guarded } from '../../dom.js';
import { pagedTable } from '../../table.js';

export function show(root) {
  const types = h('input', { name: 'event_types', placeholder: 'e.g. execution_completed, user_logged_in' });
  const aggregate = h('input', { name: 'aggregate_id' });
  const user = h('input', { name: 'user_id' });
  const text = h('input', { name: 'search_text', type: 'search' });
  const detail = h('section', { class: 'detail', tabindex: -1 });
  const exportLinks = h('p', { class: 'actions' });

  const filters = () => {
    const f = {};
    const list = types.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (list.length) f.event_types = list;
    if (aggregate.value) f.aggregate_id = aggregate.value;
    if (user.value) f.user_id = user.value;
    if (text.value) f.search_text = text.value;
    return f;
  };
  const drawExport = () => {
    const f = filters();
    const q = query({ event_types: (f.event_types || []).join(','), aggregate_id: f.aggregate_id, user_id: f.user_id, search_text: f.search_text });
    render(exportLinks, 'Export: ',
      h('a', { href: `/api/v1/admin/events/export/csv${q}`, download: 'events.csv' }, 'CSV'), ' ',
      h('a', { href: `/api/v1/admin/events/export/json${q}`, download: 'events.json' }, 'JSON'));
  };
  const open = (e) => guarded(async () => {
    const full = await api(`/admin/events/${e.event_id}`);
    render(detail, h('h2', {}, `${e.event_type} ${e.event_id}`), h('pre', { class: 'out' }, JSON.stringify(full, null, 2)));
    detail.focus();
  });
  const table = pagedTable({
    caption: 'Events, newest first',
    columns: [
      ['When', (e) => when(e.timestamp)],
      ['Type', (e) => e.event_type],
      ['Aggregate', (e) => h('code', {}, (e.aggregate_id || '').slice(0, 8))],
      ['User', (e) => h('code', {}, ((e.metadata && e.metadata.user_id) || '').slice(0, 8))],
      ['', (e) => h('button', { type: 'button', class: 'secondary', onclick: () => open(e) }, 'View')],
    ],
    load: async ({ offset, limit }) => {
      const page = await api('/admin/events/browse', { method: 'POST', body: { filters: filters(), skip: offset, limit } });
      return { rows: page.events, total: page.total };
    },
  });
  const form = h('form', { class: 'card' },
    h('div', { class: 'grid' }, field('Event types', types), field('Aggregate id', aggregate), field('User id', user), field('Text', text)),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); drawExport(); table.refresh(); });
  drawExport();
  render(root, form, exportLinks, table.root, detail);
}
