// Notifications: the list (all or unread), mark one or all read, and the unread count live in
// the nav link from the moment the console is signed in, whichever screen is open. The count
// follows GET /v1/notifications/stream (each new notification re-reads the count, so reads made
// elsewhere are counted too) and falls back to polling unread_count while the stream is down.
import {
  api, badge, formatDate, h, registerScreen, rootOf, session, showError, sse, table,
} from '../core.js';

const POLL_DOWN_MS = 10000; // the stream is down: poll the count
const POLL_UP_MS = 60000; // the stream is up: it tells of new ones, not of reads made elsewhere
const KINDS = {
  mention: ['mentioned you', 'info'],
  approval_awaited: ['awaiting approval', 'warn'],
  task_done: ['task done', 'ok'],
  session_error: ['session error', 'error'],
};

const live = {
  count: null,
  stream: null,
  streamOpen: false,
  signedInAs: null,
  lastPoll: 0,
  asked: 0, // numbers the count's reads: an answer overtaken by a later one is dropped
  listeners: new Set(),
};

function currentSession() {
  try {
    return session() || null;
  } catch {
    return null;
  }
}

function navLink() {
  return document.querySelector('a[data-nav="notifications"]');
}

function paintBadge() {
  const link = navLink();
  if (!link) return;
  let counter = link.querySelector('[data-role="unread-count"]');
  if (!counter) {
    counter = h('span', { class: 'badge nav-count', 'data-role': 'unread-count' });
    link.append(' ', counter);
  }
  const text = live.count == null ? '' : String(live.count);
  if (counter.textContent !== text) counter.textContent = text;
  counter.dataset.count = text;
  counter.hidden = !live.count;
  link.title = live.count ? `${live.count} unread notifications` : 'Notifications';
}

function setCount(count) {
  live.asked += 1;
  live.count = count;
  paintBadge();
}

async function refreshCount() {
  live.lastPoll = Date.now();
  const ticket = ++live.asked;
  try {
    const answer = await api('GET', '/v1/notifications/unread_count');
    if (ticket !== live.asked) return;
    live.count = answer.unread_count;
    paintBadge();
  } catch {
    // Signed out, or the server is away: the next poll or stream event tries again.
  }
}

