// Admin: every execution and the queue, with priorities and cancel.

import { api, query } from '../../api.js';
import { h, render, guarded, flash, when } from '../../dom.js';
import { pagedTable } from '../../table.js';

const PRIORITIES = ['critical', 'high', 'normal', 'low', 'background'];
const ACTIVE = new Set(['queued', 'scheduled', 'running']);

export function show(root) {
  const queue = h('dl', { class: 'facts', 'aria-live': 'polite' });
  const status = h('select', { name: 'status', 'aria-label': 'Status' },
    h('option', { value: '' }, 'any status'),
    ['queued', 'scheduled', 'running', 'completed', 'failed', 'timeout', 'cancelled', 'error'].map((s) => h('option', { value: s }, s)));
  const loadQueue = () => guarded(async () => {
    const q = await api('/admin/executions/queue');
    render(queue,
      [['Waiting', q.queue_depth], ['Running', q.active_count], ['Slots', q.max_concurrent]]
        .map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]),
      Object.entries(q.by_priority || {}).map(([k, v]) => [h('dt', {}, `waiting ${k}`), h('dd', {}, String(v))]));
  });
  const setPriority = (e, priority) => guarded(async () => {
    await api(`/admin/executions/${e.execution_id}/priority`, { method: 'PUT', body: { priority } });
    flash(`Priority of ${e.execution_id} is ${priority}.`, 'info');
    table.refresh();
  });
  const cancel = (e) => guarded(async () => {
    await api(`/executions/${e.execution_id}/cancel`, { method: 'POST', body: { reason: 'cancelled by an administrator' } });
    flash(`Cancelling ${e.execution_id}.`, 'info');
    table.refresh();
    loadQueue();
  });
  const table = pagedTable({
    caption: 'Executions, newest first',
    columns: [
      ['Id', (e) => h('code', {}, e.execution_id.slice(0, 8))],
      ['Language', (e) => `${e.lang} ${e.lang_version}`],
      ['Status', (e) => h('span', { class: `pill ${e.status}` }, e.status)],
      ['Priority', (e) => {
        const select = h('select', { 'aria-label': `Priority of ${e.execution_id}` }, PRIORITIES.map((p) => h('option', { value: p }, p)));
        select.value = e.priority;
        select.disabled = e.status !== 'queued';
        select.addEventListener('change', () => setPriority(e, select.value));
        return select;
      }],
      ['Exit', (e) => e.exit_code ?? '–'],
      ['Created', (e) => when(e.created_at)],
      ['', (e) => (ACTIVE.has(e.status) ? h('button', { type: 'button', class: 'danger', onclick: () => cancel(e) }, 'Cancel') : '')],
    ],
    load: async ({ offset, limit }) => {
      const page = await api(`/admin/executions/${query({ skip: offset, limit, status: status.value })}`);
      return { rows: page.executions, total: page.total, hasMore: page.has_more };
    },
  });
  status.addEventListener('change', () => table.refresh());
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => { loadQueue(); table.refresh(); } }, 'Refresh');
  render(root, h('h2', {}, 'Queue'), queue, h('div', { class: 'toolbar' }, status, refresh), table.root);
  loadQueue();
}
