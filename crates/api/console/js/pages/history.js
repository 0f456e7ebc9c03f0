// The signed-in user's executions with their results, page by page.

import { api, query } from '../api.js';
import { h, render, heading, seconds, guarded } from '../dom.js';
import { pagedTable } from '../table.js';

export function show(main) {
  const detail = h('section', { class: 'detail', 'aria-live': 'polite' });
  const view = (row) => guarded(async () => {
    const result = await api(`/executions/${row.execution_id}/result`);
    render(detail,
      h('h2', {}, `Execution ${row.execution_id}`),
      h('p', {}, `${result.lang} ${result.lang_version} · ${result.status} · exit ${result.exit_code ?? '–'}`),
      h('h3', {}, 'Output'), h('pre', { class: 'out' }, result.stdout || ''),
      h('h3', {}, 'Errors'), h('pre', { class: 'out err' }, result.stderr || ''));
    detail.focus();
  });
  const table = pagedTable({
    caption: 'Your executions, newest first',
    columns: [
      ['Language', (r) => `${r.lang} ${r.lang_version}`],
      ['Status', (r) => h('span', { class: `pill ${r.status}` }, r.status)],
      ['Exit', (r) => r.exit_code ?? '–'],
      ['Time', (r) => seconds(r.resource_usage && r.resource_usage.execution_time_wall_seconds)],
      ['Output', (r) => h('code', { class: 'clip' }, (r.stdout || r.stderr || '').slice(0, 80))],
      ['', (r) => h('button', { type: 'button', class: 'secondary', onclick: () => view(r) }, 'Details')],
    ],
    load: async ({ offset, limit }) => {
      const page = await api(`/user/executions${query({ limit, skip: offset })}`);
      return { rows: page.executions, total: page.total, hasMore: page.has_more };
    },
    empty: 'No executions yet: run something.',
  });
  detail.tabIndex = -1;
  render(main, heading('History'), table.root, detail);
}
