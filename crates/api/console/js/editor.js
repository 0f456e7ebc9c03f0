// The code editor: a plain textarea (so typing, selection, undo and screen readers work as
// usual) over a highlighted copy of its text. Tab indents; Escape then Tab leaves the editor.

import { h } from './dom.js';
import { highlight, highlightLines } from './highlight.js';

export function createEditor({ label, value = '', lang = 'python', tabSize = 4, useTabs = false, fontSize = 14, wrap = true, lineNumbers = true } = {}) {
  const code = h('code', {});
  const pre = h('pre', { class: 'editor-view', 'aria-hidden': 'true' }, code);
  const area = h('textarea', {
    class: 'editor-input', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off',
    'aria-label': label, 'aria-describedby': 'editor-help', wrap: wrap ? 'soft' : 'off',
  });
  const root = h('div', { class: `editor${wrap ? ' wrap' : ''}${lineNumbers ? ' numbered' : ''}` }, pre, area);
  root.style.setProperty('--editor-font-size', `${fontSize}px`);
  root.style.setProperty('--editor-tab-size', String(tabSize));
  let current = lang;
  let escaped = false;

  const paint = () => {
    // A trailing newline needs a character after it to take up a line in the <pre>.
    if (lineNumbers) code.replaceChildren(...highlightLines(area.value, current));
    else code.replaceChildren(...highlight(area.value, current), document.createTextNode('\n'));
  };
  const sync = () => { pre.scrollTop = area.scrollTop; pre.scrollLeft = area.scrollLeft; };
  area.addEventListener('input', paint);
  area.addEventListener('scroll', sync);
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { escaped = true; return; }
    if (e.key === 'Tab' && !escaped && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      const indent = useTabs ? '\t' : ' '.repeat(tabSize);
      if (e.shiftKey) return;
      area.setRangeText(indent, area.selectionStart, area.selectionEnd, 'end');
      paint();
      return;
    }
    escaped = false;
  });
  area.value = value;
  paint();

  return {
    root,
    input: area,
    get value() { return area.value; },
    set value(v) { area.value = v; paint(); sync(); },
    setLanguage(l) { current = l; paint(); },
  };
}
