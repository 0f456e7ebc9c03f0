// Admin: the dead-letter queue. Inspect a message, retry it or discard it.

import { api, query } from '../../api.js';
import { h, render, when, guarded, flash } from '../../dom.js';
import { pagedTable } from '../../table.js';

export function show(root) {
  const stats = h('p', { class: 'muted', 'aria-live': 'polite' });
  const detail = h('section', { class: 'detail', tabindex: -1 });
  const act = (m, action) => guarded(async () => {
    const body = action === 'discard' ? { reason: 'discarded from the console' } : undefined;
    await api(`/dlq/messages/${m.message_id}/${action}`, { method: 'POST', body });
    flash(`${action === 'retry' ? 'Retrying' : 'Discarded'} ${m.message_id}.`, 'info');
    table.refresh();
    loadStats();
  });
  const inspect = (m) => guarded(async () => {
    const full = await api(`/dlq/messages/${m.message_id}`);
    render(detail, h('h2', {}, `Message ${m.message_id}`), h('pre', { class: 'out' }, JSON.stringify(full, null, 2)));
    detail.focus();
  });
  const loadStats = () => guarded(async () => {
    const s = await api('/dlq/stats');
    stats.textContent = `By status: ${JSON.stringify(s.by_status || s)}`;
  });
  const table = pagedTable({
    caption: 'Dead letters',
    columns: [
      ['Failed', (m) => when(m.failed_at)],
      ['Event', (m) => m.event_type],
      ['Group', (m) => m.group],
      ['Error', (m) => m.error],
      ['Attempts', (m) => m.retry_count],
      ['Status', (m) => m.status],
      ['', (m) => h('span', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => inspect(m) }, 'Inspect'),
        h('button', { type: 'button', class: 'secondary', onclick: () => act(m, 'retry') }, 'Retry'),
        h('button', { type: 'button', class: 'danger', onclick: () => act(m, 'discard') }, 'Discard'))],
    ],
    load: async ({ offset, limit }) => {
      const page = await api(`/dlq/messages${query({ offset, limit })}`);
      return { rows: page.messages, total: page.total };
    },
    empty: 'The dead-letter queue is empty.',
  });
  render(root, stats, table.root, detail);
  loadStats();
}
