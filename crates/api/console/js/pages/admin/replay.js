// Admin: replay events (preview first), then follow the session's progress live.

import { api, stream } from '../../api.js';
import { h, render, field, guarded, flash, when } from '../../dom.js';

export function show(root) {
  const aggregate = h('input', { name: 'aggregate_id' });
  const start = h('input', { name: 'start_time', type: 'datetime-local' });
  const end = h('input', { name: 'end_time', type: 'datetime-local' });
  const dryRun = h('input', { name: 'dry_run', type: 'checkbox', checked: true });
  const result = h('section', { class: 'detail', 'aria-live': 'polite' });
  const sessions = h('div', { class: 'scroll' });
  let close = () => {};

  const form = h('form', { class: 'card' },
    h('div', { class: 'grid' }, field('Aggregate id', aggregate), field('From', start), field('To', end)),
    h('label', {}, dryRun, ' Preview only (dry run)'),
    h('button', { type: 'submit' }, 'Replay'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      const body = { dry_run: dryRun.checked };
      if (aggregate.value) body.aggregate_id = aggregate.value;
      if (start.value) body.start_time = new Date(start.value).toISOString();
      if (end.value) body.end_time = new Date(end.value).toISOString();
      const r = await api('/admin/events/replay', { method: 'POST', body });
      const progress = h('p', { 'data-testid': 'replay-progress' }, `${r.total_events} events · ${r.status}`);
      render(result, h('h2', {}, r.dry_run ? 'Preview' : `Session ${r.session_id}`), progress,
        r.events_preview ? h('ul', {}, r.events_preview.map((ev) => h('li', {}, `${when(ev.timestamp)} ${ev.event_type}`))) : null);
      if (!r.dry_run && r.session_id) {
        close();
        close = stream(`/admin/events/replay/${r.session_id}/status`, (name, s) => {
          if (s && typeof s === 'object') progress.textContent = `${s.replayed_events ?? 0} of ${s.total_events ?? r.total_events} · ${s.status}`;
          if (s && ['completed', 'failed', 'cancelled'].includes(s.status)) { close(); loadSessions(); }
        }, () => close());
        flash('Replay started.', 'info');
      }
    });
  });
  const loadSessions = () => guarded(async () => {
    const list = await api('/replay/sessions');
    render(sessions, list.length
      ? h('table', {}, h('caption', {}, 'Replay sessions'),
        h('thead', {}, h('tr', {}, ['Session', 'Status', 'Progress', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((s) => h('tr', {},
          h('td', {}, h('code', {}, s.session_id.slice(0, 8))), h('td', {}, s.status),
          h('td', {}, `${s.replayed_events ?? 0} / ${s.total_events ?? 0}`), h('td', {}, when(s.created_at))))))
      : h('p', { class: 'muted' }, 'No replay sessions.'));
  });
  render(root, form, result, sessions);
  loadSessions();
  return () => close();
}
