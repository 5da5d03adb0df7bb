// Sessions: the list, starting one (with an environment made inline when there is none), and
// one session's event log as a conversation, live over SSE with previews (event_deltas) so
// text appears as it streams, resuming after a dropped connection from the last stored event
// (Last-Event-ID) with nothing lost or doubled.

import { api, badge, formatCost, formatDate, formatTokens, h, listAll, navigate, notice, registerScreen, showError, sse, table } from '../core.js';

const PAGE = 50;

export function costOf(usage) {
  // list_cost.amount is in US cents (a whole number as a string)
  if (!usage || !usage.list_cost || usage.list_cost.amount == null) return '';
  return formatCost(Number(usage.list_cost.amount) / 100);
}

export function tokensOf(usage) {
  if (!usage) return 0;
  const cache = usage.cache_creation ? (usage.cache_creation.ephemeral_5m_input_tokens || 0) + (usage.cache_creation.ephemeral_1h_input_tokens || 0) : 0;
  return (usage.input_tokens || 0) + (usage.output_tokens || 0) + (usage.cache_read_input_tokens || 0) + cache;
}

function statusBadge(status) {
  return h('span', { 'data-role': 'session-status' }, badge(status || 'unknown'));
}

// -- the list ---------------------------------------------------------------------------------

async function renderList(container) {
  const body = h('div', {});
  let next = null;
  const rows = [];
  const more = h('button', { 'data-action': 'more', hidden: true, onclick: () => load().catch(showError) }, 'More');
  async function load() {
    const page = await api('GET', '/v1/sessions', { query: { limit: PAGE, ...(next ? { page: next } : {}) } });
    rows.push(...page.data);
    next = page.next_page;
    more.hidden = !next;
    body.replaceChildren(
      table(
        [
          { title: 'Session', render: (s) => h('a', { href: `#/session/${s.id}`, 'data-session-id': s.id }, s.title || s.id) },
          { title: 'Agent', render: (s) => (s.agent ? h('a', { href: `#/agents/${s.agent.id}` }, s.agent.name) : '') },
          { title: 'Status', render: (s) => badge(s.status) },
          { title: 'Tokens', render: (s) => formatTokens(tokensOf(s.usage)) },
          { title: 'Cost', render: (s) => costOf(s.usage) },
          { title: 'Created', render: (s) => formatDate(s.created_at) },
        ],
        rows,
      ),
    );
  }
  container.replaceChildren(
    h('div', { class: 'toolbar' }, h('h1', {}, 'Sessions'), h('span', { class: 'spacer' }), h('button', { class: 'primary', 'data-action': 'new-session', onclick: () => navigate('#/sessions/new') }, 'Start a session')),
    body,
    more,
  );
  await load();
}

// -- starting one -----------------------------------------------------------------------------

