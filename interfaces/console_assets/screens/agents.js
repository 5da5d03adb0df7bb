// Agents: the list, create, edit (optimistic: a 409 is "changed by someone else", with the
// choice to reload) and two versions side by side with their differences.

import { ApiError, api, badge, formatDate, h, listAll, navigate, notice, registerScreen, showError, table } from '../core.js';

const TOOLSET = 'agent_toolset_20260401';
const TOOL_PRESETS = {
  none: [],
  allow: [{ type: TOOLSET, default_config: { permission_policy: { type: 'always_allow' } } }],
  ask: [{ type: TOOLSET, default_config: { permission_policy: { type: 'always_ask' } } }],
};

export function modelName(model) {
  if (!model) return '';
  return typeof model === 'string' ? model : model.id || JSON.stringify(model);
}

function presetOf(tools) {
  const text = JSON.stringify(tools || []);
  for (const [name, preset] of Object.entries(TOOL_PRESETS)) if (JSON.stringify(preset) === text) return name;
  return 'custom';
}

async function renderList(container) {
  const agents = await listAll('/v1/agents');
  container.replaceChildren(
    h('div', { class: 'toolbar' }, h('h1', {}, 'Agents'), h('span', { class: 'spacer' }), h('button', { class: 'primary', 'data-action': 'new-agent', onclick: () => navigate('#/agents/new') }, 'New agent')),
    table(
      [
        { title: 'Name', render: (agent) => h('a', { href: `#/agents/${agent.id}`, 'data-agent-id': agent.id }, agent.name) },
        { title: 'Model', render: (agent) => h('code', {}, modelName(agent.model)) },
        { title: 'Version', render: (agent) => String(agent.version) },
        { title: 'Tools', render: (agent) => toolSummary(agent.tools) },
        { title: 'Updated', render: (agent) => formatDate(agent.updated_at) },
        { title: '', render: (agent) => (agent.archived_at ? badge('archived') : '') },
      ],
      agents,
    ),
  );
}

function toolSummary(tools) {
  if (!tools || !tools.length) return h('span', { class: 'muted' }, 'none');
  return tools
    .map((tool) => {
      if (tool.type === TOOLSET) {
        const policy = tool.default_config && tool.default_config.permission_policy ? tool.default_config.permission_policy.type : 'always_allow';
        return `built-in (${policy.replace('always_', '')})`;
      }
      if (tool.type === 'custom') return `custom: ${tool.name}`;
      if (tool.type === 'mcp_toolset') return `mcp: ${tool.mcp_server_name}`;
      return tool.type;
    })
    .join(', ');
}

// The form for a new agent and for an edit: the same fields, the edit sends the version it
// was opened at.
function agentForm(agent, models, { onSubmit, submitLabel }) {
  const name = h('input', { name: 'name', required: true, value: agent ? agent.name : '' });
  const model = h('input', { name: 'model', required: true, list: 'models', value: agent ? modelName(agent.model) : '', placeholder: 'claude-sonnet-4-6' });
  const modelList = h('datalist', { id: 'models' }, models.map((id) => h('option', { value: id })));
  const description = h('input', { name: 'description', value: agent && agent.description ? agent.description : '' });
  const system = h('textarea', { name: 'system', rows: '5' }, agent && agent.system ? agent.system : '');
  const toolsJson = h('textarea', { name: 'tools', rows: '6', class: 'mono' }, JSON.stringify(agent ? agent.tools || [] : [], null, 2));
  const preset = h(
    'select',
    {
      name: 'tool_preset',
      onchange: () => {
        if (preset.value !== 'custom') toolsJson.value = JSON.stringify(TOOL_PRESETS[preset.value], null, 2);
      },
    },
    h('option', { value: 'none' }, 'None'),
    h('option', { value: 'allow' }, 'Built-in tools, always allowed'),
    h('option', { value: 'ask' }, 'Built-in tools, ask before each use'),
    h('option', { value: 'custom' }, 'Custom (edit the JSON below)'),
  );
  preset.value = presetOf(agent ? agent.tools : []);
  toolsJson.addEventListener('input', () => {
    preset.value = 'custom';
  });
  const form = h(
    'form',
    {
      class: 'card',
      'data-role': 'agent-form',
      onsubmit: async (event) => {
        event.preventDefault();
        let tools;
        try {
          tools = JSON.parse(toolsJson.value || '[]');
        } catch (err) {
          showError(new Error(`The tools are not valid JSON: ${err.message}`));
          return;
        }
        const body = { name: name.value.trim(), model: model.value.trim(), description: description.value || null, system: system.value || null, tools };
        const button = form.querySelector('button[type="submit"]');
        button.disabled = true;
        try {
          await onSubmit(body);
        } finally {
          button.disabled = false;
        }
      },
    },
    h('div', { class: 'field' }, h('label', {}, 'Name'), name),
    h('div', { class: 'field' }, h('label', {}, 'Model'), model, modelList),
    h('div', { class: 'field' }, h('label', {}, 'Description'), description),
    h('div', { class: 'field' }, h('label', {}, 'System prompt'), system),
    h('div', { class: 'field' }, h('label', {}, 'Tools'), preset),
    h('details', {}, h('summary', {}, 'Tools as JSON'), h('div', { class: 'field' }, toolsJson)),
    h('div', { class: 'toolbar' }, h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, submitLabel)),
  );
  return form;
}

