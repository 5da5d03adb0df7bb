// Model cards: list, create, edit (rotate the key, change the base URL, wire model, headers)
// and delete. The provider key and header values are write-only: typed into password inputs,
// sent once, and never shown again (the list shows the API's `api_key_preview`, the key's last
// four characters, and header names only).
import {
  api, badge, field, formatDate, h, listAll, notice, registerScreen, rootOf, showError, table,
} from '../core.js';

const PROVIDERS = [
  ['ant', 'Anthropic'],
  ['ant-compatible', 'Anthropic-compatible'],
  ['oai', 'OpenAI'],
  ['oai-compatible', 'OpenAI-compatible'],
];

function providerSelect(value) {
  return h('select', { name: 'provider', required: true },
    PROVIDERS.map(([id, label]) => {
      const option = h('option', { value: id }, label);
      if (id === value) option.selected = true;
      return option;
    }));
}

// Header rows: a name in the clear, the value in a password input.
function headerEditor() {
  const rows = h('div', { class: 'header-rows' });
  const addRow = () => rows.append(h('div', { class: 'row', 'data-role': 'header-row' },
    h('input', { name: 'header_name', placeholder: 'Header-Name', autocomplete: 'off' }),
    h('input', { name: 'header_value', type: 'password', placeholder: 'value (write-only)', autocomplete: 'new-password' })));
  const box = h('div', { class: 'field' },
    h('span', { class: 'field-label' }, 'Custom headers'), rows,
    h('button', { type: 'button', 'data-action': 'add-header', onclick: addRow }, 'Add a header'));
  box.headers = () => {
    const found = {};
    for (const row of rows.querySelectorAll('[data-role="header-row"]')) {
      const name = row.querySelector('[name="header_name"]').value.trim();
      if (name) found[name] = row.querySelector('[name="header_value"]').value;
    }
    return found;
  };
  box.clear = () => rows.replaceChildren();
  return box;
}

function probeCell(card) {
  const probe = card.probe || {};
  if (probe.ok === true) return badge('checked', 'ok');
  if (probe.ok === false) return badge(`check failed${probe.message ? `: ${probe.message}` : ''}`, 'error');
  return badge('not checked', 'muted');
}