async function renderStart(container, agentId) {
  const [agents, environments] = await Promise.all([listAll('/v1/agents'), listAll('/v1/environments')]);
  const agent = h('select', { name: 'agent', required: true }, agents.map((a) => h('option', { value: a.id }, `${a.name} (${a.id})`)));
  if (agentId) agent.value = agentId;
  const environment = h('select', { name: 'environment_id' });
  const fillEnvironments = (selected) => {
    environment.replaceChildren(...environments.map((e) => h('option', { value: e.id }, `${e.name} (${e.id})`)));
    if (selected) environment.value = selected;
    newEnvironment.hidden = environments.length > 0 && !showNew;
  };
  let showNew = false;
  const environmentName = h('input', { name: 'environment_name', placeholder: 'a name, e.g. default', value: environments.length ? '' : 'default' });
  const newEnvironment = h(
    'div',
    { class: 'inline', 'data-role': 'new-environment' },
    environmentName,
    h(
      'button',
      {
        type: 'button',
        'data-action': 'create-environment',
        onclick: async () => {
          try {
            const created = await api('POST', '/v1/environments', { body: { name: environmentName.value.trim() || 'default' } });
            environments.push(created);
            showNew = false;
            fillEnvironments(created.id);
            notice(`Environment ${created.name} created.`);
          } catch (err) {
            showError(err);
          }
        },
      },
      'Create environment',
    ),
  );
  fillEnvironments(null);
  const title = h('input', { name: 'title', placeholder: 'optional' });
  const form = h(
    'form',
    {
      class: 'card',
      'data-role': 'session-form',
      onsubmit: async (event) => {
        event.preventDefault();
        if (!environment.value) {
          showError(new Error('Choose an environment, or create one first.'));
          return;
        }
        try {
          const body = { agent: agent.value, environment_id: environment.value };
          if (title.value.trim()) body.title = title.value.trim();
          const created = await api('POST', '/v1/sessions', { body });
          navigate(`#/session/${created.id}`);
        } catch (err) {
          showError(err);
        }
      },
    },
    h('div', { class: 'field' }, h('label', {}, 'Agent'), agents.length ? agent : h('p', {}, 'There is no agent yet: ', h('a', { href: '#/agents/new' }, 'create one'), '.')),
    h(
      'div',
      { class: 'field' },
      h('label', {}, 'Environment'),
      h('div', { class: 'inline' }, environment, h('button', { type: 'button', class: 'link', 'data-action': 'new-environment', onclick: () => { showNew = true; newEnvironment.hidden = false; } }, 'New…')),
      newEnvironment,
    ),
    h('div', { class: 'field' }, h('label', {}, 'Title'), title),
    h('button', { type: 'submit', class: 'primary', 'data-action': 'start-session', disabled: !agents.length }, 'Start session'),
  );
  container.replaceChildren(h('div', { class: 'toolbar' }, h('a', { href: '#/sessions' }, '← Sessions')), h('h1', {}, 'Start a session'), form);
}

// -- one session ------------------------------------------------------------------------------

function textOf(content) {
  return (content || [])
    .map((block) => {
      if (block.type === 'text') return block.text;
      if (block.type === 'redacted') return '[redacted]';
      if (block.type === 'image') return '[image]';
      if (block.type === 'document') return `[document${block.title ? `: ${block.title}` : ''}]`;
      if (block.type === 'search_result') return `[search result: ${block.title}]`;
      return `[${block.type}]`;
    })
    .join('\n');
}

const TOOL_USES = new Set(['agent.tool_use', 'agent.mcp_tool_use', 'agent.custom_tool_use']);
const RESULT_OF = {
  'agent.tool_result': 'tool_use_id',
  'user.tool_result': 'tool_use_id',
  'agent.mcp_tool_result': 'mcp_tool_use_id',
  'user.custom_tool_result': 'custom_tool_use_id',
};

function stopReasonWords(reason) {
  if (!reason) return 'idle';
  switch (reason.type) {
    case 'end_turn':
      return 'idle: the agent finished its turn';
    case 'requires_action':
      return 'idle: waiting for your answer below';
    case 'retries_exhausted':
      return 'idle: the model could not be reached (retries exhausted)';
    case 'budget_reached':
      return 'idle: the budget is spent';
    case 'refusal':
      return 'idle: the model refused';
    default:
      return `idle: ${reason.type}`;
  }
}

function usageLine(usage) {
  if (!usage) return '';
  const parts = [`${formatTokens(usage.input_tokens || 0)} in`, `${formatTokens(usage.output_tokens || 0)} out`];
  if (usage.cache_read_input_tokens) parts.push(`${formatTokens(usage.cache_read_input_tokens)} cache read`);
  if (usage.cache_creation_input_tokens) parts.push(`${formatTokens(usage.cache_creation_input_tokens)} cache written`);
  return `${parts.join(' · ')} tokens`;
}

class Conversation {
  constructor(sessionId, root, onChange) {
    this.sessionId = sessionId;
    this.root = root;
    this.onChange = onChange;
    this.stored = new Map(); // event id → event
    this.nodes = new Map(); // event id → top-level node
    this.previews = new Map(); // event id → {node, entries: [string]}
    // Previews marked aborted, still found by their id: previews come out of band and can
    // overtake stored events, so a span.model_request_end may arrive (closing the request
    // before) while the next request's preview already streams. Its final event or further
    // deltas then take the preview back.
    this.aborted = new Map(); // event id → {node, entries: [string]}
    this.tools = new Map(); // tool use id → {event, node, results, actions}
    this.answered = new Set(); // tool use ids confirmed, answered or with a result
    this.lastSeq = 0;
    this.lastUsage = null; // the last session.usage's running totals
  }

