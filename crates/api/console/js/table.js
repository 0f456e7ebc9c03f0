// A table over one of the API's paginated lists, with previous/next buttons that follow the
// list's own paging fields (skip/limit/has_more, offset/limit/total, or none).

import { h, render, guarded } from './dom.js';

/**
 * `load(page)` fetches a page (`page.offset`, `page.limit`) and returns `{ rows, total, hasMore }`;
 * `columns` are `[title, row => cell]`.
 */
export function pagedTable({ caption, columns, load, limit = 20, empty = 'Nothing yet.' }) {
  const body = h('tbody', {});
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next');
  const table = h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', { scope: 'col' }, title)))),
    body);
  const root = h('section', { class: 'paged' }, h('div', { class: 'scroll' }, table), h('div', { class: 'pager' }, prev, status, next));
  let offset = 0;

  async function refresh() {
    await guarded(async () => {
      const page = await load({ offset, limit });
      const rows = page.rows || [];
      render(body, rows.length
        ? rows.map((row) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row)))))
        : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty)));
      const shown = rows.length ? `${offset + 1}–${offset + rows.length}` : '0';
      status.textContent = typeof page.total === 'number' ? `${shown} of ${page.total}` : shown;
      prev.disabled = offset === 0;
      const more = page.hasMore ?? (typeof page.total === 'number' ? offset + rows.length < page.total : rows.length === limit);
      next.disabled = !more;
    });
  }
  prev.addEventListener('click', () => { offset = Math.max(0, offset - limit); refresh(); });
  next.addEventListener('click', () => { offset += limit; refresh(); });
  refresh();
  return { root, refresh };
}
