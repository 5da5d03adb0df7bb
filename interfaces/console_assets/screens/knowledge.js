// Knowledge bases: '#/knowledge' lists them; '#/knowledge/<base id>' shows one base's
// documents with their indexing status (re-read while any is pending or indexing), uploads a
// document as multipart/form-data (text, markdown or PDF), and searches the base.
import {
  api, armed, badge, field, formatDate, h, listAll, navigate, notice, registerScreen, rootOf, showError, sizeOf, table,
} from '../core.js';

const STATUS_KIND = { pending: 'muted', indexing: 'info', ready: 'ok', failed: 'error' };
const WATCH_MS = 1500; // re-read the documents while one is still being indexed
const MODES = [['hybrid', 'meaning and keywords'], ['semantic', 'meaning'], ['keyword', 'keywords']];

function baseList(root, state) {
  const listBox = h('div', { 'data-role': 'list' }, 'Loading…');
  const formBox = h('div', { 'data-role': 'form' });

  async function load() {
    try {
      const bases = await listAll('/v1/knowledge_bases', { limit: 100 });
      if (!state.alive) return;
      listBox.replaceChildren(bases.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'No knowledge bases yet. Agents search the documents of a knowledge base.')
        : table([
          {
            title: 'Knowledge base',
            render: (b) => h('a', { href: `#/knowledge/${encodeURIComponent(b.id)}`, 'data-id': b.id }, b.name),
          },
          { title: 'Description', render: (b) => b.description || '—' },
          { title: 'Created', render: (b) => formatDate(b.created_at) },
          {
            title: '',
            render: (b) => h('div', { class: 'inline' },
              h('button', { type: 'button', 'data-action': 'open', onclick: () => navigate(`#/knowledge/${b.id}`) }, 'Documents'),
              armed('Delete', `Delete ${b.name} and its documents?`, 'delete', async () => {
                await api('DELETE', `/v1/knowledge_bases/${encodeURIComponent(b.id)}`);
                notice(`Knowledge base ${b.name} deleted.`);
                load();
              })),
          },
        ], bases));
      root.dataset.loaded = 'true';
    } catch (err) {
      showError(err);
    }
  }

  function showCreate() {
    const form = h('form', { class: 'card', 'data-role': 'create-form' },
      h('h2', {}, 'New knowledge base'),
      field('Name', h('input', { name: 'name', required: true })),
      field('Description', h('textarea', { name: 'description', rows: 2, placeholder: 'optional' })),
      h('div', { class: 'inline' },
        h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Create'),
        h('button', { type: 'button', 'data-action': 'cancel', onclick: () => formBox.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const button = form.querySelector('[type="submit"]');
      button.disabled = true;
      try {
        const body = { name: form.elements.name.value.trim() };
        const description = form.elements.description.value.trim();
        if (description) body.description = description;
        const base = await api('POST', '/v1/knowledge_bases', { body });
        formBox.replaceChildren();
        notice(`Knowledge base ${base.name} created.`);
        navigate(`#/knowledge/${base.id}`);
      } catch (err) {
        showError(err);
      } finally {
        button.disabled = false;
      }
    };
    formBox.replaceChildren(form);
    form.elements.name.focus();
  }

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'Knowledge'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' },
        h('button', { type: 'button', 'data-action': 'create', onclick: showCreate }, 'New knowledge base'))),
    formBox,
    listBox,
  );
  load();
}

