// End-to-end test of the web console in Debian's chromium, driven by playwright-core.
//
// Usage: node console.mjs BASE_URL SCREENSHOT_DIR
// Exits 0 when every step passed, 1 at the first failure (naming the step). The server is
// started (and stopped) by the caller; this script only drives the browser, which it always closes.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node console.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
// Generous bounds for waiting on a noisy machine; never a performance threshold.
const WAIT = 60_000;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS, timeout: WAIT });
const problems = [];
let step = 'start';

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page, username, password) {
  await page.goto(`${base}/#/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Run code' }).waitFor();
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
}

let editorVisits = 0;
/** Opens a fresh editor page (a new hash, so no input of an earlier run is kept). */
async function openEditor(page) {
  editorVisits += 1;
  await page.goto(`${base}/#/run?visit=${editorVisits}`);
  await page.getByLabel('Language').locator('option').first().waitFor({ state: 'attached' });
}

/** Picks a language, replaces the script, runs it with Ctrl+Enter and waits for the end. */
async function run(page, lang, script, { timeout, outputCap, stdin } = {}) {
  await openEditor(page);
  const select = page.getByLabel('Language');
  const value = await select.locator('option').filter({ hasText: new RegExp(`^${lang} `) }).first().getAttribute('value');
  await select.selectOption(value);
  const editor = page.getByLabel('Script', { exact: true });
  await editor.fill(script);
  if (timeout || outputCap || stdin) await page.getByText('Standard input and limits').click();
  if (stdin) await page.getByLabel('Standard input').fill(stdin);
  if (timeout) await page.getByLabel('Timeout (s)').fill(String(timeout));
  if (outputCap) await page.getByLabel('Output cap (bytes)').fill(String(outputCap));
  await editor.press('Control+Enter');
  await page.getByTestId('run-status').filter({ hasText: /^Finished/ }).waitFor({ timeout: WAIT });
  return {
    status: await page.getByTestId('run-status').textContent(),
    stdout: await page.getByTestId('stdout').textContent(),
    stderr: await page.getByTestId('stderr').textContent(),
    exit: await page.locator('[data-fact="Exit code"]').textContent(),
    error: await page.locator('[data-fact="Error"]').textContent({ timeout: 1000 }).catch(() => ''),
    cut: await page.locator('[data-fact="Output cut"]').textContent(),
  };
}

/** Submits a run from the page itself (as another tab would), outside the console's UI. */
async function submitInBackground(page, script) {
  return page.evaluate(async (body) => {
    const csrf = document.cookie.split('; ').find((c) => c.startsWith('csrf_token=')).slice('csrf_token='.length);
    const res = await fetch('/api/v1/execute', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': decodeURIComponent(csrf) }, body: JSON.stringify(body),
    });
    return res.status;
  }, { script, lang: 'python', lang_version: '3.11' });
}

