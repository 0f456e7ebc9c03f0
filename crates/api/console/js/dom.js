// Small helpers for building the page without a framework: elements, messages, formatting.

/**
 * Creates an element. `attrs` keys starting with `on` add listeners; `class`, `for` and other
 * keys become attributes (`true` sets an empty one, `false`/null leaves it out).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value') {
      el.value = value;
    } else if (key === 'checked') {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the content of `el`. */
export function render(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let flashTimer;
/** Shows a message at the top of the page (errors stay until the next message). */
export function flash(message, kind = 'error') {
  const box = document.getElementById('flash');
  clearTimeout(flashTimer);
  render(box, message ? h('p', { class: `flash ${kind}` }, message) : null);
  if (message && kind !== 'error') flashTimer = setTimeout(() => render(box), 4000);
}

/** Runs `fn`, showing an error's message instead of failing silently. */
export async function guarded(fn) {
  try {
    return await fn();
  } catch (e) {
    if (e && e.status !== 401) flash(e.message || String(e));
    return undefined;
  }
}

/** A labelled form field; `input` is the control. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function seconds(value) {
  return typeof value === 'number' ? `${value.toFixed(3)} s` : '–';
}

/** The page title (the heading screen readers land on) and document title. */
export function heading(text) {
  document.title = `${text} · integr8s`;
  return h('h1', {}, text);
}