function basePage(root, state, baseId) {
  const path = `/v1/knowledge_bases/${encodeURIComponent(baseId)}`;
  const title = h('h1', {}, 'Knowledge base');
  const listBox = h('div', { 'data-role': 'documents' }, 'Loading…');
  const resultsBox = h('div', { 'data-role': 'search-results' });
  let watch = null;

  function statusCell(doc) {
    return h('span', { 'data-role': 'doc-status', 'data-status': doc.status },
      badge(doc.status, STATUS_KIND[doc.status] || 'muted'),
      doc.status_reason ? h('small', { class: 'muted' }, ` ${doc.status_reason}`) : null);
  }

  async function load() {
    clearTimeout(watch);
    try {
      const [base, documents] = await Promise.all([api('GET', path), listAll(`${path}/documents`, { limit: 100 })]);
      if (!state.alive) return;
      title.replaceChildren(`Knowledge base ${base.name}`);
      listBox.replaceChildren(documents.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'No documents yet: upload one.')
        : table([
          { title: 'Document', render: (d) => h('strong', { 'data-id': d.id }, d.title) },
          { title: 'File', render: (d) => d.filename || '—' },
          { title: 'Type', render: (d) => d.media_type },
          { title: 'Size', render: (d) => sizeOf(d.size_bytes) },
          { title: 'Status', render: statusCell },
          {
            title: 'Indexed',
            render: (d) => (d.status === 'ready'
              ? `${d.chunk_count} ${d.chunk_count === 1 ? 'chunk' : 'chunks'}${d.page_count ? `, ${d.page_count} pages` : ''}`
              : '—'),
          },
          { title: 'Uploaded', render: (d) => formatDate(d.created_at) },
          {
            title: '',
            render: (d) => armed('Delete', 'Delete it?', 'delete', async () => {
              await api('DELETE', `${path}/documents/${encodeURIComponent(d.id)}`);
              notice(`Document ${d.title} deleted.`);
              load();
            }),
          },
        ], documents));
      root.dataset.loaded = 'true';
      if (documents.some((d) => d.status === 'pending' || d.status === 'indexing')) {
        watch = setTimeout(() => { if (state.alive) load(); }, WATCH_MS);
      }
    } catch (err) {
      listBox.replaceChildren(h('p', { class: 'muted' }, 'This knowledge base could not be loaded.'));
      showError(err);
    }
  }
  state.stops.push(() => clearTimeout(watch));

  const fileInput = h('input', {
    name: 'file', type: 'file', required: true, accept: '.txt,.md,.markdown,.pdf,text/plain,text/markdown,application/pdf',
  });
  const uploadForm = h('form', { class: 'card', 'data-role': 'upload-form' },
    h('h2', {}, 'Upload a document'),
    field('File', fileInput, 'text, markdown or PDF, up to 8 MiB'),
    field('Title', h('input', { name: 'title', placeholder: 'optional: the file name otherwise' })),
    h('div', { class: 'inline' }, h('button', { type: 'submit', class: 'primary', 'data-action': 'upload' }, 'Upload')));
  uploadForm.onsubmit = async (event) => {
    event.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      showError(new Error('Choose a file to upload.'));
      return;
    }
    const form = new FormData();
    form.append('file', file, file.name);
    const titleText = uploadForm.elements.title.value.trim();
    if (titleText) form.append('title', titleText);
    const button = uploadForm.querySelector('[type="submit"]');
    button.disabled = true;
    try {
      const doc = await api('POST', `${path}/documents`, { body: form });
      uploadForm.reset();
      notice(`Document ${doc.title} uploaded; it is ${doc.status}.`);
      load();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  };

  const searchForm = h('form', { class: 'card inline', 'data-role': 'search-form' },
    h('input', { name: 'query', type: 'search', required: true, placeholder: 'Search this knowledge base…', 'aria-label': 'search query' }),
    h('select', { name: 'mode', 'aria-label': 'search by' }, MODES.map(([id, label]) => h('option', { value: id }, label))),
    h('select', { name: 'limit', 'aria-label': 'results' }, [5, 10, 20, 50].map((n) => h('option', { value: String(n) }, `${n} results`))),
    h('button', { type: 'submit', class: 'primary', 'data-action': 'search' }, 'Search'));
  searchForm.onsubmit = async (event) => {
    event.preventDefault();
    const body = {
      query: searchForm.elements.query.value,
      mode: searchForm.elements.mode.value,
      limit: Number(searchForm.elements.limit.value),
    };
    const button = searchForm.querySelector('[type="submit"]');
    button.disabled = true;
    try {
      const found = await api('POST', `${path}/search`, { body });
      if (!state.alive) return;
      const hits = found.data || [];
      resultsBox.dataset.query = body.query;
      resultsBox.replaceChildren(hits.length === 0
        ? h('p', { class: 'muted', 'data-role': 'empty' }, 'Nothing found. (Documents are searchable once ready.)')
        : table([
          { title: 'Score', render: (r) => r.score.toFixed(3) },
          {
            title: 'Where',
            render: (r) => h('div', { 'data-id': r.document_id },
              h('strong', {}, r.title),
              h('small', { class: 'muted' }, [
                r.heading ? ` · ${r.heading}` : '',
                r.page ? ` · page ${r.page}` : '',
                ` · characters ${r.start}–${r.end}`,
              ].join(''))),
          },
          { title: 'Passage', render: (r) => h('span', { class: 'snippet' }, r.snippet) },
        ], hits));
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  };

  root.append(
    h('p', {}, h('a', { href: '#/knowledge', 'data-action': 'back' }, '← All knowledge bases')),
    h('header', { class: 'toolbar' }, title),
    uploadForm,
    h('h2', {}, 'Documents'),
    listBox,
    h('h2', {}, 'Search'),
    searchForm,
    resultsBox,
  );
  load();
}

function render(container, params) {
  const root = rootOf(container, 'knowledge');
  const state = { alive: true, stops: [] };
  if (params && params[0]) basePage(root, state, params[0]);
  else baseList(root, state);
  return () => {
    state.alive = false;
    for (const stop of state.stops) stop();
  };
}

registerScreen('knowledge', { title: 'Knowledge', order: 100, render });
