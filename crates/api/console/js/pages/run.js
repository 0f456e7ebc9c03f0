// The editor page: pick a language, write or load a script, run it with optional standard input
// and limits, and watch its status and output arrive over the execution's event stream.

import { api, stream } from '../api.js';
import { h, render, field, flash, guarded, heading, seconds } from '../dom.js';
import { createEditor } from '../editor.js';

const TERMINAL_EVENTS = new Set(['result_stored', 'result_failed', 'execution_cancelled']);
const LIMITS = [
  ['timeout_seconds', 'Timeout (s)'],
  ['memory_mb', 'Memory (MiB)'],
  ['cpu_time_seconds', 'CPU time (s)'],
  ['max_output_bytes', 'Output cap (bytes)'],
  ['max_processes', 'Processes'],
];

let runtimes = null;
let examples = null;

async function loadRuntimes() {
  if (!runtimes) {
    const [limits, ex] = await Promise.all([api('/k8s-limits'), api('/example-scripts')]);
    runtimes = limits;
    examples = ex.scripts || {};
  }
  return runtimes;
}

const SETTLED = new Set(['completed', 'failed', 'timeout', 'cancelled', 'error']);
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * The stored result of an ended execution. Its end event can arrive a moment before the result
 * is stored, so an unsettled answer is asked again a few times.
 */
async function settledResult(id) {
  let result = await api(`/executions/${id}/result`);
  for (let attempt = 0; attempt < 20 && !SETTLED.has(result.status); attempt += 1) {
    await sleep(250);
    result = await api(`/executions/${id}/result`);
  }
  return result;
}

