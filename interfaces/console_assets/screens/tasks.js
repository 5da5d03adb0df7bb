// Tasks: a board by status, creating one, and one task with execute, approve, reject (with a
// comment) and its comment thread with @mention autocomplete.

import { api, badge, formatDate, h, listAll, navigate, notice, registerScreen, showError } from '../core.js';

const STATUSES = ['todo', 'in_progress', 'review', 'approved', 'rejected', 'done', 'cancelled'];
const STATUS_WORDS = {
  todo: 'To do',
  in_progress: 'In progress',
  review: 'Review',
  approved: 'Approved',
  rejected: 'Rejected',
  done: 'Done',
  cancelled: 'Cancelled',
};
// The task moves by itself while a run is going (and agents answer comments): its screen
// looks again this often, more often while the run goes.
const POLL_RUNNING_MS = 1000;
const POLL_IDLE_MS = 4000;

async function agentNames() {
  const agents = await listAll('/v1/agents');
  return { agents, names: new Map(agents.map((agent) => [agent.id, agent.name])) };
}

async function renderBoard(container) {
  const [tasks, { agents, names }] = await Promise.all([listAll('/v1/tasks'), agentNames()]);
  const columns = STATUSES.map((status) => {
    const mine = tasks.filter((task) => task.status === status);
    return h(
      'div',
      { class: 'board-column', 'data-status': status },
      h('h3', {}, `${STATUS_WORDS[status]} (${mine.length})`),
      mine.map((task) =>
        h(
          'div',
          { class: 'task-card', 'data-task-id': task.id, onclick: () => navigate(`#/tasks/${task.id}`) },
          h('div', {}, h('a', { href: `#/tasks/${task.id}` }, task.title)),
          h(
            'div',
            { class: 'muted' },
            task.assigned_agent_id ? names.get(task.assigned_agent_id) || task.assigned_agent_id : 'unassigned',
            ' · ',
            badge(task.priority),
            task.requires_approval ? [' ', badge('needs approval', 'warn')] : null,
          ),
        ),
      ),
    );
  });
  container.replaceChildren(
    h('div', { class: 'toolbar' }, h('h1', {}, 'Tasks'), h('span', { class: 'spacer' }), h('button', { 'data-action': 'refresh', onclick: () => renderBoard(container).catch(showError) }, 'Refresh')),
    newTaskForm(agents, container),
    h('div', { class: 'board', 'data-role': 'board' }, columns),
  );
}

function newTaskForm(agents, container) {
  const title = h('input', { name: 'title', required: true, placeholder: 'What should be done' });
  const description = h('textarea', { name: 'description', rows: '2', placeholder: 'Details for the agent (optional)' });
  const agent = h('select', { name: 'assigned_agent_id' }, h('option', { value: '' }, 'unassigned'), agents.map((a) => h('option', { value: a.id }, a.name)));
  const priority = h('select', { name: 'priority' }, ['low', 'medium', 'high', 'urgent'].map((p) => h('option', { value: p }, p)));
  priority.value = 'medium';
  const approval = h('input', { type: 'checkbox', name: 'requires_approval', checked: true });
  return h(
    'details',
    { class: 'card', 'data-role': 'new-task' },
    h('summary', { 'data-action': 'new-task' }, 'New task'),
    h(
      'form',
      {
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const body = { title: title.value.trim(), priority: priority.value, requires_approval: approval.checked };
            if (description.value.trim()) body.description = description.value.trim();
            if (agent.value) body.assigned_agent_id = agent.value;
            const task = await api('POST', '/v1/tasks', { body });
            notice(`Task "${task.title}" created.`);
            await renderBoard(container);
          } catch (err) {
            showError(err);
          }
        },
      },
      h('div', { class: 'field' }, h('label', {}, 'Title'), title),
      h('div', { class: 'field' }, h('label', {}, 'Description'), description),
      h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', {}, 'Agent'), agent), h('div', { class: 'field' }, h('label', {}, 'Priority'), priority), h('div', { class: 'field' }, h('label', {}, 'Approval'), h('label', { class: 'inline' }, approval, 'finished work waits for approval'))),
      h('button', { type: 'submit', class: 'primary', 'data-action': 'create-task' }, 'Create task'),
    ),
  );
}

// -- @mentions --------------------------------------------------------------------------------

