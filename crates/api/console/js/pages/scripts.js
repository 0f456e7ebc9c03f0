// Saved scripts: list, open in the editor (to run or update), rename and delete. New scripts are
// saved from the editor page.

import { api } from '../api.js';
import { h, render, heading, when, guarded, flash } from '../dom.js';

export function show(main) {
  const list = h('div', { class: 'scroll' });
  async function refresh() {
    await guarded(async () => {
      const { scripts } = await api('/scripts');
      if (!scripts.length) {
        render(list, h('p', { class: 'muted' }, 'No saved scripts. Write one in the editor and press “Save script”.'));
        return;
      }
      render(list, h('table', {},
        h('caption', {}, 'Your saved scripts'),
        h('thead', {}, h('tr', {}, ['Name', 'Language', 'Updated', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, scripts.map((s) => h('tr', { 'data-script': s.name },
          h('td', {}, s.name),
          h('td', {}, `${s.lang} ${s.lang_version}`),
          h('td', {}, when(s.updated_at)),
          h('td', { class: 'actions' },
            h('a', { class: 'button', href: `#/run?script=${encodeURIComponent(s.script_id)}` }, 'Open'),
            h('button', { type: 'button', class: 'secondary', onclick: () => rename(s) }, 'Rename'),
            h('button', { type: 'button', class: 'danger', onclick: () => remove(s) }, 'Delete')))))));
    });
  }
  function rename(script) {
    const input = h('input', { name: 'new_name', value: script.name, 'aria-label': `New name of ${script.name}` });
    const row = list.querySelector(`tr[data-script="${CSS.escape(script.name)}"] td`);
    const form = h('form', { class: 'inline' }, input, h('button', { type: 'submit' }, 'Save'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      guarded(async () => {
        await api(`/scripts/${script.script_id}`, { method: 'PUT', body: { name: input.value } });
        flash(`Renamed to “${input.value}”.`, 'info');
        refresh();
      });
    });
    if (row) { render(row, form); input.focus(); }
  }
  function remove(script) {
    guarded(async () => {
      if (!window.confirm(`Delete “${script.name}”?`)) return;
      await api(`/scripts/${script.script_id}`, { method: 'DELETE' });
      flash(`Deleted “${script.name}”.`, 'info');
      refresh();
    });
  }
  render(main, heading('Saved scripts'), h('p', {}, h('a', { href: '#/run' }, 'New script in the editor')), list);
  refresh();
}