/** Whether the result says the output was cut at the output cap. */
function truncated(result) {
  if (result.metadata && result.metadata.output_truncated !== undefined) return Boolean(result.metadata.output_truncated);
  // The server ends cut output with a marker line.
  return result.error_type === 'resource_limit' && /\[output truncated: /.test(`${result.stdout || ''}${result.stderr || ''}`);
}

function resultFacts(result, state) {
  const usage = result.resource_usage || {};
  const cpu = typeof usage.cpu_time_jiffies === 'number' && usage.clk_tck_hertz
    ? seconds(usage.cpu_time_jiffies / usage.clk_tck_hertz) : '–';
  const facts = [
    ['Status', state],
    ['Exit code', result.exit_code ?? '–'],
    ['Time', seconds(usage.execution_time_wall_seconds)],
    ['CPU', cpu],
    ['Peak memory', typeof usage.peak_memory_kb === 'number' ? `${(usage.peak_memory_kb / 1024).toFixed(1)} MiB` : '–'],
    ['Output cut', truncated(result) ? 'yes' : 'no'],
  ];
  if (result.error_type) facts.push(['Error', result.error_type]);
  return h('dl', { class: 'facts', 'data-testid': 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', { 'data-fact': k }, String(v))]));
}

export function show(main, { session, params }) {
  const prefs = (session.settings && session.settings.editor) || {};
  const editor = createEditor({ label: 'Script', tabSize: prefs.tab_size || 4, useTabs: prefs.use_tabs, fontSize: prefs.font_size || 14, wrap: prefs.word_wrap !== false, lineNumbers: prefs.show_line_numbers !== false });
  const language = h('select', { name: 'language' });
  const stdin = h('textarea', { name: 'stdin', rows: 3, spellcheck: 'false' });
  const limitInputs = LIMITS.map(([key]) => h('input', { name: key, type: 'number', min: 1, inputmode: 'numeric' }));
  const runButton = h('button', { type: 'submit', 'aria-keyshortcuts': 'Control+Enter' }, 'Run');
  const cancelButton = h('button', { type: 'button', class: 'danger', disabled: true }, 'Cancel');
  const saveButton = h('button', { type: 'button', class: 'secondary' }, 'Save script');
  const scriptName = h('input', { name: 'script_name', placeholder: 'untitled' });
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'run-status' }, 'Ready.');
  const facts = h('div', {});
  const stdout = h('pre', { class: 'out', 'data-testid': 'stdout', tabindex: 0, 'aria-label': 'Standard output' });
  const stderr = h('pre', { class: 'out err', 'data-testid': 'stderr', tabindex: 0, 'aria-label': 'Standard error' });
  let savedScript = null;
  let closeStream = () => {};
  let running = null;
  let dirty = false;

  const form = h('form', { class: 'run' },
    h('div', { class: 'toolbar' },
      field('Language', language),
      field('Script name', scriptName),
      h('div', { class: 'actions' }, runButton, cancelButton, saveButton)),
    editor.root,
    h('p', { id: 'editor-help', class: 'muted small' }, 'Ctrl+Enter (⌘+Enter) runs. Tab indents; press Escape, then Tab, to leave the editor.'),
    h('details', {},
      h('summary', {}, 'Standard input and limits'),
      field('Standard input', stdin),
      h('div', { class: 'grid' }, LIMITS.map(([, label], i) => field(label, limitInputs[i], 'empty: the server’s default')))));
  const output = h('section', { class: 'output', 'aria-label': 'Result' }, status, facts,
    h('h2', {}, 'Output'), stdout, h('h2', {}, 'Errors'), stderr);
  const title = heading('Run code');
  render(main, title, h('div', { class: 'split' }, form, output));

  editor.input.addEventListener('input', () => { dirty = true; });

  const selected = () => {
    const [lang, version] = language.value.split('@');
    return { lang, version };
  };

  language.addEventListener('change', () => {
    const { lang } = selected();
    editor.setLanguage(lang);
    if (!dirty && !savedScript) editor.value = examples[lang] || '';
  });

  function setRunning(id) {
    running = id;
    runButton.disabled = Boolean(id);
    cancelButton.disabled = !id;
  }

  async function finish(id, state) {
    closeStream();
    closeStream = () => {};
    if (running !== id) return;
    setRunning(null);
    await guarded(async () => {
      const result = await settledResult(id);
      status.textContent = `Finished: ${result.status}`;
      render(facts, resultFacts(result, result.status || state));
      stdout.textContent = result.stdout || '';
      stderr.textContent = result.stderr || '';
    });
  }

  async function run() {
    if (running) return;
    const { lang, version } = selected();
    const body = { script: editor.value, lang, lang_version: version };
    if (stdin.value) body.stdin = stdin.value;
    LIMITS.forEach(([key], i) => {
      if (limitInputs[i].value) body[key] = Number(limitInputs[i].value);
    });
    render(facts);
    stdout.textContent = '';
    stderr.textContent = '';
    status.textContent = 'Submitting…';
    runButton.disabled = true;
    try {
      const answer = await api('/execute', { method: 'POST', body });
      const id = answer.execution_id;
      setRunning(id);
      status.textContent = `Status: ${answer.status}`;
      closeStream = stream(`/events/executions/${id}`, (name, frame) => {
        if (!frame || typeof frame !== 'object') return;
        if (frame.event_type === 'status' && frame.status) status.textContent = `Status: ${frame.status}`;
        else if (frame.event_type) status.textContent = `Status: ${frame.event_type.replace(/_/g, ' ')}`;
        if (frame.result) {
          stdout.textContent = frame.result.stdout || '';
          stderr.textContent = frame.result.stderr || '';
        }
        if (TERMINAL_EVENTS.has(frame.event_type)) finish(id, frame.event_type);
      }, () => finish(id, 'ended'));
    } catch (err) {
      status.textContent = 'Not started.';
      flash(err.message);
      setRunning(null);
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  cancelButton.addEventListener('click', () => guarded(async () => {
    if (!running) return;
    await api(`/executions/${running}/cancel`, { method: 'POST', body: { reason: 'cancelled from the console' } });
    status.textContent = 'Cancelling…';
  }));
  saveButton.addEventListener('click', () => guarded(async () => {
    const { lang, version } = selected();
    const body = { script: editor.value, lang, lang_version: version };
    const name = scriptName.value.trim() || `${lang} script`;
    if (savedScript) {
      savedScript = await api(`/scripts/${savedScript.script_id}`, { method: 'PUT', body: { ...body, name, description: savedScript.description } });
    } else {
      savedScript = await api('/scripts', { method: 'POST', body: { ...body, name } });
    }
    scriptName.value = savedScript.name;
    title.textContent = `Run code — ${savedScript.name}`;
    flash(`Saved “${savedScript.name}”.`, 'info');
  }));

  guarded(async () => {
    const limits = await loadRuntimes();
    const langs = Object.entries(limits.supported_runtimes || {}).sort(([a], [b]) => a.localeCompare(b));
    render(language, langs.flatMap(([lang, rt]) => rt.versions.map((v) => h('option', { value: `${lang}@${v}` }, `${lang} ${v}`))));
    limitInputs[0].placeholder = String(limits.execution_timeout ?? '');
    const id = params.get('script');
    if (id) {
      savedScript = await api(`/scripts/${id}`);
      language.value = `${savedScript.lang}@${savedScript.lang_version}`;
      editor.setLanguage(savedScript.lang);
      editor.value = savedScript.script;
      scriptName.value = savedScript.name;
      title.textContent = `Run code — ${savedScript.name}`;
    } else {
      const want = params.get('lang');
      const match = want && [...language.options].find((o) => o.value.startsWith(`${want}@`));
      if (match) language.value = match.value;
      else if ([...language.options].some((o) => o.value.startsWith('python@'))) language.value = [...language.options].find((o) => o.value.startsWith('python@')).value;
      const { lang } = selected();
      editor.setLanguage(lang);
      editor.value = examples[lang] || '';
    }
    editor.input.focus();
  });

  return () => closeStream();
}
