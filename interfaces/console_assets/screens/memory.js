// Memory stores: '#/memory' lists them; '#/memory/<store id>' shows one store's memories by
// path, creates, edits and deletes memories, and searches them by meaning
// (POST /v1/memory_stores/{id}/search, best first with a score).
import {
  api, armed, badge, field, formatDate, h, listAll, navigate, notice, registerScreen, rootOf, showError, sizeOf, table,
} from '../core.js';

function formButtons(label, formBox) {
  return h('div', { class: 'inline' },
    h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, label),
    h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel'));
}

async function submitting(form, call) {
  const button = form.querySelector('[type="submit"]');
  button.disabled = true;
  try {
    return await call();
  } catch (err) {
    showError(err);
    return null;
  } finally {
    button.disabled = false;
  }
}

function storeList(root, state) {
  const listBox = h('div', { 'data-role': 'list' }, 'Loading…');
  const formBox = h('div', { 'data-role': 'form' });
  let includeArchived = false;

  async function load() {
    try {
      const stores = await listAll('/v1/memory_stores', { limit: 100, include_archived: includeArchived });
      if (!state.alive) return;
      listBox.replaceChildren(stores.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'No memory stores yet. Agents read and write memories in a store mounted into their sessions.')
        : table([
          {
            title: 'Store',
            render: (s) => h('a', { href: `#/memory/${encodeURIComponent(s.id)}`, 'data-id': s.id }, s.name),
          },
          { title: 'Description', render: (s) => s.description || '—' },
          { title: 'State', render: (s) => (s.archived_at ? badge('archived', 'muted') : badge('active', 'ok')) },
          { title: 'Created', render: (s) => formatDate(s.created_at) },
          {
            title: '',
            render: (s) => h('div', { class: 'inline' },
              h('button', { type: 'button', 'data-action': 'open', onclick: () => navigate(`#/memory/${s.id}`) }, 'Memories'),
              s.archived_at ? null : armed('Archive', `Archive ${s.name}? (its memories become read-only)`, 'archive', async () => {
                await api('POST', `/v1/memory_stores/${encodeURIComponent(s.id)}/archive`);
                notice(`Memory store ${s.name} archived.`);
                load();
              }),
              armed('Delete', `Delete ${s.name} and its memories?`, 'delete', async () => {
                await api('DELETE', `/v1/memory_stores/${encodeURIComponent(s.id)}`);
                notice(`Memory store ${s.name} deleted.`);
                load();
              })),
          },
        ], stores));
      root.dataset.loaded = 'true';
    } catch (err) {
      showError(err);
    }
  }

  function showCreate() {
    const form = h('form', { class: 'card', 'data-role': 'create-form' },
      h('h2', {}, 'New memory store'),
      field('Name', h('input', { name: 'name', required: true })),
      field('Description', h('input', { name: 'description', placeholder: 'optional' })),
      formButtons('Create', formBox));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = { name: form.elements.name.value.trim() };
      const description = form.elements.description.value.trim();
      if (description) body.description = description;
      const store = await submitting(form, () => api('POST', '/v1/memory_stores', { body }));
      if (store) {
        formBox.replaceChildren();
        notice(`Memory store ${store.name} created.`);
        navigate(`#/memory/${store.id}`);
      }
    };
    formBox.replaceChildren(form);
    form.elements.name.focus();
  }

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'Memory'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' },
        h('label', { class: 'check' }, h('input', {
          type: 'checkbox', 'data-role': 'include-archived',
          onchange: (event) => { includeArchived = event.target.checked; load(); },
        }), ' show archived'),
        h('button', { type: 'button', 'data-action': 'create', onclick: showCreate }, 'New memory store'))),
    formBox,
    listBox,
  );
  load();
}