// Suggestions only (any model id may be typed): the workspace's model cards and the models
// its agents already use.
async function modelIds() {
  const ids = new Set(['claude-sonnet-4-6', 'claude-opus-4-6', 'claude-haiku-4-5']);
  const [cards, agents] = await Promise.all([
    api('GET', '/v1/model_cards', { query: { limit: 100 } }).catch(() => ({ data: [] })),
    api('GET', '/v1/agents', { query: { limit: 100 } }).catch(() => ({ data: [] })),
  ]);
  for (const card of cards.data || []) if (card.model_id) ids.add(card.model_id);
  for (const agent of agents.data || []) ids.add(modelName(agent.model));
  return [...ids].sort();
}

async function renderNew(container) {
  const models = await modelIds();
  container.replaceChildren(
    h('div', { class: 'toolbar' }, h('a', { href: '#/agents' }, '← Agents')),
    h('h1', {}, 'New agent'),
    agentForm(null, models, {
      submitLabel: 'Create agent',
      onSubmit: async (body) => {
        try {
          if (!body.description) delete body.description;
          if (!body.system) delete body.system;
          const agent = await api('POST', '/v1/agents', { body });
          notice(`Agent ${agent.name} created.`);
          navigate(`#/agents/${agent.id}`);
        } catch (err) {
          showError(err);
        }
      },
    }),
  );
}

async function renderAgent(container, agentId) {
  const [agent, models] = await Promise.all([api('GET', `/v1/agents/${encodeURIComponent(agentId)}`), modelIds()]);
  const conflict = h('div', { 'data-role': 'conflict' });
  const versions = h('div', { 'data-role': 'versions' });
  const reload = () => renderAgent(container, agentId).catch(showError);
  const form = agentForm(agent, models, {
    submitLabel: 'Save changes',
    onSubmit: async (body) => {
      conflict.replaceChildren();
      try {
        const saved = await api('POST', `/v1/agents/${encodeURIComponent(agentId)}`, { body: { ...body, version: agent.version } });
        notice(saved.version === agent.version ? 'Nothing changed.' : `Saved as version ${saved.version}.`);
        await renderAgent(container, agentId);
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          conflict.replaceChildren(
            h(
              'div',
              { class: 'banner banner-error', role: 'alert' },
              h('span', {}, `This agent was changed by someone else since you opened version ${agent.version}. Reload to see their changes (yours here are not saved).`),
              h('button', { 'data-action': 'reload', onclick: reload }, 'Reload'),
            ),
          );
        } else {
          showError(err);
        }
      }
    },
  });
  container.replaceChildren(
    h('div', { class: 'toolbar' }, h('a', { href: '#/agents' }, '← Agents')),
    h(
      'div',
      { class: 'toolbar' },
      h('h1', { 'data-role': 'agent-name' }, agent.name),
      badge(`version ${agent.version}`, 'info'),
      agent.archived_at ? badge('archived') : null,
      h('span', { class: 'spacer' }),
      h('button', { 'data-action': 'start-session', onclick: () => navigate(`#/sessions/new/${agent.id}`) }, 'Start a session'),
    ),
    h('p', { class: 'muted' }, h('code', {}, agent.id), ` · created ${formatDate(agent.created_at)} · updated ${formatDate(agent.updated_at)}`),
    conflict,
    form,
    versions,
  );
  await renderVersions(versions, agent);
}