  // Top-level nodes stay in seq order whatever order they arrive in.
  place(node, seq) {
    node.dataset.seq = String(seq);
    // Events mostly arrive in order: after the last child is the common case, checked first.
    const last = this.root.lastElementChild;
    if (!last || (last !== node && Number(last.dataset.seq || Infinity) <= seq)) {
      this.root.appendChild(node);
      return;
    }
    for (const child of this.root.children) {
      const other = Number(child.dataset.seq || Infinity);
      if (other > seq && child !== node) {
        this.root.insertBefore(node, child);
        return;
      }
    }
    this.root.appendChild(node);
  }

  preview(eventId, type) {
    if (this.stored.has(eventId) || this.previews.has(eventId)) return this.previews.get(eventId);
    const stopped = this.aborted.get(eventId);
    if (stopped) {
      this.aborted.delete(eventId);
      this.previews.set(eventId, stopped);
      stopped.node.classList.remove('aborted');
      stopped.node.classList.add('streaming');
      delete stopped.node.dataset.abortedPreview;
      stopped.node.dataset.previewId = eventId;
      stopped.node.querySelector('.meta').lastChild.textContent = stopped.meta;
      return stopped;
    }
    const text = h('div', { class: 'text' });
    const node =
      type === 'agent.thinking'
        ? h('div', { class: 'event thinking streaming', 'data-preview-id': eventId }, h('div', { class: 'meta' }, 'Agent is thinking…'))
        : h('div', { class: 'event agent-message streaming', 'data-preview-id': eventId }, h('div', { class: 'meta' }, h('strong', {}, 'Agent'), h('span', {}, 'typing…')), text);
    const entry = { node, text, entries: [], meta: node.querySelector('.meta').lastChild.textContent };
    this.previews.set(eventId, entry);
    this.root.appendChild(node); // no seq yet: after everything stored
    return entry;
  }

  delta(eventId, delta) {
    if (this.stored.has(eventId)) return; // the final event came first: the preview is late
    const entry = this.preview(eventId, 'agent.message');
    if (!delta || !delta.content || delta.content.type !== 'text') return;
    const index = delta.index == null ? Math.max(0, entry.entries.length - 1) : delta.index;
    entry.entries[index] = (entry.entries[index] || '') + delta.content.text;
    entry.text.textContent = entry.entries.filter((part) => part !== undefined).join('\n');
  }

  add(event) {
    if (!event || !event.id || this.stored.has(event.id)) return false;
    this.stored.set(event.id, event);
    if (typeof event.seq === 'number') this.lastSeq = Math.max(this.lastSeq, event.seq);
    const node = this.render(event);
    if (node) {
      node.dataset.eventId = event.id;
      node.dataset.eventType = event.type;
      const preview = this.previews.get(event.id) || this.aborted.get(event.id);
      if (preview) {
        preview.node.replaceWith(node);
        this.previews.delete(event.id);
        this.aborted.delete(event.id);
      }
      this.nodes.set(event.id, node);
      this.place(node, event.seq ?? Number.MAX_SAFE_INTEGER);
    }
    if (event.type === 'span.model_request_end') {
      // An aborted request has no final event: its previews end here, marked as such.
      for (const [id, preview] of this.previews) {
        preview.node.classList.remove('streaming');
        preview.node.classList.add('aborted');
        preview.node.removeAttribute('data-preview-id');
        preview.node.dataset.abortedPreview = id;
        preview.node.querySelector('.meta').lastChild.textContent = '(stopped before it finished)';
        this.previews.delete(id);
        this.aborted.set(id, preview);
      }
    }
    this.refreshActions();
    if (this.onChange) this.onChange(event);
    return true;
  }

  meta(who, event, ...extra) {
    return h('div', { class: 'meta' }, h('strong', {}, who), h('span', {}, formatDate(event.processed_at)), ...extra);
  }