async function unread(page) {
  return Number(await page.locator('#unread').textContent());
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|SyntaxError|TypeError|ReferenceError/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => d.accept());
  const name = `ada${Date.now().toString(36)}`;

  step = 'the sign-in page loads';
  await page.goto(`${base}/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  // A figure for the README, not a threshold: navigation start to the form drawn and usable.
  const ready = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return { interactive: nav.domInteractive, loaded: nav.loadEventEnd, now: performance.now() };
  });
  console.log(`first page: DOM interactive ${ready.interactive.toFixed(0)} ms, load ${ready.loaded.toFixed(0)} ms, sign-in form drawn by ${ready.now.toFixed(0)} ms`);
  await shot(page, '01-sign-in');

  step = 'register, sign out, sign in';
  await page.getByRole('link', { name: 'Register' }).first().click();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('E-mail').fill(`${name}@example.com`);
  await page.getByLabel('Password').fill('correct-horse-battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Run code' }).waitFor();
  await signOut(page);
  step = 'a wrong password shows the API\'s detail';
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#flash .error').waitFor();
  expect((await page.locator('#flash').textContent()).length > 0, 'no error shown');
  await signIn(page, name, 'correct-horse-battery');

  step = 'the example script of a language is loaded';
  const example = await page.getByLabel('Script', { exact: true }).inputValue();
  expect(example.trim().length > 0, 'the editor is empty');
  expect(await page.locator('.editor-view .tok-keyword').count() > 0, 'no highlighted keyword');
  expect(await page.locator('.editor.numbered .editor-view .line').count() > 1, 'no numbered lines');

  step = 'python runs with standard input and shows its output';
  let r = await run(page, 'python', 'import sys\nprint(sum(range(10)), sys.stdin.read().upper())\n', { stdin: 'hello' });
  expect(r.stdout.trim() === '45 HELLO', `python stdout: ${r.stdout}`);
  expect(r.exit === '0', `python exit: ${r.exit}`);
  expect(/completed/.test(r.status), `python status: ${r.status}`);
  expect(await page.locator('[data-fact="Peak memory"]').textContent() !== '–', 'no peak memory');
  expect(r.cut === 'no', `python output cut: ${r.cut}`);
  await shot(page, '02-run');

  step = 'node runs and shows its output';
  r = await run(page, 'node', 'console.log(6 * 7);\n');
  expect(r.stdout.trim() === '42', `node stdout: ${r.stdout}`);

  step = 'ruby runs and shows its output';
  r = await run(page, 'ruby', 'puts "ruby" * 2\n');
  expect(r.stdout.trim() === 'rubyruby', `ruby stdout: ${r.stdout}`);

  step = 'a failing script shows its exit code and error output';
  r = await run(page, 'python', 'import sys\nprint("boom", file=sys.stderr)\nsys.exit(3)\n');
  expect(r.exit === '3', `failing exit: ${r.exit}`);
  expect(r.stderr.includes('boom'), `failing stderr: ${r.stderr}`);
  expect(r.error === 'script_error', `failing error type: ${r.error}`);

  step = 'a script over its time limit times out';
  r = await run(page, 'python', 'while True:\n    pass\n', { timeout: 1 });
  expect(/timeout/.test(r.status), `timeout status: ${r.status}`);
  expect(r.error === 'timeout', `timeout error type: ${r.error}`);

  step = 'output past the per-run cap is cut and marked';
  r = await run(page, 'python', 'print("x" * 5000)\n', { outputCap: 100 });
  expect(r.cut === 'yes', `output cut: ${r.cut}`);
  expect(r.error === 'resource_limit', `output cap error type: ${r.error}`);
  expect(r.stdout.length < 5000, 'the output was not cut');

  step = 'a running script is cancelled';
  await openEditor(page);
  await page.getByLabel('Script', { exact: true }).fill('import time\nprint("started", flush=True)\ntime.sleep(60)\n');
  await page.getByRole('button', { name: 'Run' }).click();
  const cancel = page.getByRole('button', { name: 'Cancel' });
  await page.getByTestId('run-status').filter({ hasText: /running|started/ }).waitFor();
  await cancel.click();
  await page.getByTestId('run-status').filter({ hasText: /^Finished/ }).waitFor();
  const cancelled = await page.getByTestId('run-status').textContent();
  expect(/cancelled/.test(cancelled), `cancel status: ${cancelled}`);

  step = 'a script is saved, listed, renamed, opened, updated and deleted';
  await openEditor(page);
  await page.getByLabel('Script', { exact: true }).fill('print("saved")\n');
  await page.getByLabel('Script name').fill('greeting');
  await page.getByRole('button', { name: 'Save script' }).click();
  await page.getByRole('heading', { name: 'Run code — greeting' }).waitFor();
  await page.getByRole('link', { name: 'Scripts' }).click();
  await page.getByRole('cell', { name: 'greeting', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('New name of greeting').fill('greeting2');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByRole('cell', { name: 'greeting2', exact: true }).waitFor();
  await shot(page, '03-scripts');
  await page.getByRole('link', { name: 'Open' }).click();
  await page.getByRole('heading', { name: 'Run code — greeting2' }).waitFor();
  const loaded = await page.getByLabel('Script', { exact: true }).inputValue();
  expect(loaded === 'print("saved")\n', `opened script: ${loaded}`);
  await page.getByLabel('Script', { exact: true }).fill('print("updated")\n');
  await page.getByRole('button', { name: 'Save script' }).click();
  await page.locator('#flash .info').filter({ hasText: 'Saved' }).waitFor();
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByTestId('stdout').filter({ hasText: 'updated' }).waitFor();
  await page.getByRole('link', { name: 'Scripts' }).click();
  await page.getByRole('cell', { name: 'greeting2', exact: true }).waitFor();
  await page.getByRole('link', { name: 'Open' }).click();
  await page.getByRole('heading', { name: 'Run code — greeting2' }).waitFor();
  expect((await page.getByLabel('Script', { exact: true }).inputValue()) === 'print("updated")\n', 'the update was not stored');
  await page.getByRole('link', { name: 'Scripts' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No saved scripts.').waitFor();

  step = 'settings are saved, applied, kept across a reload and listed in the history';
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByLabel('Theme').selectOption('dark');
  await page.getByLabel('Font size (px)').fill('16');
  await page.getByLabel('Line numbers').uncheck();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('cell', { name: '/theme' }).first().waitFor();
  await page.reload();
  await page.getByLabel('Theme').waitFor();
  await page.locator('html[data-theme="dark"]').waitFor({ state: 'attached' });
  // The form is enabled once the stored settings are in it.
  await page.locator('fieldset:not([disabled])').waitFor();
  expect((await page.getByLabel('Font size (px)').inputValue()) === '16', 'font size not kept');
  expect(!(await page.getByLabel('Line numbers').isChecked()), 'line numbers setting not kept');
  await shot(page, '04-settings');
  await openEditor(page);
  expect(await page.locator('.editor').count() === 1 && await page.locator('.editor.numbered').count() === 0, 'the editor ignores the line numbers setting');

  step = 'the history lists the runs';
  await page.getByRole('link', { name: 'History' }).click();
  await page.getByRole('cell', { name: /python 3/ }).first().waitFor();
  expect(await page.locator('tbody tr').count() >= 6, 'fewer runs in the history than made');
  await page.getByRole('button', { name: 'Details' }).first().click();
  await page.getByRole('heading', { name: /^Execution / }).waitFor();
  await shot(page, '05-history');

  step = 'a notification arrives live and raises the unread count';
  await page.getByRole('link', { name: /Notifications/ }).click();
  await page.getByRole('button', { name: 'Mark all read' }).click();
  await page.locator('#unread', { hasText: /^0$/ }).waitFor();
  const before = await page.locator('tbody tr').count();
  expect(await submitInBackground(page, 'print("ping")') === 200, 'background run not accepted');
  // (The page's policy forbids eval, so waits use locators rather than waitForFunction.)
  await page.locator('#unread', { hasText: /^[1-9]\d*$/ }).waitFor();
  await page.locator('#flash .info').filter({ hasText: 'Notification' }).waitFor();
  await page.locator('tbody tr').nth(before).waitFor();
  expect(await unread(page) >= 1, 'unread count not raised');
  await shot(page, '06-notifications');

  step = 'past the submission limit, a 429 says when to retry';
  await openEditor(page);
  await page.getByLabel('Script', { exact: true }).fill('print(1)\n');
  let limited = '';
  for (let attempt = 0; attempt < 40 && !limited; attempt += 1) {
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByTestId('run-status').filter({ hasText: /^(Finished|Not started)/ }).waitFor();
    if ((await page.getByTestId('run-status').textContent()).startsWith('Not started')) {
      limited = await page.locator('#flash').textContent();
    }
  }
  expect(/retry in \d+ s/.test(limited), `no retry time after 40 runs: ${limited}`);
  await shot(page, '06b-rate-limited');

  step = 'a 401 leads back to sign-in';
  await context.clearCookies();
  await page.getByRole('link', { name: 'History' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();

  step = 'the admin pages list real data';
  await signIn(page, 'admin', 'admin123');
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByRole('cell', { name, exact: true }).waitFor();
  await shot(page, '07-admin-users');
  step = 'an admin opens a user\'s rate limits and gives them a multiplier';
  await page.getByRole('row', { name: new RegExp(name) }).getByRole('button', { name: 'Manage' }).click();
  await page.getByRole('link', { name: `Rate limits of ${name}` }).click();
  await page.getByLabel('Multiplier').fill('2.5');
  await page.getByRole('button', { name: 'Save override' }).click();
  await page.locator('#flash .info').filter({ hasText: 'Override saved' }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: /^Limits of / }).waitFor();
  expect(Number(await page.getByLabel('Multiplier').inputValue()) === 2.5, 'the multiplier was not stored');
  step = 'an admin creates a user, resets their password (which then signs in) and deletes them';
  await page.getByRole('link', { name: 'Users' }).click();
  const made = `bob${Date.now().toString(36)}`;
  await page.getByLabel('Username').fill(made);
  await page.getByLabel('E-mail').fill(`${made}@example.com`);
  await page.getByLabel('Password').fill('first-password-123');
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.locator('#flash .info').filter({ hasText: `Created ${made}` }).waitFor();
  await page.getByRole('cell', { name: made, exact: true }).waitFor();
  await page.getByRole('row', { name: new RegExp(made) }).getByRole('button', { name: 'Manage' }).click();
  await page.getByLabel('New password').fill('second-password-456');
  await page.getByRole('button', { name: 'Reset password' }).click();
  await page.locator('#flash .info').filter({ hasText: `Password of ${made} reset` }).waitFor();
  {
    const other = await browser.newContext();
    other.setDefaultTimeout(WAIT);
    const otherPage = await other.newPage();
    await signIn(otherPage, made, 'second-password-456');
    await other.close();
  }
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.locator('#flash .info').filter({ hasText: `Deleted ${made}` }).waitFor();
  // The list is drawn again after the flash: wait for the deleted user's row to go (a user
  // still listed after the wait fails the step).
  await page.getByRole('cell', { name: made, exact: true }).waitFor({ state: 'detached' }).catch(() => {});
  await page.getByRole('cell', { name, exact: true }).waitFor();
  expect(await page.getByRole('cell', { name: made, exact: true }).count() === 0, 'the deleted user is still listed');

  step = 'an admin cancels a running execution from the executions page';
  const longRun = await page.evaluate(async (body) => {
    const csrf = document.cookie.split('; ').find((c) => c.startsWith('csrf_token=')).slice('csrf_token='.length);
    const res = await fetch('/api/v1/execute', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': decodeURIComponent(csrf) }, body: JSON.stringify(body),
    });
    return res.ok ? (await res.json()).execution_id : '';
  }, { script: 'import time\nprint("long", flush=True)\ntime.sleep(120)\n', lang: 'python', lang_version: '3.11' });
  expect(longRun, 'the long run was not accepted');
  await page.getByRole('link', { name: 'Executions' }).click();
  const longRow = page.getByRole('row').filter({ hasText: longRun.slice(0, 8) });
  const cancelInRow = longRow.filter({ has: page.locator('.pill.running') }).getByRole('button', { name: 'Cancel' });
  for (let i = 0; i < 120 && (await cancelInRow.count()) === 0; i += 1) {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(500);
  }
  await cancelInRow.first().click();
  await page.locator('#flash .info').filter({ hasText: 'Cancelling' }).waitFor();
  const cancelledPill = longRow.locator('.pill.cancelled');
  for (let i = 0; i < 120 && (await cancelledPill.count()) === 0; i += 1) {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(500);
  }
  expect(await cancelledPill.count() > 0, 'the cancelled execution is not shown as cancelled');

  step = 'the admin pages list real data';
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('link', { name: 'Executions' }).click();
  await page.getByRole('cell', { name: /ruby 3/ }).first().waitFor();
  await page.getByText('Waiting').waitFor();
  await shot(page, '08-admin-executions');
  await page.getByRole('link', { name: 'Events' }).click();
  await page.getByRole('cell', { name: 'execution_requested' }).first().waitFor();
  await page.getByLabel('Event types').fill('user_registered');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByRole('cell', { name: 'user_registered' }).first().waitFor();
  expect(await page.getByRole('cell', { name: 'execution_requested' }).count() === 0, 'the filter kept other events');
  await shot(page, '09-admin-events');
  await page.getByRole('link', { name: 'Dead letters' }).click();
  await page.getByText(/The dead-letter queue is empty|Inspect/).first().waitFor();
  await shot(page, '10-admin-dlq');
  await page.getByRole('link', { name: 'Rate limits' }).click();
  await page.getByRole('cell', { name: '^/api/v1/execute' }).waitFor();
  await shot(page, '11-admin-rate-limits');
  await page.getByRole('link', { name: 'System settings' }).click();
  const timeoutSetting = page.getByLabel('max_timeout_seconds');
  await timeoutSetting.waitFor();
  expect(Number(await timeoutSetting.inputValue()) > 0, 'no timeout setting');
  await shot(page, '12-admin-settings');
  step = 'an admin changes a system setting, which is kept, audited and reset';
  const previousTimeout = await timeoutSetting.inputValue();
  const changedTimeout = String(Number(previousTimeout) + 7);
  await timeoutSetting.fill(changedTimeout);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.locator('#flash .info').filter({ hasText: 'Settings saved' }).waitFor();
  await page.reload();
  await page.getByLabel('max_timeout_seconds').waitFor();
  expect((await page.getByLabel('max_timeout_seconds').inputValue()) === changedTimeout, 'the changed setting was not kept');
  await page.locator('li').filter({ hasText: `max_timeout_seconds: ${previousTimeout} → ${changedTimeout}` }).first().waitFor();
  await page.getByRole('button', { name: 'Reset to the configuration' }).click();
  await page.locator('#flash .info').filter({ hasText: 'Settings reset' }).waitFor();
  expect((await page.getByLabel('max_timeout_seconds').inputValue()) !== changedTimeout, 'the reset kept the change');
  await page.getByRole('link', { name: 'Replay' }).click();
  const hourAgo = new Date(Date.now() - 3_600_000);
  const pad = (n) => String(n).padStart(2, '0');
  await page.getByLabel('From').fill(`${hourAgo.getFullYear()}-${pad(hourAgo.getMonth() + 1)}-${pad(hourAgo.getDate())}T${pad(hourAgo.getHours())}:${pad(hourAgo.getMinutes())}`);
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.getByTestId('replay-progress').filter({ hasText: /[1-9]\d* events/ }).waitFor();
  await shot(page, '13-admin-replay');

  step = 'on a phone the editor page fits the screen';
  await page.setViewportSize({ width: 390, height: 844 });
  await openEditor(page);
  await page.getByRole('heading', { name: 'Run code' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await shot(page, '14-phone-run');

  step = 'no script error or CSP violation happened';
  expect(problems.length === 0, problems.join('\n'));
  console.log('console e2e: all steps passed');
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error(`console e2e failed at "${step}": ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  for (const ctx of browser.contexts()) {
    for (const p of ctx.pages()) await shot(p, 'failure').catch(() => {});
  }
  await browser.close().catch(() => {});
  process.exit(1);
}
