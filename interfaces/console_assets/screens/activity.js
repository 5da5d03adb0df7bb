// The activity feed (the audit trail) with its filters: what, which one, which action, which
// agent, which person, from and to a date, newest or oldest first.

import { api, badge, formatDate, h, listAll, registerScreen, showError } from '../core.js';

const ENTITY_TYPES = ['agent', 'session', 'task', 'task_comment', 'environment', 'vault', 'model_card', 'api_key', 'user', 'invite', 'memory_store', 'knowledge_base', 'skill', 'webhook', 'file', 'board', 'department', 'work_item'];
const PAGE = 50;

function link(entry) {
  const id = entry.entity_id;
  if (!id) return '';
  const target = { agent: `#/agents/${id}`, session: `#/session/${id}`, task: `#/tasks/${id}` }[entry.entity_type];
  return target ? h('a', { href: target }, id) : h('code', {}, id);
}

function actor(entry) {
  if (!entry.actor) return h('span', { class: 'muted' }, '—');
  if (entry.actor.type === 'system') return h('span', { class: 'muted' }, 'system');
  const kind = typeof entry.actor.type === 'string' ? entry.actor.type.replace('_', ' ') : 'someone';
  return `${kind} ${entry.actor.id || ''}`.trim();
}

// Filters live in the hash (#/activity/entity_id=task_…&action=…) so a link can carry them.
function filtersFrom(params) {
  const query = new URLSearchParams(params.join('/'));
  return Object.fromEntries(query.entries());
}

async function render(container, params) {
  const filters = filtersFrom(params);
  const agents = await listAll('/v1/agents').catch(() => []);
  const field = (name, label, input) => {
    input.name = name;
    if (filters[name]) input.value = filters[name];
    return h('div', { class: 'field' }, h('label', {}, label), input);
  };
  const entityType = h('select', {}, h('option', { value: '' }, 'anything'), ENTITY_TYPES.map((type) => h('option', { value: type }, type.replace('_', ' '))));
  const agent = h('select', {}, h('option', { value: '' }, 'any agent'), agents.map((a) => h('option', { value: a.id }, a.name)));
  const inputs = {
    entity_type: entityType,
    entity_id: h('input', { placeholder: 'task_…, sesn_…' }),
    action: h('input', { placeholder: 'task.approved' }),
    agent_id: agent,
    user_id: h('input', { placeholder: 'user_…' }),
    date_from: h('input', { type: 'date' }),
    date_to: h('input', { type: 'date' }),
    order: h('select', {}, h('option', { value: 'desc' }, 'newest first'), h('option', { value: 'asc' }, 'oldest first')),
  };
  const labels = { entity_type: 'What', entity_id: 'Which one', action: 'Action', agent_id: 'Agent', user_id: 'Person', date_from: 'From', date_to: 'To', order: 'Order' };
  const feed = h('div', { 'data-role': 'feed' });
  const more = h('button', { 'data-action': 'more', hidden: true }, 'More');
  let next = null;
  let query = {};

  async function load(reset) {
    if (reset) {
      next = null;
      feed.replaceChildren();
    }
    const page = await api('GET', '/v1/activity', { query: { limit: PAGE, ...query, ...(next ? { page: next } : {}) } });
    next = page.next_page;
    more.hidden = !next;
    if (reset && !page.data.length) feed.appendChild(h('p', { class: 'muted', 'data-role': 'empty' }, 'Nothing matches these filters.'));
    for (const entry of page.data) {
      feed.appendChild(
        h(
          'div',
          { class: 'feed-item', 'data-activity-id': entry.id, 'data-action-name': entry.action, 'data-entity-id': entry.entity_id || '' },
          h('span', { class: 'when' }, formatDate(entry.created_at)),
          h('span', {}, badge(entry.action, 'info')),
          h('span', {}, entry.summary, ' · ', link(entry)),
          h('span', { class: 'muted who' }, actor(entry)),
        ),
      );
    }
  }

  const apply = async (event) => {
    if (event) event.preventDefault();
    query = {};
    for (const [name, input] of Object.entries(inputs)) if (input.value) query[name] = input.value.trim();
    try {
      await load(true);
    } catch (err) {
      showError(err);
    }
  };
  more.addEventListener('click', () => load(false).catch(showError));
  const form = h(
    'form',
    { class: 'card', 'data-role': 'activity-filters', onsubmit: apply },
    h('div', { class: 'row' }, Object.entries(inputs).map(([name, input]) => field(name, labels[name], input))),
    h(
      'div',
      { class: 'toolbar' },
      h('button', { type: 'submit', class: 'primary', 'data-action': 'filter' }, 'Apply filters'),
      h(
        'button',
        {
          type: 'button',
          'data-action': 'clear-filters',
          onclick: () => {
            for (const input of Object.values(inputs)) input.value = input.tagName === 'SELECT' ? input.options[0].value : '';
            apply();
          },
        },
        'Clear',
      ),
    ),
  );
  container.replaceChildren(h('div', { class: 'toolbar' }, h('h1', {}, 'Activity')), form, feed, more);
  await apply();
}

registerScreen('activity', { title: 'Activity', order: 40, render });