  render(event) {
    const type = event.type;
    if (type === 'user.message') return h('div', { class: 'event user-message' }, this.meta('You', event), h('div', { class: 'text' }, textOf(event.content)));
    if (type === 'agent.message') return h('div', { class: 'event agent-message' }, this.meta('Agent', event), h('div', { class: 'text' }, textOf(event.content)));
    if (type === 'agent.thinking') {
      return h('div', { class: 'event thinking' }, h('details', {}, h('summary', {}, 'Agent thought'), h('div', { class: 'text muted' }, event.content ? textOf(event.content) : 'The agent thought before answering (the thinking itself is not shown).')));
    }
    if (TOOL_USES.has(type)) return this.renderToolUse(event);
    if (RESULT_OF[type] || type === 'user.tool_confirmation') {
      const useId = event[RESULT_OF[type]] || event.tool_use_id;
      const tool = this.tools.get(useId);
      this.answered.add(useId);
      const part = this.renderToolAnswer(event);
      part.dataset.eventId = event.id;
      part.dataset.eventType = type;
      if (tool) {
        tool.results.appendChild(part);
        return null;
      }
      return h('div', { class: 'event tool' }, part);
    }
    if (type === 'span.model_request_start') return h('div', { class: 'event status', hidden: true });
    if (type === 'span.model_request_end') {
      const cost = event.cost_usd != null ? ` · ${formatCost(event.cost_usd)}` : '';
      return h('div', { class: `event span${event.is_error ? ' error' : ''}` }, `Model request${event.is_error ? ' failed' : ''}: ${usageLine(event.model_usage)}${cost}`);
    }
    if (type === 'session.status_running') return h('div', { class: 'event status' }, 'Running…');
    if (type === 'session.status_idle') return h('div', { class: 'event status' }, stopReasonWords(event.stop_reason));
    if (type === 'session.status_terminated') return h('div', { class: 'event status' }, 'The session ended.');
    if (type === 'session.status_rescheduled') return h('div', { class: 'event status' }, 'Rescheduled: it will run again shortly.');
    if (type === 'session.error') {
      const error = event.error || {};
      const retry = error.retry_status ? ` (${error.retry_status.type})` : '';
      return h('div', { class: 'event error' }, this.meta('Error', event), `${error.message || error.type || 'an error'}${retry}`);
    }
    if (type === 'session.usage') {
      // Reported at the end of each turn, as running totals: the turn's share is the difference.
      const before = this.lastUsage;
      this.lastUsage = event.usage;
      const cents = (u) => Number((u && u.list_cost && u.list_cost.amount) || 0);
      const turnTokens = tokensOf(event.usage) - tokensOf(before);
      const turnCost = formatCost((cents(event.usage) - cents(before)) / 100);
      return h(
        'div',
        { class: 'event span' },
        `This turn: ${formatTokens(turnTokens)} tokens · ${turnCost} — session so far: ${formatTokens(tokensOf(event.usage))} tokens · ${costOf(event.usage) || formatCost(0)}`,
      );
    }
    if (type === 'user.interrupt') return h('div', { class: 'event status' }, 'You interrupted the agent.');
    if (type === 'system.message') return h('div', { class: 'event status' }, `System: ${textOf(event.content)}`);
    if (type === 'user.define_outcome') return h('div', { class: 'event status' }, `Outcome: ${event.description}`);
    return h('div', { class: 'event status' }, type.replace(/[._]/g, ' '));
  }

  renderToolUse(event) {
    const kind = event.type === 'agent.custom_tool_use' ? 'custom tool' : event.type === 'agent.mcp_tool_use' ? `MCP tool (${event.mcp_server_name})` : 'tool';
    const results = h('div', { class: 'results' });
    const actions = h('div', { class: 'actions' });
    const node = h(
      'div',
      { class: 'event tool' },
      this.meta(`Agent uses ${kind}`, event, h('code', {}, event.name), event.evaluated_permission ? badge(`permission: ${event.evaluated_permission}`, event.evaluated_permission === 'deny' ? 'error' : 'info') : null),
      h('details', {}, h('summary', {}, 'Input'), h('pre', {}, JSON.stringify(event.input, null, 2))),
      results,
      actions,
    );
    this.tools.set(event.id, { event, node, results, actions });
    return node;
  }

