// The console shell: sign-in, the left nav, the hash router and the screen modules, loaded
// from the list the server found at start-up (screens.json).

import {
  ApiError,
  api,
  clearError,
  h,
  navigate,
  onRegister,
  registeredScreens,
  session,
  showError,
  storeSession,
} from './core.js';

const ASSETS = '/console/assets/';
const root = document.getElementById('app');
let current = null; // {id, cleanup, token}
let renderToken = 0;
let screensLoaded = false;

// -- sign-in ----------------------------------------------------------------------------------

async function workspacesOf(secret) {
  const me = await api('GET', '/v1/auth/me', { headers: { Authorization: `Bearer ${secret}` } });
  let ids = Object.keys(me.workspaces || {});
  if (!ids.length && me.role === 'admin') {
    try {
      const listed = await api('GET', '/v1/organizations/workspaces', { headers: { Authorization: `Bearer ${secret}` }, query: { limit: 100 } });
      ids = (listed.data || []).map((workspace) => workspace.id);
    } catch {
      ids = [];
    }
  }
  if (me.role === 'admin' && !ids.includes('default')) ids.unshift('default');
  return { me, ids: ids.sort((a, b) => (a === 'default' ? -1 : b === 'default' ? 1 : a.localeCompare(b))) };
}

function renderSignIn(message) {
  teardown();
  root.replaceChildren();
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, placeholder: 'you@example.com' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const totp = h('input', { type: 'text', name: 'totp_code', inputmode: 'numeric', autocomplete: 'one-time-code', placeholder: 'only if enabled' });
  const workspaceRow = h('div', { class: 'field', hidden: true });
  let pending = null; // {secret, user, ids}

  const loginForm = h(
    'form',
    {
      class: 'card',
      'data-role': 'login-form',
      onsubmit: async (event) => {
        event.preventDefault();
        clearError();
        try {
          if (pending) {
            const select = workspaceRow.querySelector('select');
            finishLogin(pending.secret, pending.user, select.value);
            return;
          }
          const body = { email: email.value.trim(), password: password.value };
          if (totp.value.trim()) body.totp_code = totp.value.trim();
          const answer = await api('POST', '/v1/auth/login', { body });
          const { me, ids } = await workspacesOf(answer.access_token);
          const user = { id: me.id, email: me.email, name: me.name || me.email, role: me.role };
          if (ids.length > 1) {
            pending = { secret: answer.access_token, user, ids };
            workspaceRow.replaceChildren(
              h('label', { for: 'workspace' }, 'Workspace'),
              h('select', { id: 'workspace', name: 'workspace' }, ids.map((id) => h('option', { value: id }, id))),
            );
            workspaceRow.hidden = false;
            loginForm.querySelector('[data-action="sign-in"]').textContent = 'Continue';
            return;
          }
          finishLogin(answer.access_token, user, ids[0] || null);
        } catch (err) {
          showError(err);
        }
      },
    },
    h('h2', {}, 'Sign in'),
    h('div', { class: 'field' }, h('label', {}, 'Email'), email),
    h('div', { class: 'field' }, h('label', {}, 'Password'), password),
    h('div', { class: 'field' }, h('label', {}, 'Second factor code'), totp),
    workspaceRow,
    h('button', { type: 'submit', class: 'primary', 'data-action': 'sign-in' }, 'Sign in'),
  );

  const key = h('input', { type: 'password', name: 'api_key', autocomplete: 'off', required: true, placeholder: 'agentry-…' });
  const keyForm = h(
    'form',
    {
      class: 'card',
      'data-role': 'key-form',
      onsubmit: async (event) => {
        event.preventDefault();
        clearError();
        try {
          // Checked before it is kept: a wrong key is said so here, not on the next screen.
          await api('GET', '/v1/agents', { query: { limit: 1 }, headers: { 'x-api-key': key.value.trim() } });
          storeSession({ kind: 'key', secret: key.value.trim(), workspace: null, user: null });
          start();
        } catch (err) {
          showError(err);
        }
      },
    },
    h('h2', {}, 'Or use an API key'),
    h('div', { class: 'field' }, h('label', {}, 'API key'), key),
    h('button', { type: 'submit', 'data-action': 'use-key' }, 'Use this key'),
  );

  root.appendChild(
    h(
      'div',
      { class: 'signin', 'data-screen': 'login' },
      h('h1', {}, 'Agentry console'),
      message ? h('p', { class: 'muted' }, message) : null,
      h('div', { class: 'signin-forms' }, loginForm, keyForm),
    ),
  );
  email.focus();
}

function finishLogin(secret, user, workspace) {
  storeSession({ kind: 'login', secret, workspace, user, workspaces: null });
  start();
}