// A textarea that suggests workspace members and agents after an "@".
export function mentionInput(attrs) {
  const input = h('textarea', attrs);
  const list = h('div', { class: 'mention-list', 'data-role': 'mention-list', hidden: true });
  let active = 0;
  let suggestions = [];
  let asked = 0;
  const wordAtCursor = () => {
    const before = input.value.slice(0, input.selectionStart);
    const match = /(^|\s)@([\w.\-]*)$/.exec(before);
    return match ? { query: match[2], start: before.length - match[2].length - 1 } : null;
  };
  const close = () => {
    list.hidden = true;
    suggestions = [];
  };
  const choose = (suggestion) => {
    const word = wordAtCursor();
    if (!word) return close();
    const end = input.selectionStart;
    const inserted = `@${suggestion.handle} `;
    input.value = input.value.slice(0, word.start) + inserted + input.value.slice(end);
    input.selectionStart = input.selectionEnd = word.start + inserted.length;
    close();
    input.focus();
  };
  const draw = () => {
    list.replaceChildren(
      ...suggestions.map((s, index) =>
        h(
          'button',
          { type: 'button', class: index === active ? 'active' : '', 'data-handle': s.handle, onmousedown: (e) => { e.preventDefault(); choose(s); } },
          `@${s.handle}`,
          h('span', { class: 'muted' }, ` ${s.name} · ${s.type}`),
        ),
      ),
    );
    list.hidden = suggestions.length === 0;
  };
  input.addEventListener('input', async () => {
    const word = wordAtCursor();
    if (!word) return close();
    const ticket = ++asked;
    try {
      const answer = await api('GET', '/v1/mentions/search', { query: { q: word.query } });
      if (ticket !== asked) return; // a later keystroke asked again
      suggestions = answer.data || [];
      active = 0;
      draw();
    } catch (err) {
      showError(err);
    }
  });
  input.addEventListener('keydown', (event) => {
    if (list.hidden || !suggestions.length) return;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      active = (active + (event.key === 'ArrowDown' ? 1 : suggestions.length - 1)) % suggestions.length;
      draw();
    } else if (event.key === 'Enter' || event.key === 'Tab') {
      event.preventDefault();
      choose(suggestions[active]);
    } else if (event.key === 'Escape') {
      close();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 150));
  return { input, node: h('div', { class: 'mentions' }, input, list) };
}

// -- one task ---------------------------------------------------------------------------------

