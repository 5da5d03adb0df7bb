// The console's shared toolkit: the API client, the element builder, the screen registry and
// small widgets. Every screen module imports from here and registers itself on import.

const STORAGE_KEY = 'agentry.console.session';
const WORKSPACE_HEADER = 'anthropic-workspace-id';

// -- the signed-in credential (sessionStorage: gone when the tab closes) ----------------------

export function session() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    if (!stored) return null;
    return { kind: stored.kind, workspace: stored.workspace || null, user: stored.user || null };
  } catch {
    return null;
  }
}

function credential() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
  } catch {
    return null;
  }
}

// Used by app.js only: the sign-in screen stores, sign-out clears.
export function storeSession(value) {
  if (value) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(STORAGE_KEY);
}

function authHeaders(cred = credential()) {
  const headers = {};
  if (!cred) return headers;
  if (cred.kind === 'key') headers['x-api-key'] = cred.secret;
  else headers['Authorization'] = `Bearer ${cred.secret}`;
  if (cred.workspace) headers[WORKSPACE_HEADER] = cred.workspace;
  return headers;
}

// -- errors in words --------------------------------------------------------------------------

const STATUS_WORDS = {
  400: 'Not accepted',
  401: 'Not signed in',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Changed by someone else',
  413: 'Too large',
  415: 'Unsupported content',
  422: 'Not accepted',
  429: 'Too many requests: wait a moment and try again',
  500: 'The server failed',
  502: 'The server could not reach a service it needs',
  503: 'The server is not available right now',
  504: 'The server took too long',
};

export class ApiError extends Error {
  constructor(status, envelope, fallback) {
    const detail = envelope && envelope.error ? envelope.error : null;
    const words = STATUS_WORDS[status] || `The server answered ${status}`;
    const message = detail && detail.message ? `${words}: ${detail.message}` : (fallback || words);
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.envelope = envelope || null;
    this.type = detail ? detail.type : null;
    this.requestId = envelope ? envelope.request_id || null : null;
  }
}

// -- the API client ---------------------------------------------------------------------------