// -- versions side by side --------------------------------------------------------------------

const NOT_COMPARED = new Set(['version', 'updated_at', 'created_at', 'archived_at', 'type', 'id']);

function comparable(agent) {
  const shown = {};
  for (const key of Object.keys(agent).sort()) if (!NOT_COMPARED.has(key)) shown[key] = agent[key];
  return JSON.stringify(shown, null, 2).split('\n');
}

// The longest common subsequence of two line lists → aligned rows [left|null, right|null, kind].
export function diffLines(left, right) {
  const n = left.length;
  const m = right.length;
  const lcs = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i][j] = left[i] === right[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && left[i] === right[j]) {
      rows.push([left[i], right[j], 'same']);
      i += 1;
      j += 1;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      rows.push([left[i], null, 'removed']);
      i += 1;
    } else {
      rows.push([null, right[j], 'added']);
      j += 1;
    }
  }
  // A run of removed lines followed by a run of added ones: changed lines, paired in order.
  const merged = [];
  let k = 0;
  while (k < rows.length) {
    if (rows[k][2] !== 'removed') {
      merged.push(rows[k]);
      k += 1;
      continue;
    }
    const removed = [];
    while (k < rows.length && rows[k][2] === 'removed') removed.push(rows[k++][0]);
    const added = [];
    while (k < rows.length && rows[k][2] === 'added') added.push(rows[k++][1]);
    for (let p = 0; p < Math.max(removed.length, added.length); p += 1) {
      const l = p < removed.length ? removed[p] : null;
      const r = p < added.length ? added[p] : null;
      merged.push([l, r, l !== null && r !== null ? 'changed' : l !== null ? 'removed' : 'added']);
    }
  }
  return merged;
}

async function renderVersions(target, agent) {
  const all = await listAll(`/v1/agents/${encodeURIComponent(agent.id)}/versions`);
  const byVersion = new Map(all.map((item) => [item.version, item]));
  const numbers = [...byVersion.keys()].sort((a, b) => a - b);
  target.replaceChildren(h('h2', {}, 'Versions'));
  if (numbers.length < 2) {
    target.appendChild(h('p', { class: 'muted' }, 'Only one version so far: save a change to compare versions.'));
    return;
  }
  const pick = (value) => h('select', {}, numbers.map((number) => h('option', { value: String(number) }, `version ${number}`)));
  const left = pick();
  const right = pick();
  left.name = 'left_version';
  right.name = 'right_version';
  left.value = String(numbers[numbers.length - 2]);
  right.value = String(numbers[numbers.length - 1]);
  const sideBySide = h('div', { 'data-role': 'version-diff' });
  const draw = () => {
    const a = byVersion.get(Number(left.value));
    const b = byVersion.get(Number(right.value));
    const rows = diffLines(comparable(a), comparable(b));
    const changes = rows.filter((row) => row[2] !== 'same').length;
    const side = (index) =>
      h(
        'pre',
        {},
        rows.map((row) => h('span', { class: `diff-line ${row[2] === 'same' ? '' : row[index] === null ? 'blank' : row[2]}`, 'data-diff': row[2] }, row[index] === null ? ' ' : row[index])),
      );
    sideBySide.replaceChildren(
      h('p', { class: 'muted' }, changes ? `${changes} line${changes === 1 ? '' : 's'} differ.` : 'These versions are the same.'),
      h('div', { class: 'diff' }, h('div', {}, h('h3', {}, `version ${a.version} · ${formatDate(a.updated_at)}`), side(0)), h('div', {}, h('h3', {}, `version ${b.version} · ${formatDate(b.updated_at)}`), side(1))),
    );
  };
  left.addEventListener('change', draw);
  right.addEventListener('change', draw);
  target.appendChild(h('div', { class: 'toolbar' }, 'Compare', left, 'with', right));
  target.appendChild(sideBySide);
  draw();
}

registerScreen('agents', {
  title: 'Agents',
  order: 10,
  render: async (container, params) => {
    if (params[0] === 'new') await renderNew(container);
    else if (params[0]) await renderAgent(container, params[0]);
    else await renderList(container);
  },
});
