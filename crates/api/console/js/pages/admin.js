// The admin pages: a sub-navigation and one module per section.

import { h, render, heading } from '../dom.js';
import * as users from './admin/users.js';
import * as executions from './admin/executions.js';
import * as events from './admin/events.js';
import * as dlq from './admin/dlq.js';
import * as rateLimits from './admin/rate-limits.js';
import * as systemSettings from './admin/settings.js';
import * as replay from './admin/replay.js';

const SECTIONS = [
  ['users', 'Users', users.show],
  ['executions', 'Executions', executions.show],
  ['events', 'Events', events.show],
  ['dlq', 'Dead letters', dlq.show],
  ['rate-limits', 'Rate limits', rateLimits.show],
  ['settings', 'System settings', systemSettings.show],
  ['replay', 'Replay', replay.show],
];

export function show(main, { section, params }) {
  const found = SECTIONS.find(([key]) => key === section) || SECTIONS[0];
  const nav = h('nav', { class: 'subnav', 'aria-label': 'Admin' },
    SECTIONS.map(([key, label]) => h('a', { href: `#/admin/${key}`, 'aria-current': key === found[0] ? 'page' : false }, label)));
  const body = h('div', {});
  render(main, heading(`Admin · ${found[1]}`), nav, body);
  return found[2](body, { params });
}
