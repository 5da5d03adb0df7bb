// Vaults and their credentials. '#/vaults' lists vaults; '#/vaults/<vault id>' shows one with
// its credentials. Secret values (bearer tokens, OAuth access tokens, environment variable
// values) are write-only: typed into password inputs, sent, never shown; the API answers with
// the public part of `auth` only, and only named public fields are drawn from it.
import {
  api, armed, badge, field, formatDate, h, listAll, navigate, notice, registerScreen, rootOf, showError, table,
} from '../core.js';

const AUTH_TYPES = [
  ['static_bearer', 'MCP server, bearer token'],
  ['mcp_oauth', 'MCP server, OAuth access token'],
  ['environment_variable', 'Environment variable'],
];

function secretInput(name, required = true) {
  return h('input', { name, type: 'password', required, autocomplete: 'new-password', 'data-role': 'secret' });
}

function stateBadge(item) {
  return item.archived_at ? badge('archived', 'muted') : badge('active', 'ok');
}

// What of `auth` is drawn: its type and the fields the API documents as public.
function authSummary(auth) {
  const kind = (AUTH_TYPES.find(([id]) => id === auth.type) || [null, auth.type])[1];
  const parts = [];
  if (auth.mcp_server_url) parts.push(auth.mcp_server_url);
  if (auth.secret_name) parts.push(`$${auth.secret_name}`);
  if (auth.networking && auth.networking.type === 'limited') {
    parts.push(`hosts: ${(auth.networking.allowed_hosts || []).join(', ') || 'none'}`);
  }
  if (auth.expires_at) parts.push(`expires ${formatDate(auth.expires_at)}`);
  return h('div', {}, h('div', {}, kind), parts.length ? h('small', { class: 'muted' }, parts.join(' · ')) : null);
}

function hostsOf(text) {
  return text.split(/[\s,]+/).map((host) => host.trim()).filter(Boolean);
}

// The fields of one auth type; `update` leaves every secret optional (empty: keep it).
function authFields(type, update) {
  if (type === 'static_bearer') {
    return [
      update ? null : field('MCP server URL', h('input', { name: 'mcp_server_url', type: 'url', required: true })),
      field(update ? 'New token' : 'Token', secretInput('token', !update), update ? 'empty: keep the current one' : 'write-only'),
    ];
  }
  if (type === 'mcp_oauth') {
    return [
      update ? null : field('MCP server URL', h('input', { name: 'mcp_server_url', type: 'url', required: true })),
      field(update ? 'New access token' : 'Access token', secretInput('access_token', !update),
        update ? 'empty: keep the current one' : 'write-only'),
      field('Expires at', h('input', { name: 'expires_at', type: 'datetime-local' }), 'optional'),
    ];
  }
  const networking = h('select', { name: 'networking' },
    h('option', { value: '' }, update ? 'keep as it is' : 'unrestricted'),
    update ? h('option', { value: 'unrestricted' }, 'unrestricted') : null,
    h('option', { value: 'limited' }, 'limited to hosts'));
  return [
    update ? null : field('Variable name', h('input', { name: 'secret_name', required: true, pattern: '[A-Za-z_][A-Za-z0-9_]*' })),
    field(update ? 'New value' : 'Value', secretInput('secret_value', !update), update ? 'empty: keep the current one' : 'write-only'),
    field('Network access', networking),
    field('Allowed hosts', h('input', { name: 'allowed_hosts', placeholder: 'api.example.com, *.example.org' }),
      'with limited access'),
  ];
}

function authOf(form, type, update) {
  const value = (name) => (form.elements[name] ? form.elements[name].value.trim() : '');
  const secret = (name) => (form.elements[name] ? form.elements[name].value : '');
  const auth = { type };
  if (type === 'static_bearer') {
    if (!update) auth.mcp_server_url = value('mcp_server_url');
    if (secret('token')) auth.token = secret('token');
  } else if (type === 'mcp_oauth') {
    if (!update) auth.mcp_server_url = value('mcp_server_url');
    if (secret('access_token')) auth.access_token = secret('access_token');
    if (value('expires_at')) auth.expires_at = new Date(value('expires_at')).toISOString();
  } else {
    if (!update) auth.secret_name = value('secret_name');
    if (secret('secret_value')) auth.secret_value = secret('secret_value');
    const mode = value('networking') || (update ? '' : 'unrestricted');
    if (mode === 'limited') auth.networking = { type: 'limited', allowed_hosts: hostsOf(value('allowed_hosts')) };
    else if (mode) auth.networking = { type: 'unrestricted' };
  }
  return auth;
}