function signOut(message) {
  const stored = session();
  storeSession(null);
  if (window.location.hash) history.replaceState(null, '', window.location.pathname);
  renderSignIn(message || (stored ? 'Signed out.' : ''));
}

window.addEventListener('console:unauthorized', () => {
  signOut('Your sign-in is no longer valid: sign in again.');
  showError(new ApiError(401, null));
});

// -- the shell --------------------------------------------------------------------------------

function renderShell() {
  const who = session();
  const label = who.kind === 'key' ? 'API key' : who.user ? who.user.email : 'signed in';
  const nav = h('nav', { class: 'nav', 'data-role': 'nav' });
  const main = h('main', { class: 'content', id: 'content' });
  root.replaceChildren(
    h(
      'div',
      { class: 'shell' },
      h(
        'aside',
        { class: 'sidebar' },
        h('div', { class: 'brand' }, 'Agentry'),
        nav,
        h(
          'div',
          { class: 'who' },
          h('div', { class: 'muted', 'data-role': 'who' }, label),
          who.workspace ? h('div', { class: 'muted', 'data-role': 'workspace' }, `workspace: ${who.workspace}`) : null,
          h('button', { class: 'link', 'data-action': 'sign-out', onclick: () => signOut() }, 'Sign out'),
        ),
      ),
      main,
    ),
  );
  renderNav();
}

function renderNav() {
  const nav = root.querySelector('[data-role="nav"]');
  if (!nav) return;
  const shown = registeredScreens();
  let active = parseHash().id;
  // A screen outside the nav (one session) lights up its list's entry (sessions).
  if (!shown.some((screen) => screen.nav && screen.id === active)) active = `${active}s`;
  nav.replaceChildren(
    ...shown
      .filter((screen) => screen.nav)
      .map((screen) => h('a', { href: `#/${screen.id}`, 'data-nav': screen.id, class: screen.id === active ? 'active' : '' }, screen.title)),
  );
}

function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return null; // a malformed escape (#/session/%E0): no such page
  }
}

function parseHash() {
  const parts = window.location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decoded);
  if (parts.includes(null)) return { id: null, params: [], malformed: true };
  return { id: parts[0] || null, params: parts.slice(1) };
}

function teardown() {
  if (current && typeof current.cleanup === 'function') {
    try {
      current.cleanup();
    } catch (err) {
      showError(err);
    }
  }
  current = null;
}

function notFound(text) {
  return h('div', { class: 'card', 'data-screen': 'missing' }, h('h1', {}, 'Not found'), h('p', {}, text));
}

async function route() {
  if (!session()) return;
  const content = document.getElementById('content');
  if (!content) return;
  let { id, params, malformed } = parseHash();
  const screens = registeredScreens();
  if (malformed) {
    renderNav();
    teardown();
    ++renderToken;
    content.replaceChildren(notFound('This address is not one the console knows.'));
    return;
  }
  if (!id) {
    const first = screens.find((screen) => screen.nav);
    if (!first) {
      if (screensLoaded) content.replaceChildren(h('p', { class: 'muted' }, 'No screens are installed.'));
      return;
    }
    history.replaceState(null, '', `#/${first.id}`);
    ({ id, params } = parseHash());
  }
  const screen = screens.find((candidate) => candidate.id === id);
  renderNav();
  teardown();
  const token = ++renderToken;
  if (!screen) {
    content.replaceChildren(
      screensLoaded ? notFound(`There is no screen "${id}".`) : h('p', { class: 'muted' }, 'Loading…'),
    );
    return;
  }
  const container = h('section', { class: 'screen', 'data-screen': screen.id });
  content.replaceChildren(container);
  clearError();
  let cleanup = null;
  try {
    cleanup = await screen.render(container, params);
  } catch (err) {
    showError(err);
  }
  if (token !== renderToken) {
    // Left before it finished drawing: undo what it started.
    if (typeof cleanup === 'function') cleanup();
    return;
  }
  current = { id: screen.id, cleanup };
}

async function loadScreens() {
  let names = [];
  try {
    const response = await fetch(`${ASSETS}screens.json`);
    names = await response.json();
  } catch (err) {
    showError(new Error(`The list of screens could not be loaded (${err.message || err})`));
  }
  await Promise.all(
    names.map((name) =>
      import(`${ASSETS}screens/${name}`).catch((err) => showError(new Error(`The screen ${name} failed to load: ${err.message || err}`))),
    ),
  );
  screensLoaded = true;
}

let registered = false;

async function start() {
  if (!session()) {
    renderSignIn('');
    return;
  }
  renderShell();
  if (!registered) {
    registered = true;
    // A screen that registers late (modules load in parallel) appears in the nav at once.
    onRegister(() => renderNav());
    await loadScreens();
  }
  route();
}

window.addEventListener('hashchange', () => route());
start();

export { navigate };