export function querystring(query) {
  if (!query) return '';
  const parts = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      const name = key.endsWith('[]') ? key : `${key}[]`;
      for (const item of value) parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(item)}`);
    } else {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

async function errorOf(response) {
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null;
  }
  return new ApiError(response.status, envelope);
}

export async function api(method, path, { body, query, headers, raw } = {}) {
  const init = { method, headers: { ...authHeaders(), ...(headers || {}) } };
  if (body !== undefined) {
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(path + querystring(query), init);
  } catch (err) {
    throw new Error(`The server could not be reached (${err.message || err})`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && credential()) window.dispatchEvent(new CustomEvent('console:unauthorized'));
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export async function listAll(path, query = {}) {
  const rows = [];
  let page = null;
  for (let guard = 0; guard < 200; guard += 1) {
    const answer = await api('GET', path, { query: { limit: 100, ...query, ...(page ? { page } : {}) } });
    rows.push(...(answer.data || []));
    if (answer.next_page !== undefined) {
      page = answer.next_page;
    } else if (answer.has_more && answer.last_id) {
      // the organization's lists page by id, as the SDK's do
      page = null;
      query = { ...query, after_id: answer.last_id };
      if (answer.has_more) continue;
    }
    if (!page) break;
  }
  return rows;
}

// -- Server-sent events over fetch (EventSource cannot send the credential) -------------------

// A connection counts as steady (the backoff starts again from its shortest) after this long.
const STEADY_MS = 5000;

export function sse(path, { query, onEvent, onOpen, onError, lastEventId } = {}) {
  let lastId = lastEventId == null ? null : String(lastEventId);
  let closed = false;
  let controller = null;
  let delay = 500;

  function dispatch(frame) {
    let name = 'message';
    let id = null;
    const data = [];
    for (const line of frame.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (!data.length) return false;
    // Previews come without an id: the id to resume from stays the last stored event's.
    if (id !== null && id !== '') lastId = id;
    let parsed = data.join('\n');
    try {
      parsed = JSON.parse(parsed);
    } catch {
      // not JSON: handed over as text
    }
    if (onEvent) onEvent(name, parsed, id);
    return true;
  }

  async function connect() {
    while (!closed) {
      controller = new AbortController();
      const headers = { ...authHeaders(), accept: 'text/event-stream' };
      if (lastId !== null) headers['Last-Event-ID'] = lastId;
      try {
        const response = await fetch(path + querystring(query), { headers, signal: controller.signal });
        if (!response.ok) {
          const error = await errorOf(response);
          if (onError) onError(error);
          // A refusal (bad request, gone, not allowed) will not heal by retrying.
          if (response.status >= 400 && response.status < 500 && response.status !== 429) {
            closed = true;
            return;
          }
        } else {
          if (onOpen) onOpen();
          // The backoff resets only once the stream proved itself (an event, or a while up):
          // a stream that opens and drops at once keeps backing off instead of spinning.
          const openedAt = Date.now();
          let proven = false;
          const prove = () => {
            if (!proven && Date.now() - openedAt >= STEADY_MS) proven = true;
            if (proven) delay = 500;
          };
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              if (dispatch(frame)) proven = true;
            }
            prove();
          }
          prove();
        }
      } catch (err) {
        if (closed) return;
        if (onError) onError(err);
      }
      if (closed) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  connect();
  return {
    close() {
      closed = true;
      if (controller) controller.abort();
    },
    get lastEventId() {
      return lastId;
    },
  };
}

// -- DOM --------------------------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class' || key === 'className') element.className = value;
    else if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key.startsWith('data-')) element.dataset[key.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
    else if (key === 'value') element.value = value;
    else if (key === 'checked') element.checked = Boolean(value);
    else if (key === 'disabled') element.disabled = Boolean(value);
    else if (key === 'style' && typeof value === 'object') Object.assign(element.style, value);
    else if (value === true) element.setAttribute(key, '');
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

// -- form pieces shared by the screens -------------------------------------------------------

// The screen's root: the router's container when it already is the screen, else a new section.
export function rootOf(container, id) {
  if (container.dataset && container.dataset.screen === id) return container;
  const root = h('section', { 'data-screen': id, class: 'screen' });
  container.append(root);
  return root;
}

// A labelled input; clicking the label focuses the input (the input is inside the label).
export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input,
    hint ? h('small', { class: 'muted' }, hint) : null);
}

// Disables the button while `act` runs; on failure it is enabled again and the error shown.
async function runDisabled(button, act) {
  button.disabled = true;
  try {
    await act();
  } catch (err) {
    button.disabled = false;
    showError(err);
  }
}

// A button that runs `act` once per click, disabled while it runs (and after: the list reloads).
export function actionButton(label, action, act) {
  const button = h('button', { type: 'button', 'data-action': action }, label);
  button.onclick = () => runDisabled(button, act);
  return button;
}

// A destructive action: the first click arms it (the label asks to confirm), the second runs it.
export function armed(label, confirmLabel, action, act) {
  const button = h('button', { type: 'button', class: 'danger', 'data-action': action }, label);
  button.onclick = async () => {
    if (button.dataset.action === action) {
      button.dataset.action = `confirm-${action}`;
      button.textContent = confirmLabel;
      return;
    }
    await runDisabled(button, act);
  };
  return button;
}

export function sizeOf(bytes) {
  if (bytes == null) return '—';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// -- screens and the router -------------------------------------------------------------------

const screens = new Map();
const listeners = new Set();

export function registerScreen(id, { title, order = 1000, nav = true, render }) {
  screens.set(id, { id, title: title || id, order, nav, render });
  for (const listener of listeners) listener(id);
}

// app.js only
export function registeredScreens() {
  return [...screens.values()].sort((a, b) => a.order - b.order || a.id.localeCompare(b.id));
}

export function onRegister(listener) {
  listeners.add(listener);
}

export function navigate(hash) {
  const target = hash.startsWith('#') ? hash : `#${hash}`;
  if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else window.location.hash = target;
}