async function saving(form, call) {
  const button = form.querySelector('[type="submit"]');
  button.disabled = true;
  try {
    const saved = await call();
    form.reset();
    return saved;
  } catch (err) {
    showError(err);
    return null;
  } finally {
    button.disabled = false;
  }
}

function vaultList(root, state) {
  const listBox = h('div', { 'data-role': 'list' }, 'Loading…');
  const formBox = h('div', { 'data-role': 'form' });
  let includeArchived = false;

  async function load() {
    try {
      const vaults = await listAll('/v1/vaults', { limit: 100, include_archived: includeArchived });
      if (!state.alive) return;
      listBox.replaceChildren(vaults.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'No vaults yet. A vault holds the credentials sessions use.')
        : table([
          {
            title: 'Vault',
            render: (v) => h('a', { href: `#/vaults/${encodeURIComponent(v.id)}`, 'data-id': v.id }, v.display_name),
          },
          { title: 'Id', render: (v) => h('code', {}, v.id) },
          { title: 'State', render: stateBadge },
          { title: 'Created', render: (v) => formatDate(v.created_at) },
          {
            title: '',
            render: (v) => h('div', { class: 'inline' },
              h('button', { type: 'button', 'data-action': 'open', onclick: () => navigate(`#/vaults/${v.id}`) }, 'Credentials'),
              v.archived_at ? null : armed('Archive', `Archive ${v.display_name}?`, 'archive', async () => {
                await api('POST', `/v1/vaults/${encodeURIComponent(v.id)}/archive`);
                notice(`Vault ${v.display_name} archived.`);
                load();
              }),
              armed('Delete', `Delete ${v.display_name}?`, 'delete', async () => {
                await api('DELETE', `/v1/vaults/${encodeURIComponent(v.id)}`);
                notice(`Vault ${v.display_name} deleted; its secrets are unreadable everywhere.`);
                load();
              })),
          },
        ], vaults));
      root.dataset.loaded = 'true';
    } catch (err) {
      showError(err);
    }
  }

  function showCreate() {
    const form = h('form', { class: 'card', 'data-role': 'create-form' },
      h('h2', {}, 'New vault'),
      field('Name', h('input', { name: 'display_name', required: true })),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Create'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = { display_name: form.elements.display_name.value.trim() };
      const vault = await saving(form, () => api('POST', '/v1/vaults', { body }));
      if (vault) {
        formBox.replaceChildren();
        notice(`Vault ${vault.display_name} created.`);
        navigate(`#/vaults/${vault.id}`);
      }
    };
    formBox.replaceChildren(form);
    form.elements.display_name.focus();
  }

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'Vaults'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' },
        h('label', { class: 'check' }, h('input', {
          type: 'checkbox', 'data-role': 'include-archived',
          onchange: (event) => { includeArchived = event.target.checked; load(); },
        }), ' show archived'),
        h('button', { type: 'button', 'data-action': 'create', onclick: showCreate }, 'New vault'))),
    formBox,
    listBox,
  );
  load();
}