function storePage(root, state, storeId) {
  const path = `/v1/memory_stores/${encodeURIComponent(storeId)}`;
  const title = h('h1', {}, 'Memory store');
  const listBox = h('div', { 'data-role': 'memories' }, 'Loading…');
  const formBox = h('div', { 'data-role': 'form' });
  const viewBox = h('div', { 'data-role': 'memory' });
  const resultsBox = h('div', { 'data-role': 'search-results' });
  const moreBox = h('div', { class: 'inline' });
  let memories = [];
  let nextPage = null;
  let prefix = '';

  function memoryQuery(page) {
    const query = { limit: 100 };
    if (prefix) query.path_prefix = prefix;
    if (page) query.page = page;
    return query;
  }

  async function load() {
    try {
      const [store, page] = await Promise.all([api('GET', path), api('GET', `${path}/memories`, { query: memoryQuery(null) })]);
      if (!state.alive) return;
      title.replaceChildren(`Memory store ${store.name} `, store.archived_at ? badge('archived', 'muted') : '');
      memories = (page.data || []).filter((item) => item.type === 'memory');
      nextPage = page.next_page || null;
      draw();
      root.dataset.loaded = 'true';
    } catch (err) {
      listBox.replaceChildren(h('p', { class: 'muted' }, 'This memory store could not be loaded.'));
      showError(err);
    }
  }

  async function loadMore() {
    try {
      const page = await api('GET', `${path}/memories`, { query: memoryQuery(nextPage) });
      if (!state.alive) return;
      memories = memories.concat((page.data || []).filter((item) => item.type === 'memory'));
      nextPage = page.next_page || null;
      draw();
    } catch (err) {
      showError(err);
    }
  }

  function draw() {
    listBox.replaceChildren(memories.length === 0
      ? h('p', { class: 'muted', 'data-role': 'empty' }, prefix ? `No memories under ${prefix}.` : 'No memories in this store yet.')
      : table([
        {
          title: 'Path',
          render: (m) => h('a', { href: '#', 'data-id': m.id, onclick: (event) => { event.preventDefault(); show(m); } }, m.path),
        },
        { title: 'Size', render: (m) => sizeOf(m.content_size_bytes) },
        { title: 'Updated', render: (m) => formatDate(m.updated_at) },
        {
          title: '',
          render: (m) => h('div', { class: 'inline' },
            h('button', { type: 'button', 'data-action': 'edit', onclick: () => showEdit(m) }, 'Edit'),
            armed('Delete', 'Delete it?', 'delete', async () => {
              await api('DELETE', `${path}/memories/${encodeURIComponent(m.id)}`);
              notice(`Memory ${m.path} deleted.`);
              viewBox.replaceChildren();
              load();
            })),
        },
      ], memories));
    moreBox.replaceChildren(nextPage
      ? h('button', { type: 'button', 'data-action': 'more', onclick: () => loadMore() }, 'More memories')
      : '');
  }

  async function show(memory) {
    try {
      const full = await api('GET', `${path}/memories/${encodeURIComponent(memory.id)}`, { query: { view: 'full' } });
      if (!state.alive) return;
      viewBox.replaceChildren(h('article', { class: 'memory', 'data-id': full.id },
        h('h2', {}, full.path),
        h('pre', { class: 'memory-content' }, full.content || ''),
        h('small', { class: 'muted' }, `version ${full.memory_version_id} · ${formatDate(full.updated_at)}`)));
    } catch (err) {
      showError(err);
    }
  }

  function showCreate() {
    const form = h('form', { class: 'card', 'data-role': 'memory-form' },
      h('h2', {}, 'New memory'),
      field('Path', h('input', { name: 'path', required: true, placeholder: '/notes/topic.md' })),
      field('Content', h('textarea', { name: 'content', rows: 6 })),
      formButtons('Save memory', formBox));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = { path: form.elements.path.value.trim(), content: form.elements.content.value };
      const saved = await submitting(form, () => api('POST', `${path}/memories`, { body }));
      if (saved) {
        formBox.replaceChildren();
        notice(`Memory ${saved.path} saved.`);
        load();
      }
    };
    formBox.replaceChildren(form);
    form.elements.path.focus();
  }

  async function showEdit(memory) {
    let full;
    try {
      full = await api('GET', `${path}/memories/${encodeURIComponent(memory.id)}`, { query: { view: 'full' } });
    } catch (err) {
      showError(err);
      return;
    }
    const content = h('textarea', { name: 'content', rows: 8 });
    content.value = full.content || '';
    const form = h('form', { class: 'card', 'data-role': 'memory-form', 'data-id': full.id },
      h('h2', {}, `Edit ${full.path}`),
      field('Path', h('input', { name: 'path', required: true, value: full.path })),
      field('Content', content),
      formButtons('Save', formBox));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = {};
      if (form.elements.path.value.trim() !== full.path) body.path = form.elements.path.value.trim();
      if (content.value !== (full.content || '')) body.content = content.value;
      const saved = await submitting(form, () => api('POST', `${path}/memories/${encodeURIComponent(full.id)}`, { body }));
      if (saved) {
        formBox.replaceChildren();
        notice(`Memory ${saved.path} saved as a new version.`);
        load();
      }
    };
    formBox.replaceChildren(form);
  }

  const searchForm = h('form', { class: 'card inline', 'data-role': 'search-form' },
    h('input', { name: 'query', type: 'search', required: true, placeholder: 'Search by meaning…', 'aria-label': 'search query' }),
    h('select', { name: 'limit', 'aria-label': 'results' }, [5, 10, 20, 50].map((n) => h('option', { value: String(n) }, `${n} results`))),
    h('button', { type: 'submit', class: 'primary', 'data-action': 'search' }, 'Search'));
  searchForm.onsubmit = async (event) => {
    event.preventDefault();
    const body = { query: searchForm.elements.query.value, limit: Number(searchForm.elements.limit.value) };
    const found = await submitting(searchForm, () => api('POST', `${path}/search`, { body }));
    if (!found || !state.alive) return;
    const hits = found.data || [];
    resultsBox.dataset.query = body.query;
    resultsBox.replaceChildren(hits.length === 0
      ? h('p', { class: 'muted', 'data-role': 'empty' }, 'Nothing found. (New memories are searchable once indexed.)')
      : table([
        { title: 'Score', render: (m) => m.score.toFixed(3) },
        {
          title: 'Memory',
          render: (m) => h('a', { href: '#', 'data-id': m.id, onclick: (e) => { e.preventDefault(); show(m); } }, m.path),
        },
        { title: 'Content', render: (m) => h('span', { class: 'snippet' }, (m.content || '').slice(0, 200)) },
      ], hits));
  };

  const prefixForm = h('form', { class: 'card inline', 'data-role': 'prefix-form' },
    h('input', { name: 'prefix', placeholder: 'path prefix, e.g. /notes/', 'aria-label': 'path prefix' }),
    h('button', { type: 'submit', class: 'primary', 'data-action': 'filter' }, 'Filter'));
  prefixForm.onsubmit = (event) => {
    event.preventDefault();
    let value = prefixForm.elements.prefix.value.trim();
    if (value && !value.startsWith('/')) value = `/${value}`;
    if (value && !value.endsWith('/')) value = `${value}/`;
    prefix = value;
    load();
  };

  root.append(
    h('p', {}, h('a', { href: '#/memory', 'data-action': 'back' }, '← All memory stores')),
    h('header', { class: 'toolbar' }, title,
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' },
        h('button', { type: 'button', 'data-action': 'add-memory', onclick: showCreate }, 'New memory'))),
    h('h2', {}, 'Search'),
    searchForm,
    resultsBox,
    formBox,
    viewBox,
    h('h2', {}, 'Memories'),
    prefixForm,
    listBox,
    moreBox,
  );
  load();
}

function render(container, params) {
  const root = rootOf(container, 'memory');
  const state = { alive: true };
  if (params && params[0]) storePage(root, state, params[0]);
  else storeList(root, state);
  return () => { state.alive = false; };
}

registerScreen('memory', { title: 'Memory', order: 90, render });
