// The user's settings (theme and editor) and the history of their changes, with restore.

import { api } from '../api.js';
import { h, render, field, heading, guarded, flash, when } from '../dom.js';

const THEMES = ['auto', 'light', 'dark'];

export function show(main, { session, applyTheme }) {
  const theme = h('select', { name: 'theme' }, THEMES.map((t) => h('option', { value: t }, t)));
  const fontSize = h('input', { name: 'font_size', type: 'number', min: 8, max: 32 });
  const tabSize = h('input', { name: 'tab_size', type: 'number', min: 1, max: 8 });
  const useTabs = h('input', { name: 'use_tabs', type: 'checkbox' });
  const wordWrap = h('input', { name: 'word_wrap', type: 'checkbox' });
  const lineNumbers = h('input', { name: 'show_line_numbers', type: 'checkbox' });
  const history = h('div', { class: 'scroll' });
  // Disabled until the stored settings are in, so nothing typed before is overwritten.
  const controls = h('fieldset', { disabled: true },
    h('legend', { class: 'muted' }, 'Your settings'),
    h('h2', {}, 'Appearance'),
    field('Theme', theme),
    h('h2', {}, 'Editor'),
    h('div', { class: 'grid' }, field('Font size (px)', fontSize), field('Tab size', tabSize)),
    h('div', { class: 'checks' },
      h('label', {}, useTabs, ' Indent with tabs'),
      h('label', {}, wordWrap, ' Wrap long lines'),
      h('label', {}, lineNumbers, ' Line numbers')),
    h('button', { type: 'submit' }, 'Save settings'));
  const form = h('form', { class: 'card' }, controls);

  function fill(s) {
    session.settings = s;
    theme.value = s.theme;
    fontSize.value = s.editor.font_size;
    tabSize.value = s.editor.tab_size;
    useTabs.checked = s.editor.use_tabs;
    wordWrap.checked = s.editor.word_wrap;
    lineNumbers.checked = s.editor.show_line_numbers;
    applyTheme(s.theme);
    controls.disabled = false;
  }

  async function loadHistory() {
    const { history: entries } = await api('/user/settings/history');
    render(history, entries.length
      ? h('table', {},
        h('caption', {}, 'Changes, newest first'),
        h('thead', {}, h('tr', {}, ['When', 'Setting', 'From', 'To', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, entries.map((e) => h('tr', {},
          h('td', {}, when(e.timestamp)), h('td', {}, e.field),
          h('td', {}, h('code', {}, JSON.stringify(e.old_value))), h('td', {}, h('code', {}, JSON.stringify(e.new_value))),
          h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => restore(e.timestamp) }, 'Restore to here'))))))
      : h('p', { class: 'muted' }, 'No changes yet.'));
  }

  const restore = (timestamp) => guarded(async () => {
    fill(await api('/user/settings/restore', { method: 'POST', body: { timestamp, reason: 'restored from the console' } }));
    flash('Settings restored.', 'info');
    await loadHistory();
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      fill(await api('/user/settings/', {
        method: 'PUT',
        body: {
          theme: theme.value,
          editor: {
            font_size: Number(fontSize.value), tab_size: Number(tabSize.value), use_tabs: useTabs.checked,
            word_wrap: wordWrap.checked, show_line_numbers: lineNumbers.checked,
          },
        },
      }));
      flash('Settings saved.', 'info');
      await loadHistory();
    });
  });

  render(main, heading('Settings'), form, h('h2', {}, 'History'), history);
  guarded(async () => {
    fill(await api('/user/settings/'));
    await loadHistory();
  });
}