function parsed(data) {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

function stopStream() {
  if (live.stream) live.stream.close();
  live.stream = null;
  live.streamOpen = false;
}

function startStream() {
  stopStream();
  live.stream = sse('/v1/notifications/stream', {
    onOpen: () => { live.streamOpen = true; refreshCount(); },
    onError: () => { live.streamOpen = false; },
    onEvent: (name, data) => {
      if (name !== 'notification') return;
      refreshCount();
      const notification = parsed(data);
      for (const listener of live.listeners) listener(notification);
    },
  });
}

// Called on every change of the page: starts, restarts (another credential) or stops the
// stream, and puts the count back into a nav that was drawn anew.
function follow() {
  const link = navLink();
  const who = link ? currentSession() : null;
  const identity = who && who.kind ? JSON.stringify([who.kind, who.workspace, who.user || null]) : null;
  if (identity !== live.signedInAs) {
    live.signedInAs = identity;
    live.count = null;
    if (identity) {
      startStream();
      refreshCount();
    } else {
      stopStream();
    }
  }
  if (link && !link.querySelector('[data-role="unread-count"]')) paintBadge();
}

// Only the shell's own redraws matter: #app's children (sign-in ↔ shell) and the nav's links.
// Not the screens' content: a streamed reply changes that many times a second.
const navWatch = new MutationObserver(() => follow());
let watchedNav = null;
function watchNav() {
  const nav = document.querySelector('[data-role="nav"]');
  if (nav === watchedNav) return;
  navWatch.disconnect();
  watchedNav = nav;
  if (nav) navWatch.observe(nav, { childList: true });
}
new MutationObserver(() => {
  watchNav();
  follow();
}).observe(document.getElementById('app') || document.body, { childList: true });
watchNav();
window.addEventListener('hashchange', () => follow());
setInterval(() => {
  if (!live.signedInAs) return;
  const every = live.streamOpen ? POLL_UP_MS : POLL_DOWN_MS;
  if (Date.now() - live.lastPoll >= every) refreshCount();
}, 2000);
follow();

function related(notification) {
  const links = [];
  if (notification.task_id) {
    links.push(h('a', { href: `#/tasks/${encodeURIComponent(notification.task_id)}` }, 'task'));
  }
  if (notification.session_id) {
    links.push(h('a', { href: `#/session/${encodeURIComponent(notification.session_id)}` }, 'session'));
  }
  return links.length ? links.flatMap((link, i) => (i ? [' · ', link] : [link])) : '—';
}

function render(container) {
  const root = rootOf(container, 'notifications');
  let alive = true;
  let onlyUnread = false;
  let rows = [];
  let nextPage = null;
  const listBox = h('div', { 'data-role': 'list' }, 'Loading…');
  const moreBox = h('div', { class: 'inline' });

  async function markRead(notification, button) {
    button.disabled = true;
    try {
      await api('POST', `/v1/notifications/${encodeURIComponent(notification.id)}/read`);
      notification.read = true;
      if (onlyUnread) rows = rows.filter((row) => row.id !== notification.id);
      draw();
      await refreshCount();
    } catch (err) {
      button.disabled = false;
      showError(err);
    }
  }

  async function readAll(button) {
    button.disabled = true;
    try {
      // Up to the newest shown: one that arrives meanwhile stays unread.
      const newest = rows.reduce((most, row) => Math.max(most, row.position || 0), 0);
      const answer = await api('POST', '/v1/notifications/read_all', { body: newest ? { up_to: newest } : {} });
      setCount(answer.unread_count);
      await load();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  function draw() {
    if (rows.length === 0) {
      listBox.replaceChildren(h('p', { class: 'muted', 'data-role': 'empty' },
        onlyUnread ? 'No unread notifications.' : 'No notifications yet.'));
    } else {
      listBox.replaceChildren(table([
        { title: '', render: (n) => (n.read ? '' : badge('new', 'info')) },
        { title: 'Kind', render: (n) => badge(...(KINDS[n.kind] || [n.kind, 'info'])) },
        {
          title: 'Notification',
          render: (n) => h('div', { 'data-id': n.id, 'data-read': String(n.read) },
            h('strong', {}, n.title || ''), n.message ? h('div', { class: 'muted' }, n.message) : null),
        },
        { title: 'About', render: related },
        { title: 'When', render: (n) => formatDate(n.created_at) },
        {
          title: '',
          render: (n) => (n.read ? '' : h('button', {
            type: 'button', 'data-action': 'mark-read', onclick: (event) => markRead(n, event.currentTarget),
          }, 'Mark read')),
        },
      ], rows));
    }
    moreBox.replaceChildren(nextPage
      ? h('button', { type: 'button', 'data-action': 'more', onclick: () => loadMore() }, 'Older notifications')
      : '');
  }

  function query(page) {
    const q = { limit: 50 };
    if (onlyUnread) q.read = false;
    if (page) q.page = page;
    return q;
  }

  async function load() {
    try {
      const answer = await api('GET', '/v1/notifications', { query: query(null) });
      if (!alive) return;
      rows = answer.data || [];
      nextPage = answer.next_page || null;
      draw();
      root.dataset.loaded = 'true';
    } catch (err) {
      showError(err);
    }
  }

  async function loadMore() {
    try {
      const answer = await api('GET', '/v1/notifications', { query: query(nextPage) });
      if (!alive) return;
      const seen = new Set(rows.map((row) => row.id));
      rows = rows.concat((answer.data || []).filter((row) => !seen.has(row.id)));
      nextPage = answer.next_page || null;
      draw();
    } catch (err) {
      showError(err);
    }
  }

  const filter = h('select', {
    'data-role': 'filter',
    onchange: (event) => { onlyUnread = event.target.value === 'unread'; load(); },
  }, h('option', { value: 'all' }, 'All'), h('option', { value: 'unread' }, 'Unread'));

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'Notifications'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' }, filter,
        h('button', { type: 'button', 'data-action': 'read-all', onclick: (event) => readAll(event.currentTarget) },
          'Mark all read'))),
    listBox,
    moreBox,
  );
  const onNew = () => { if (alive) load(); };
  live.listeners.add(onNew);
  load();
  refreshCount();
  return () => { alive = false; live.listeners.delete(onNew); };
}

registerScreen('notifications', { title: 'Notifications', order: 50, render });