  renderToolAnswer(event) {
    if (event.type === 'user.tool_confirmation') {
      const words = event.result === 'allow' ? 'You allowed this call.' : `You denied this call${event.deny_message ? `: ${event.deny_message}` : '.'}`;
      return h('div', { class: 'muted' }, words);
    }
    const who = event.type.startsWith('user.') ? 'Your result' : 'Result';
    return h('div', {}, h('div', { class: 'meta' }, h('strong', {}, event.is_error ? `${who} (error)` : who)), h('pre', {}, textOf(event.content) || '(empty)'));
  }

  waiting() {
    for (const [id, tool] of this.tools) {
      if (!this.answered.has(id) && (tool.event.type === 'agent.custom_tool_use' || tool.event.evaluated_permission === 'ask')) return true;
    }
    return false;
  }

  // Allow/deny on a call that asks, an answer box on a custom tool's call, until answered.
  refreshActions() {
    for (const [id, tool] of this.tools) {
      const waiting = !this.answered.has(id) && (tool.event.type === 'agent.custom_tool_use' || tool.event.evaluated_permission === 'ask');
      tool.node.classList.toggle('pending', waiting);
      if (!waiting) {
        tool.actions.replaceChildren();
        continue;
      }
      if (tool.actions.childElementCount) continue;
      tool.actions.appendChild(tool.event.type === 'agent.custom_tool_use' ? this.answerBox(tool.event) : this.confirmBox(tool.event));
    }
  }

  confirmBox(event) {
    const reason = h('input', { name: 'deny_message', placeholder: 'why not (optional)' });
    const send = async (result, button) => {
      button.disabled = true;
      try {
        const confirmation = { type: 'user.tool_confirmation', tool_use_id: event.id, result };
        if (result === 'deny' && reason.value.trim()) confirmation.deny_message = reason.value.trim();
        await api('POST', `/v1/sessions/${this.sessionId}/events`, { body: { events: [confirmation] } });
      } catch (err) {
        button.disabled = false;
        showError(err);
      }
    };
    return h(
      'div',
      { class: 'inline', 'data-role': 'confirmation' },
      h('span', {}, 'The agent asks to run this.'),
      h('button', { class: 'primary', 'data-action': 'allow', onclick: (e) => send('allow', e.currentTarget) }, 'Allow'),
      h('button', { class: 'danger', 'data-action': 'deny', onclick: (e) => send('deny', e.currentTarget) }, 'Deny'),
      reason,
    );
  }

  answerBox(event) {
    const answer = h('textarea', { name: 'custom_tool_result', rows: '2', placeholder: 'the tool’s result' });
    const isError = h('input', { type: 'checkbox', name: 'is_error' });
    return h(
      'div',
      { class: 'field', 'data-role': 'custom-tool-answer' },
      h('label', {}, `Answer ${event.name}`),
      answer,
      h(
        'div',
        { class: 'inline' },
        h('label', { class: 'inline' }, isError, 'it failed'),
        h(
          'button',
          {
            class: 'primary',
            'data-action': 'answer',
            onclick: async (e) => {
              const button = e.currentTarget;
              button.disabled = true;
              try {
                const result = { type: 'user.custom_tool_result', custom_tool_use_id: event.id, is_error: isError.checked };
                if (answer.value) result.content = [{ type: 'text', text: answer.value }];
                await api('POST', `/v1/sessions/${this.sessionId}/events`, { body: { events: [result] } });
              } catch (err) {
                button.disabled = false;
                showError(err);
              }
            },
          },
          'Send result',
        ),
      ),
    );
  }
}

