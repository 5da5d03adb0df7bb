// API keys of the workspaces the caller reaches: list (by status), create, rename, change the
// role, make inactive (revoke; reversible), reactivate and archive (final). A new key is shown
// exactly once, in [data-role="once-secret"] with a copy button; it lives only in that element
// and is gone when the panel is dismissed or the screen left. The API has no DELETE for keys:
// archiving is the end of a key.
import {
  actionButton, api, armed, badge, field, formatDate, h, notice, registerScreen, rootOf, session, showError, table,
} from '../core.js';

const STATUS_KIND = { active: 'ok', inactive: 'warn', archived: 'muted', expired: 'muted' };

// The key list pages by id (after_id / has_more), not by the page token listAll follows.
async function allKeys(query) {
  const found = [];
  let after = null;
  for (let guard = 0; guard < 50; guard += 1) {
    const answer = await api('GET', '/v1/organizations/api_keys', { query: after ? { ...query, after_id: after } : query });
    found.push(...(answer.data || []));
    if (!answer.has_more || !answer.last_id) break;
    after = answer.last_id;
  }
  return found;
}

async function workspaceChoices() {
  try {
    const answer = await api('GET', '/v1/organizations/workspaces', { query: { limit: 100, include_default: true } });
    return (answer.data || []).map((workspace) => [workspace.id, workspace.name || workspace.id]);
  } catch {
    return null; // a caller that may not list workspaces types the id instead
  }
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission: select the text for the person to copy.
    const selection = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents(button.parentElement.querySelector('code'));
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand('copy');
  }
  button.textContent = 'Copied';
  button.dataset.copied = 'true';
}

function render(container) {
  const root = rootOf(container, 'api_keys');
  let alive = true;
  let status = 'active';
  const onceBox = h('div', { 'data-role': 'once-box' });
  const formBox = h('div', { 'data-role': 'form' });
  const listBox = h('div', { 'data-role': 'list' }, 'Loading…');

  function showOnce(created) {
    const keyText = h('code', { 'data-role': 'key' }, created.key);
    const copyButton = h('button', { type: 'button', 'data-action': 'copy' }, 'Copy');
    copyButton.onclick = () => copy(created.key, copyButton);
    onceBox.replaceChildren(h('div', { class: 'once-secret', 'data-role': 'once-secret' },
      h('p', {}, h('strong', {}, `Key ${created.name} created. `),
        'Copy it now: it is shown this once and cannot be shown again.'),
      h('div', { class: 'row' }, keyText, copyButton),
      h('button', { type: 'button', 'data-action': 'dismiss', onclick: () => onceBox.replaceChildren() }, 'I have copied it')));
  }

  async function change(key, body, said) {
    await api('POST', `/v1/organizations/api_keys/${encodeURIComponent(key.id)}`, { body });
    notice(said);
    load();
  }

  function rowActions(key) {
    const buttons = [actionButton('Rename', 'rename', async () => showRename(key))];
    if (key.status === 'active') {
      buttons.push(armed('Revoke', `Revoke ${key.name}?`, 'revoke', () => change(key, { status: 'inactive' },
        `Key ${key.name} revoked: it is refused from the next request on.`)));
      buttons.push(actionButton(key.role === 'admin' ? 'Make member' : 'Make admin', 'role',
        () => change(key, { role: key.role === 'admin' ? 'member' : 'admin' }, `Key ${key.name} is now ${key.role === 'admin' ? 'a member' : 'an admin'}.`)));
    } else if (key.status === 'inactive') {
      buttons.push(actionButton('Reactivate', 'reactivate', () => change(key, { status: 'active' }, `Key ${key.name} is active again.`)));
    }
    if (key.status !== 'archived') {
      buttons.push(armed('Archive', `Archive ${key.name} for good?`, 'archive', () => change(key, { status: 'archived' },
        `Key ${key.name} archived for good.`)));
    }
    return h('div', { class: 'inline' }, buttons);
  }

  async function load() {
    try {
      const keys = await allKeys(status ? { limit: 100, status } : { limit: 100 });
      if (!alive) return;
      listBox.replaceChildren(keys.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'No keys with this status.')
        : table([
          { title: 'Name', render: (k) => h('strong', { 'data-id': k.id }, k.name) },
          { title: 'Key', render: (k) => h('code', { 'data-role': 'key-hint' }, k.partial_key_hint) },
          { title: 'Workspace', render: (k) => (k.scope && k.scope.workspace_id) || '—' },
          { title: 'Role', render: (k) => k.role },
          { title: 'Status', render: (k) => badge(k.status, STATUS_KIND[k.status] || 'muted') },
          { title: 'Created', render: (k) => formatDate(k.created_at) },
          { title: '', render: rowActions },
        ], keys));
      root.dataset.loaded = 'true';
    } catch (err) {
      showError(err);
    }
  }

  function showRename(key) {
    const form = h('form', { class: 'card', 'data-role': 'rename-form' },
      field('New name', h('input', { name: 'name', required: true, value: key.name })),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Rename'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      try {
        await change(key, { name: form.elements.name.value.trim() }, 'Key renamed.');
        formBox.replaceChildren();
      } catch (err) {
        showError(err);
      }
    };
    formBox.replaceChildren(form);
  }

  async function showCreate() {
    const choices = await workspaceChoices();
    let current = 'default';
    try {
      current = (session() || {}).workspace || 'default';
    } catch {
      // not signed in: the API will say so
    }
    const workspaceInput = choices && choices.length
      ? h('select', { name: 'workspace_id' }, choices.map(([id, name]) => {
        const option = h('option', { value: id }, name === id ? id : `${name} (${id})`);
        if (id === current) option.selected = true;
        return option;
      }))
      : h('input', { name: 'workspace_id', value: current });
    const form = h('form', { class: 'card', 'data-role': 'create-form' },
      h('h2', {}, 'New API key'),
      field('Name', h('input', { name: 'name', required: true })),
      field('Workspace', workspaceInput),
      field('Role', h('select', { name: 'role' },
        h('option', { value: 'member' }, 'member'), h('option', { value: 'admin' }, 'admin'))),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Create key'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const button = form.querySelector('[type="submit"]');
      button.disabled = true;
      try {
        const body = { name: form.elements.name.value.trim(), role: form.elements.role.value };
        const workspace = form.elements.workspace_id.value.trim();
        if (workspace) body.workspace_id = workspace;
        const created = await api('POST', '/v1/organizations/api_keys', { body });
        formBox.replaceChildren();
        showOnce(created);
        load();
      } catch (err) {
        showError(err);
      } finally {
        button.disabled = false;
      }
    };
    formBox.replaceChildren(form);
    form.elements.name.focus();
  }

  const statusSelect = h('select', {
    'data-role': 'status-filter',
    onchange: (event) => { status = event.target.value; load(); },
  }, [['active', 'active'], ['inactive', 'revoked'], ['archived', 'archived'], ['', 'all']]
    .map(([value, label]) => h('option', { value }, label)));

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'API keys'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' }, statusSelect,
        h('button', { type: 'button', 'data-action': 'create', onclick: () => showCreate() }, 'New API key'))),
    onceBox,
    formBox,
    listBox,
  );
  load();
  return () => { alive = false; onceBox.replaceChildren(); };
}

registerScreen('api_keys', { title: 'API keys', order: 80, render });