// -- banners ----------------------------------------------------------------------------------

function banner(role, text, kind) {
  const area = document.getElementById('banners') || document.body;
  const old = area.querySelector(`[data-role="${role}"]`);
  if (old) old.remove();
  const close = h('button', { class: 'banner-close', 'data-action': 'dismiss', title: 'Dismiss', onclick: () => node.remove() }, '×');
  const node = h('div', { class: `banner banner-${kind}`, 'data-role': role, role: role === 'error' ? 'alert' : 'status' }, h('span', {}, text), close);
  area.appendChild(node);
  return node;
}

export function showError(err) {
  if (err === null || err === undefined) return;
  let text = err instanceof Error ? err.message : String(err);
  if (err instanceof ApiError && err.requestId) text += ` (request ${err.requestId})`;
  // eslint-disable-next-line no-console
  console.error(err);
  banner('error', text, 'error');
}

export function clearError() {
  const old = document.querySelector('[data-role="error"]');
  if (old) old.remove();
}

export function notice(text) {
  const node = banner('notice', text, 'notice');
  setTimeout(() => node.remove(), 6000);
}

// -- widgets ----------------------------------------------------------------------------------

export function table(columns, rows) {
  const head = h('thead', {}, h('tr', {}, columns.map((column) => h('th', {}, column.title))));
  const body = h(
    'tbody',
    {},
    rows.length
      ? rows.map((row) => h('tr', {}, columns.map((column) => h('td', {}, column.render(row)))))
      : h('tr', {}, h('td', { colspan: String(columns.length), class: 'empty' }, 'Nothing here yet.')),
  );
  return h('table', { class: 'grid' }, head, body);
}

export function formatDate(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatCost(usd) {
  if (usd === null || usd === undefined || usd === '') return '';
  const value = Number(usd);
  if (!Number.isFinite(value)) return String(usd);
  if (value !== 0 && Math.abs(value) < 0.01) return `$${value.toFixed(4)}`;
  return `$${value.toFixed(2)}`;
}

export function formatTokens(n) {
  if (n === null || n === undefined || n === '') return '';
  const value = Number(n);
  if (!Number.isFinite(value)) return String(n);
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return value.toLocaleString();
}

export function badge(text, kind) {
  const tone = kind || String(text || '').toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('span', { class: `badge badge-${tone}` }, text);
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function barChart({ title, series = [], format = (v) => String(v) }) {
  const width = 560;
  const rowHeight = 22;
  const labelWidth = 170;
  const valueWidth = 80;
  const height = Math.max(1, series.length) * rowHeight + 8;
  const max = Math.max(0, ...series.map((item) => Number(item.value) || 0));
  const bars = series.map((item, index) => {
    const value = Number(item.value) || 0;
    const length = max > 0 ? ((width - labelWidth - valueWidth) * value) / max : 0;
    const y = index * rowHeight + 4;
    return svg(
      'g',
      {},
      svg('text', { x: labelWidth - 6, y: y + 14, 'text-anchor': 'end', class: 'chart-label' }, String(item.label)),
      svg('rect', { x: labelWidth, y: y + 2, width: Math.max(length, value > 0 ? 1 : 0), height: rowHeight - 6, class: 'chart-bar', rx: 2 }),
      svg('text', { x: labelWidth + length + 6, y: y + 14, class: 'chart-value' }, format(value)),
    );
  });
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title || 'chart' },
    series.length ? bars : svg('text', { x: 8, y: 16, class: 'chart-label' }, 'No data'),
  );
  return h('figure', { class: 'chart' }, title ? h('figcaption', {}, title) : null, chart);
}