function render(container, params) {
  const root = rootOf(container, 'model_cards');
  let alive = true;
  const listBox = h('div', { 'data-role': 'list' }, 'Loading…');
  const formBox = h('div', { 'data-role': 'form' });

  async function load() {
    try {
      const cards = await listAll('/v1/model_cards', { limit: 100 });
      if (!alive) return;
      draw(cards);
      root.dataset.loaded = 'true';
    } catch (err) {
      showError(err);
    }
  }

  function draw(cards) {
    if (cards.length === 0) {
      listBox.replaceChildren(h('p', { class: 'muted', 'data-role': 'empty' },
        'No model cards yet. A model card lets agents use a provider account or a compatible server of your own.'));
      return;
    }
    listBox.replaceChildren(table([
      { title: 'Handle', render: (c) => h('strong', { 'data-id': c.id }, c.model_id) },
      { title: 'Provider', render: (c) => (PROVIDERS.find(([id]) => id === c.provider) || [null, c.provider])[1] },
      { title: 'Wire model', render: (c) => c.model },
      { title: 'Base URL', render: (c) => c.base_url || '—' },
      { title: 'Key', render: (c) => h('code', { 'data-role': 'key-preview' }, `…${c.api_key_preview}`) },
      { title: 'Headers', render: (c) => Object.keys(c.custom_headers || {}).join(', ') || '—' },
      { title: 'Check', render: probeCell },
      { title: 'Updated', render: (c) => formatDate(c.updated_at) },
      {
        title: '',
        render: (c) => h('div', { class: 'inline' },
          h('button', { type: 'button', 'data-action': 'edit', onclick: () => showEdit(c) }, 'Edit'),
          deleteButton(c)),
      },
    ], cards));
  }

  // Two clicks: the first arms the button, the second deletes.
  function deleteButton(card) {
    const button = h('button', { type: 'button', class: 'danger', 'data-action': 'delete' }, 'Delete');
    button.onclick = async () => {
      if (button.dataset.action === 'delete') {
        button.dataset.action = 'confirm-delete';
        button.textContent = `Delete ${card.model_id}?`;
        return;
      }
      button.disabled = true;
      try {
        await api('DELETE', `/v1/model_cards/${encodeURIComponent(card.id)}`);
        notice(`Model card ${card.model_id} deleted; its key is unreadable everywhere.`);
        load();
      } catch (err) {
        button.disabled = false;
        showError(err);
      }
    };
    return button;
  }

  function showCreate() {
    const headers = headerEditor();
    const form = h('form', { class: 'card', 'data-role': 'create-form' },
      h('h2', {}, 'New model card'),
      field('Handle', h('input', { name: 'model_id', required: true, placeholder: 'e.g. house-sonnet' }),
        'the name an agent’s model field uses'),
      field('Provider', providerSelect('ant')),
      field('Wire model', h('input', { name: 'model', placeholder: 'defaults to the handle' })),
      field('Base URL', h('input', { name: 'base_url', type: 'url', placeholder: 'https://… (optional)' })),
      field('API key', h('input', { name: 'api_key', type: 'password', required: true, autocomplete: 'new-password' }),
        'write-only: it is never shown again'),
      headers,
      h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: 'skip_probe', 'data-role': 'skip-probe' }),
        ' skip the provider check'),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Create'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const value = (name) => form.elements[name].value.trim();
      const body = {
        model_id: value('model_id'),
        provider: form.elements.provider.value,
        api_key: form.elements.api_key.value,
        probe: !form.elements.skip_probe.checked,
      };
      if (value('model')) body.model = value('model');
      if (value('base_url')) body.base_url = value('base_url');
      const custom = headers.headers();
      if (Object.keys(custom).length) body.custom_headers = custom;
      await submit(form, () => api('POST', '/v1/model_cards', { body }), (card) => `Model card ${card.model_id} created.`);
    };
    formBox.replaceChildren(form);
    form.elements.model_id.focus();
  }

  function showEdit(card) {
    const headers = headerEditor();
    const form = h('form', { class: 'card', 'data-role': 'edit-form', 'data-id': card.id },
      h('h2', {}, `Edit ${card.model_id}`),
      field('Handle', h('input', { name: 'model_id', required: true, value: card.model_id })),
      field('Provider', providerSelect(card.provider)),
      field('Wire model', h('input', { name: 'model', value: card.model || '' })),
      field('Base URL', h('input', { name: 'base_url', type: 'url', value: card.base_url || '' }), 'empty: none'),
      field('New API key', h('input', { name: 'api_key', type: 'password', autocomplete: 'new-password' }),
        `leave empty to keep the current key (…${card.api_key_preview})`),
      headers,
      h('small', { class: 'muted' }, Object.keys(card.custom_headers || {}).length
        ? `Headers given here replace ${Object.keys(card.custom_headers).join(', ')}; none given keeps them.`
        : 'No custom headers now.'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'clear_headers' }), ' remove every custom header'),
      h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: 'skip_probe', 'data-role': 'skip-probe' }),
        ' skip the provider check'),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Save'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const value = (name) => form.elements[name].value.trim();
      const body = { probe: !form.elements.skip_probe.checked };
      if (value('model_id') !== card.model_id) body.model_id = value('model_id');
      if (form.elements.provider.value !== card.provider) body.provider = form.elements.provider.value;
      if (value('model') && value('model') !== card.model) body.model = value('model');
      if (value('base_url') !== (card.base_url || '')) body.base_url = value('base_url') || null;
      if (form.elements.api_key.value) body.api_key = form.elements.api_key.value;
      const custom = headers.headers();
      if (form.elements.clear_headers.checked) body.custom_headers = null;
      else if (Object.keys(custom).length) body.custom_headers = custom;
      await submit(form, () => api('POST', `/v1/model_cards/${encodeURIComponent(card.id)}`, { body }),
        (saved) => `Model card ${saved.model_id} saved.`);
    };
    formBox.replaceChildren(form);
  }

  // On success the form, and the secrets typed into it, leave the page.
  async function submit(form, call, said) {
    const button = form.querySelector('[type="submit"]');
    button.disabled = true;
    try {
      const saved = await call();
      form.reset();
      formBox.replaceChildren();
      notice(said(saved));
      load();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'Model cards'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' },
        h('button', { type: 'button', 'data-action': 'create', onclick: showCreate }, 'New model card'))),
    formBox,
    listBox,
  );
  load();
  if (params && params[0] === 'new') showCreate();
  return () => { alive = false; };
}

registerScreen('model_cards', { title: 'Model cards', order: 60, render });