async function renderTask(container, taskId) {
  const path = `/v1/tasks/${encodeURIComponent(taskId)}`;
  const [{ agents, names }, environments] = await Promise.all([agentNames(), listAll('/v1/environments')]);
  let timer = null;
  let gone = false;
  const details = h('div', {});
  const thread = h('div', { 'data-role': 'comments' });
  let shownVersion = null;
  let running = false;
  let schedule = () => {}; // set once the screen is drawn: the next look, sooner while running

  async function draw() {
    const task = await api('GET', path);
    running = task.status === 'in_progress';
    if (task.version === shownVersion) return task;
    shownVersion = task.version;
    details.replaceChildren(...taskDetails(task).filter(Boolean));
    return task;
  }

  function taskDetails(task) {
    const environment = h('select', { name: 'environment_id' }, h('option', { value: '' }, 'the default environment'), environments.map((e) => h('option', { value: e.id }, e.name)));
    const verdict = h('textarea', { name: 'review_comment', rows: '2', placeholder: 'A comment (required to reject: it is sent to the agent)' });
    const act = async (action, body) => {
      try {
        await api('POST', `${path}/${action}`, { body });
        notice({ execute: 'Started.', approve: 'Approved.', reject: 'Rejected: the agent revises it.' }[action]);
        await draw();
        await drawComments();
        schedule();
      } catch (err) {
        showError(err);
      }
    };
    return [
      h('div', { class: 'toolbar' }, h('h1', { 'data-role': 'task-title' }, task.title), h('span', { 'data-role': 'task-status' }, badge(task.status))),
      h(
        'p',
        { class: 'muted' },
        h('code', {}, task.id),
        ` · ${task.priority} · version ${task.version} · `,
        task.assigned_agent_id ? h('a', { href: `#/agents/${task.assigned_agent_id}` }, names.get(task.assigned_agent_id) || task.assigned_agent_id) : 'unassigned',
        task.requires_approval ? ' · needs approval' : '',
        task.session_id ? [' · ', h('a', { href: `#/session/${task.session_id}`, 'data-role': 'task-session' }, 'the run’s session')] : null,
        ` · updated ${formatDate(task.updated_at)}`,
      ),
      task.description ? h('div', { class: 'card' }, h('div', { class: 'text', style: { whiteSpace: 'pre-wrap' } }, task.description)) : null,
      task.result ? h('div', { class: 'card' }, h('h3', {}, 'Result'), h('pre', { 'data-role': 'task-result' }, task.result)) : null,
      h(
        'div',
        { class: 'card' },
        h('h3', {}, 'Run'),
        task.status === 'in_progress'
          ? h('p', { class: 'muted' }, 'The agent is working on it…')
          : task.status === 'review'
          ? h('p', { class: 'muted' }, 'The run is done: its result waits for review below.')
          : h(
              'div',
              { class: 'inline' },
              'in',
              environment,
              h('button', { class: 'primary', 'data-action': 'execute', disabled: !task.assigned_agent_id, onclick: () => act('execute', environment.value ? { environment_id: environment.value } : {}) }, 'Execute'),
              task.assigned_agent_id ? null : h('span', { class: 'muted' }, 'assign an agent first'),
            ),
      ),
      task.status === 'review'
        ? h(
            'div',
            { class: 'card', 'data-role': 'review' },
            h('h3', {}, 'Review'),
            verdict,
            h(
              'div',
              { class: 'toolbar' },
              h('button', { class: 'primary', 'data-action': 'approve', onclick: () => act('approve', verdict.value.trim() ? { comment: verdict.value.trim() } : {}) }, 'Approve'),
              h(
                'button',
                {
                  class: 'danger',
                  'data-action': 'reject',
                  onclick: () => {
                    if (!verdict.value.trim()) {
                      showError(new Error('Say what to change: a rejection needs a comment.'));
                      return;
                    }
                    act('reject', { comment: verdict.value.trim() });
                  },
                },
                'Reject',
              ),
            ),
          )
        : null,
      assignForm(task, agents),
    ];
  }

  function assignForm(task, agentList) {
    const agent = h('select', { name: 'assign_agent' }, h('option', { value: '' }, 'unassigned'), agentList.map((a) => h('option', { value: a.id }, a.name)));
    agent.value = task.assigned_agent_id || '';
    return h(
      'details',
      { class: 'card' },
      h('summary', {}, 'Assign'),
      h(
        'div',
        { class: 'inline' },
        agent,
        h(
          'button',
          {
            'data-action': 'assign',
            onclick: async () => {
              try {
                await api('POST', path, { body: { assigned_agent_id: agent.value || null, version: task.version } });
                await draw();
              } catch (err) {
                showError(err);
              }
            },
          },
          'Save',
        ),
      ),
    );
  }

  let commentCount = -1;
  async function drawComments() {
    const comments = await listAll(`${path}/comments`, { order: 'asc' });
    if (comments.length === commentCount) return;
    commentCount = comments.length;
    thread.replaceChildren(
      ...[].concat(comments.length
        ? comments.map((comment) =>
            h(
              'div',
              { class: 'comment', 'data-comment-id': comment.id },
              h('div', { class: 'meta muted' }, `${comment.author.type} ${comment.author.id}`, ' · ', formatDate(comment.created_at), comment.mentions.length ? ` · mentions ${comment.mentions.map((m) => m.name).join(', ')}` : ''),
              h('div', { style: { whiteSpace: 'pre-wrap' } }, comment.content),
            ),
          )
        : h('p', { class: 'muted' }, 'No comments yet.')),
    );
  }

  const { input: commentInput, node: commentBox } = mentionInput({ name: 'comment', rows: '2', placeholder: 'Write a comment; @ mentions a person or an agent' });
  const commentForm = h(
    'div',
    { class: 'card' },
    h('h3', {}, 'Comments'),
    thread,
    commentBox,
    h(
      'button',
      {
        'data-action': 'comment',
        onclick: async () => {
          if (!commentInput.value.trim()) return;
          try {
            await api('POST', `${path}/comments`, { body: { content: commentInput.value } });
            commentInput.value = '';
            await drawComments();
          } catch (err) {
            showError(err);
          }
        },
      },
      'Comment',
    ),
  );

  container.replaceChildren(h('div', { class: 'toolbar' }, h('a', { href: '#/tasks' }, '← Tasks')), details, commentForm);
  await draw();
  await drawComments();
  const poll = async () => {
    if (gone) return;
    try {
      await draw();
      await drawComments();
    } catch {
      // a passing failure: the next look tries again
    }
    schedule();
  };
  schedule = () => {
    clearTimeout(timer);
    if (!gone) timer = setTimeout(poll, running ? POLL_RUNNING_MS : POLL_IDLE_MS);
  };
  schedule();
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}

registerScreen('tasks', {
  title: 'Tasks',
  order: 30,
  render: async (container, params) => {
    if (params[0]) return renderTask(container, params[0]);
    await renderBoard(container);
    return null;
  },
});