function vaultPage(root, state, vaultId) {
  const path = `/v1/vaults/${encodeURIComponent(vaultId)}`;
  const title = h('h1', {}, 'Vault');
  const listBox = h('div', { 'data-role': 'credentials' }, 'Loading…');
  const formBox = h('div', { 'data-role': 'form' });
  let includeArchived = false;

  async function load() {
    try {
      const [vault, credentials] = await Promise.all([
        api('GET', path),
        listAll(`${path}/credentials`, { limit: 100, include_archived: includeArchived }),
      ]);
      if (!state.alive) return;
      title.replaceChildren(`Vault ${vault.display_name} `, stateBadge(vault));
      listBox.replaceChildren(credentials.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'No credentials in this vault yet.')
        : table([
          { title: 'Credential', render: (c) => h('strong', { 'data-id': c.id }, c.display_name || c.id) },
          { title: 'Kind', render: (c) => authSummary(c.auth || {}) },
          { title: 'Secret', render: () => h('span', { class: 'muted', 'data-role': 'secret-hidden' }, 'write-only') },
          { title: 'State', render: stateBadge },
          { title: 'Updated', render: (c) => formatDate(c.updated_at) },
          {
            title: '',
            render: (c) => h('div', { class: 'inline' },
              c.archived_at ? null : h('button', { type: 'button', 'data-action': 'rotate', onclick: () => showRotate(c) }, 'Rotate secret'),
              c.archived_at ? null : armed('Archive', 'Archive it?', 'archive', async () => {
                await api('POST', `${path}/credentials/${encodeURIComponent(c.id)}/archive`);
                notice('Credential archived.');
                load();
              }),
              armed('Delete', 'Delete it?', 'delete', async () => {
                await api('DELETE', `${path}/credentials/${encodeURIComponent(c.id)}`);
                notice('Credential deleted; its secrets are unreadable everywhere.');
                load();
              })),
          },
        ], credentials));
      root.dataset.loaded = 'true';
    } catch (err) {
      listBox.replaceChildren(h('p', { class: 'muted' }, 'This vault could not be loaded.'));
      showError(err);
    }
  }

  function showCreate() {
    const typeSelect = h('select', { name: 'type', 'data-role': 'auth-type' },
      AUTH_TYPES.map(([id, label]) => h('option', { value: id }, label)));
    const fields = h('div', { class: 'auth-fields' }, authFields(AUTH_TYPES[0][0], false));
    typeSelect.onchange = () => fields.replaceChildren(...authFields(typeSelect.value, false).filter(Boolean));
    const form = h('form', { class: 'card', 'data-role': 'credential-form' },
      h('h2', {}, 'New credential'),
      field('Name', h('input', { name: 'display_name', placeholder: 'optional' })),
      field('Kind', typeSelect),
      fields,
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Add credential'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = { auth: authOf(form, typeSelect.value, false) };
      const name = form.elements.display_name.value.trim();
      if (name) body.display_name = name;
      const saved = await saving(form, () => api('POST', `${path}/credentials`, { body }));
      if (saved) {
        formBox.replaceChildren();
        notice('Credential added.');
        load();
      }
    };
    formBox.replaceChildren(form);
  }

  function showRotate(credential) {
    const type = (credential.auth || {}).type;
    const form = h('form', { class: 'card', 'data-role': 'rotate-form', 'data-id': credential.id },
      h('h2', {}, `Rotate ${credential.display_name || credential.id}`),
      field('Name', h('input', { name: 'display_name', value: credential.display_name || '' })),
      authFields(type, true),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Save'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = {};
      const auth = authOf(form, type, true);
      if (Object.keys(auth).length > 1) body.auth = auth;
      const name = form.elements.display_name.value.trim();
      if (name !== (credential.display_name || '')) body.display_name = name || null;
      const saved = await saving(form, () => api('POST', `${path}/credentials/${encodeURIComponent(credential.id)}`, { body }));
      if (saved) {
        formBox.replaceChildren();
        notice('Credential saved.');
        load();
      }
    };
    formBox.replaceChildren(form);
  }

  root.append(
    h('p', {}, h('a', { href: '#/vaults', 'data-action': 'back' }, '← All vaults')),
    h('header', { class: 'toolbar' }, title,
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' },
        h('label', { class: 'check' }, h('input', {
          type: 'checkbox', 'data-role': 'include-archived',
          onchange: (event) => { includeArchived = event.target.checked; load(); },
        }), ' show archived'),
        h('button', { type: 'button', 'data-action': 'add-credential', onclick: showCreate }, 'New credential'))),
    formBox,
    listBox,
  );
  load();
}

function render(container, params) {
  const root = rootOf(container, 'vaults');
  const state = { alive: true };
  if (params && params[0]) vaultPage(root, state, params[0]);
  else vaultList(root, state);
  return () => { state.alive = false; };
}

registerScreen('vaults', { title: 'Vaults', order: 70, render });