async function renderSession(container, sessionId) {
  if (!sessionId) {
    navigate('#/sessions');
    return null;
  }
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}`;
  const session = await api('GET', path);
  const status = h('span', {}, statusBadge(session.status));
  // eslint-disable-next-line prefer-const
  let conversation;
  const usage = h('span', { class: 'muted', 'data-role': 'session-usage' });
  const streamState = h('span', { 'data-role': 'stream-state' }, badge('connecting', 'pending'));
  const log = h('div', { class: 'conversation', 'data-role': 'conversation' });
  const showUsage = (u) => {
    usage.textContent = `${formatTokens(tokensOf(u))} tokens${costOf(u) ? ` · ${costOf(u)}` : ''}`;
  };
  showUsage(session.usage);

  // Idle with a call waiting for the person is said so.
  const label = (value) => (value === 'idle' && conversation.waiting() ? 'requires action' : value);
  let refreshing = null;
  const refresh = () => {
    // Usage and status as the session now reports them (after a turn ends, at most one at a time).
    if (refreshing) return;
    refreshing = api('GET', path)
      .then((fresh) => {
        showUsage(fresh.usage);
        status.replaceChildren(statusBadge(label(fresh.status)));
      })
      .catch(() => {})
      .finally(() => {
        refreshing = null;
      });
  };
  conversation = new Conversation(sessionId, log, (event) => {
    if (event.type === 'session.status_running') status.replaceChildren(statusBadge('running'));
    if (event.type === 'session.status_terminated') status.replaceChildren(statusBadge('terminated'));
    if (event.type === 'session.status_idle') {
      status.replaceChildren(statusBadge(label('idle')));
      refresh();
    }
    if (event.type === 'session.usage' && event.usage) showUsage(event.usage);
  });

  const message = h('textarea', { name: 'message', rows: '2', placeholder: 'Write to the agent… (Ctrl+Enter sends)' });
  const post = async (events) => api('POST', `${path}/events`, { body: { events } });
  const sendMessage = async () => {
    const text = message.value;
    if (!text.trim()) return;
    try {
      await post([{ type: 'user.message', content: [{ type: 'text', text }] }]);
      message.value = '';
    } catch (err) {
      showError(err);
    }
  };
  message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendMessage();
    }
  });
  const composer = h(
    'div',
    { class: 'composer' },
    message,
    h('button', { class: 'primary', 'data-action': 'send', onclick: sendMessage }, 'Send'),
    h(
      'button',
      {
        'data-action': 'interrupt',
        onclick: async () => {
          try {
            await post([{ type: 'user.interrupt' }]);
            notice('Interrupt sent.');
          } catch (err) {
            showError(err);
          }
        },
      },
      'Interrupt',
    ),
  );
  container.replaceChildren(
    h('div', { class: 'toolbar' }, h('a', { href: '#/sessions' }, '← Sessions')),
    h(
      'div',
      { class: 'toolbar' },
      h('h1', {}, session.title || 'Session'),
      status,
      streamState,
      h('span', { class: 'spacer' }),
      usage,
    ),
    h(
      'p',
      { class: 'muted' },
      h('code', {}, session.id),
      ' · agent ',
      session.agent ? h('a', { href: `#/agents/${session.agent.id}` }, session.agent.name) : '?',
      ' · environment ',
      h('code', {}, session.environment_id),
      ` · started ${formatDate(session.created_at)}`,
    ),
    log,
    composer,
  );

  // The stored log first, then the live tail from the last stored seq: the stream replays what
  // came in between, and an event seen twice is dropped by its id.
  const history = await listAll(`${path}/events`, { order: 'asc' });
  for (const event of history) conversation.add(event);
  window.scrollTo(0, document.body.scrollHeight);
  // New events keep the latest in view, unless the person scrolled up to read.
  const follow = (apply) => {
    const near = window.innerHeight + window.scrollY >= document.body.scrollHeight - 150;
    apply();
    if (near) window.scrollTo(0, document.body.scrollHeight);
  };
  let opened = 0;
  const stream = sse(`${path}/events/stream`, {
    query: { event_deltas: ['agent.message', 'agent.thinking'] },
    lastEventId: conversation.lastSeq,
    onOpen: () => {
      opened += 1;
      streamState.replaceChildren(badge('live', 'ok'));
      streamState.dataset.opened = String(opened);
    },
    onError: (err) => {
      streamState.replaceChildren(badge('reconnecting', 'warn'));
      if (err && err.status) showError(err);
    },
    onEvent: (name, data) =>
      follow(() => {
        if (name === 'event_start') conversation.preview(data.event.id, data.event.type);
        else if (name === 'event_delta') conversation.delta(data.event_id, data.delta);
        else if (data && typeof data === 'object' && data.id) conversation.add(data);
      }),
  });
  return () => stream.close();
}

registerScreen('sessions', {
  title: 'Sessions',
  order: 20,
  render: async (container, params) => {
    if (params[0] === 'new') await renderStart(container, params[1]);
    else await renderList(container);
  },
});

registerScreen('session', {
  title: 'Session',
  nav: false,
  render: (container, params) => renderSession(container, params[0]),
});
