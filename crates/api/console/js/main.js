// The console's entry: who is signed in, the navigation, the hash router and the live
// notification count.

import { api, setUnauthorizedHandler, stream } from './api.js';
import { h, render, flash } from './dom.js';
import * as auth from './pages/auth.js';
import * as run from './pages/run.js';
import * as history from './pages/history.js';
import * as scripts from './pages/scripts.js';
import * as settings from './pages/settings.js';
import * as notifications from './pages/notifications.js';
import * as admin from './pages/admin.js';

/** What every page gets: the signed-in user and ways to change the session. */
export const session = { user: null, unread: 0, settings: null };

const USER_PAGES = [
  ['run', 'Run', run.show],
  ['history', 'History', history.show],
  ['scripts', 'Scripts', scripts.show],
  ['notifications', 'Notifications', notifications.show],
  ['settings', 'Settings', settings.show],
];

let closeNotifications = () => {};
let leavePage = () => {};

function navLink(route, label, extra) {
  const current = location.hash.replace(/^#\//, '').split('?')[0] === route;
  return h('a', { href: `#/${route}`, 'aria-current': current ? 'page' : false }, label, extra);
}

function drawNav() {
  const nav = document.getElementById('nav');
  if (!session.user) {
    render(nav, navLink('login', 'Sign in'), navLink('register', 'Register'));
    return;
  }
  const badge = h('span', { class: 'badge', id: 'unread', 'aria-label': `${session.unread} unread` }, String(session.unread));
  render(nav,
    USER_PAGES.map(([route, label]) => navLink(route, label, route === 'notifications' ? badge : null)),
    session.user.role === 'admin' ? navLink('admin/users', 'Admin') : null,
    h('span', { class: 'who' }, session.user.username),
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
}

/** Updates the unread count shown in the navigation. */
export function setUnread(n) {
  session.unread = Math.max(0, n);
  const badge = document.getElementById('unread');
  if (badge) {
    badge.textContent = String(session.unread);
    badge.setAttribute('aria-label', `${session.unread} unread`);
  }
}

/** Applies the user's theme (`light`, `dark` or `auto`). */
export function applyTheme(theme) {
  document.documentElement.dataset.theme = theme || 'auto';
}

async function startSession(user) {
  session.user = user;
  closeNotifications();
  const [count, userSettings] = await Promise.all([
    api('/notifications/unread-count').catch(() => ({ unread_count: 0 })),
    api('/user/settings/').catch(() => null),
  ]);
  session.settings = userSettings;
  applyTheme(userSettings && userSettings.theme);
  setUnread(count.unread_count || 0);
  closeNotifications = stream('/events/notifications/stream', (name, data) => {
    if (name !== 'notification' || !data || !data.notification_id) return;
    setUnread(session.unread + 1);
    flash(`Notification: ${data.subject}`, 'info');
    notifications.arrived(data);
  });
}

/** Called by the sign-in page with the user `/auth/me` returns. */
export async function signedIn(user) {
  await startSession(user);
  location.hash = '#/run';
  route();
}

async function signOut() {
  try { await api('/auth/logout', { method: 'POST' }); } catch { /* the session is dropped anyway */ }
  endSession();
  flash('Signed out.', 'info');
}

function endSession() {
  session.user = null;
  session.settings = null;
  closeNotifications();
  closeNotifications = () => {};
  applyTheme('auto');
  location.hash = '#/login';
  route();
}

function route() {
  leavePage();
  leavePage = () => {};
  const main = document.getElementById('main');
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(search || '');
  drawNav();
  render(main);
  if (!session.user) {
    if (path === 'register') auth.showRegister(main, { signedIn });
    else auth.showLogin(main, { signedIn });
    main.focus();
    return;
  }
  if (path === 'login' || path === 'register' || path === '') { location.hash = '#/run'; return; }
  const page = USER_PAGES.find(([r]) => r === path);
  let leave;
  if (page) leave = page[2](main, { session, params, setUnread, applyTheme });
  else if (path.startsWith('admin/') && session.user.role === 'admin') leave = admin.show(main, { session, section: path.slice(6), params });
  else render(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/run' }, 'Back to the editor')));
  if (typeof leave === 'function') leavePage = leave;
  main.focus();
}

setUnauthorizedHandler(() => {
  if (!session.user) return;
  flash('Your session has ended; please sign in again.');
  endSession();
});

window.addEventListener('hashchange', route);

async function boot() {
  try {
    await startSession(await api('/auth/me'));
  } catch (e) {
    session.user = null;
    if (e.status !== 401) flash(e.message);
  }
  route();
}

boot();
