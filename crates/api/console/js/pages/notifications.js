// The inbox: notifications page by page, marked read one by one or all at once; new ones arrive
// over the live stream the navigation keeps open.

import { api, query } from '../api.js';
import { h, render, heading, when, guarded } from '../dom.js';
import { pagedTable } from '../table.js';

let current = null;

/** A notification arrived on the live stream: refresh the open inbox. */
export function arrived() {
  if (current && current.isConnected) current.refresh();
}

export function show(main, { setUnread }) {
  const table = pagedTable({
    caption: 'Notifications, newest first',
    columns: [
      ['', (n) => (n.read_at ? '' : h('span', { class: 'dot', title: 'unread', 'aria-label': 'unread' }))],
      ['Subject', (n) => h('strong', {}, n.subject)],
      ['Message', (n) => n.body],
      ['Severity', (n) => n.severity],
      ['When', (n) => when(n.created_at)],
      ['', (n) => (n.read_at ? '' : h('button', { type: 'button', class: 'secondary', onclick: () => markRead(n) }, 'Mark read'))],
    ],
    load: async ({ offset, limit }) => {
      const page = await api(`/notifications${query({ limit, offset })}`);
      setUnread(page.unread_count ?? 0);
      return { rows: page.notifications, total: page.total };
    },
    empty: 'No notifications.',
  });
  const markRead = (n) => guarded(async () => {
    await api(`/notifications/${n.notification_id}/read`, { method: 'PUT' });
    table.refresh();
  });
  const all = h('button', { type: 'button', class: 'secondary', onclick: () => guarded(async () => {
    await api('/notifications/mark-all-read', { method: 'POST' });
    table.refresh();
  }) }, 'Mark all read');
  current = table.root;
  current.refresh = table.refresh;
  render(main, heading('Notifications'), all, table.root);
}
