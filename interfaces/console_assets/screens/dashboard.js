// The landing screen: the workspace's numbers at a glance (GET /v1/dashboard/stats) and cost
// and tokens per day, per agent and per model (the usage and cost reports, grouped by agent
// and model in one request each and summed here).
import {
  api, badge, barChart, formatCost, formatTokens, h, registerScreen, rootOf, showError,
} from '../core.js';

const RANGES = [7, 14, 30]; // days; the reports allow at most 31 one-day buckets
const REFRESH_MS = 30000;

function startOfDay(daysAgo) {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - daysAgo));
}

// Every bucket of every page (a page holds at most `limit` buckets).
async function buckets(path, query) {
  const found = [];
  let page = null;
  for (let guard = 0; guard < 20; guard += 1) {
    const answer = await api('GET', path, { query: page ? { ...query, page } : query });
    found.push(...(answer.data || []));
    if (!answer.has_more || !answer.next_page) break;
    page = answer.next_page;
  }
  return found;
}

function tokensOf(row) {
  const creation = row.cache_creation || {};
  return (row.uncached_input_tokens || 0) + (row.cache_read_input_tokens || 0) + (row.output_tokens || 0)
    + (creation.ephemeral_5m_input_tokens || 0) + (creation.ephemeral_1h_input_tokens || 0);
}

// Report amounts are decimal strings in US cents; charts show dollars.
function dollarsOf(row) {
  const cents = Number.parseFloat(row.amount || '0');
  return Number.isFinite(cents) ? cents / 100 : 0;
}

function sumBy(bucketList, keyOf, valueOf) {
  const totals = new Map();
  for (const bucket of bucketList) {
    for (const row of bucket.results || []) {
      const key = keyOf(bucket, row);
      totals.set(key, (totals.get(key) || 0) + valueOf(row));
    }
  }
  return totals;
}

function perDay(bucketList, valueOf) {
  const totals = sumBy(bucketList, (bucket) => bucket.starting_at, valueOf);
  return bucketList.map((bucket) => ({ label: bucket.starting_at.slice(5, 10), value: totals.get(bucket.starting_at) || 0 }));
}

// The largest first, at most a dozen; labels are still the keys (an agent id, a model).
function ranked(totals) {
  return [...totals.entries()]
    .filter(([, value]) => value > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([key, value]) => ({ label: key, value }));
}

async function agentNames(ids) {
  const names = new Map();
  await Promise.all([...ids].filter(Boolean).map(async (id) => {
    try {
      const agent = await api('GET', `/v1/agents/${encodeURIComponent(id)}`);
      names.set(id, agent.name || id);
    } catch {
      names.set(id, id); // an agent since deleted, or out of reach: its id still says which
    }
  }));
  return names;
}

const TILES_STYLE = { display: 'flex', gap: '12px', flexWrap: 'wrap', margin: '4px 0 8px' };
const TILE_STYLE = { minWidth: '130px', marginBottom: '0' };
const VALUE_STYLE = { fontSize: '22px', fontWeight: '600' };
const CHARTS_STYLE = { display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(440px, 1fr))', gap: '12px' };

function chartBox(key, title, series, format) {
  return h('div', { class: 'card chart-box', 'data-chart': key, 'data-points': String(series.length) },
    series.length === 0
      ? [h('h3', {}, title), h('p', { class: 'muted', 'data-role': 'empty' }, 'Nothing in this period.')]
      : barChart({ title, series, format }));
}

function tile(role, label, value) {
  return h('div', { class: 'card tile', 'data-role': role, style: TILE_STYLE },
    h('div', { class: 'tile-value', style: VALUE_STYLE }, String(value)),
    h('div', { class: 'muted' }, label));
}

function statusSeries(byStatus) {
  return Object.entries(byStatus || {}).map(([label, value]) => ({ label, value }));
}

function render(container) {
  const root = rootOf(container, 'dashboard');
  let alive = true;
  let days = RANGES[0];
  const statsBox = h('div', { class: 'tiles', 'data-role': 'stats', style: TILES_STYLE }, 'Loading…');
  const statusBox = h('div', { class: 'charts', 'data-role': 'status-charts', style: CHARTS_STYLE });
  const usageBox = h('div', { class: 'charts', 'data-role': 'usage-charts', style: CHARTS_STYLE });
  const rangeSelect = h('select', {
    'data-role': 'range',
    onchange: (event) => { days = Number(event.target.value); load(); },
  }, RANGES.map((n) => h('option', { value: String(n) }, `last ${n} days`)));

  async function loadStats() {
    const stats = await api('GET', '/v1/dashboard/stats');
    if (!alive) return;
    const tasks = stats.tasks || {};
    const sessions = stats.sessions || {};
    const agents = stats.agents || {};
    const rate = tasks.completion_rate == null ? '—' : `${Math.round(tasks.completion_rate * 100)}%`;
    statsBox.replaceChildren(
      tile('sessions-running', 'sessions running', sessions.running ?? 0),
      tile('sessions-total', 'sessions', sessions.total ?? 0),
      tile('agents-live', 'agents', agents.live ?? 0),
      tile('tasks-total', 'tasks', tasks.total ?? 0),
      tile('tasks-completion', 'tasks completed', rate),
    );
    statusBox.replaceChildren(
      chartBox('tasks-by-status', 'Tasks by status', statusSeries(tasks.by_status), String),
      chartBox('sessions-by-status', 'Sessions by status', statusSeries(sessions.by_status), String),
    );
  }

  async function loadUsage() {
    const query = {
      starting_at: startOfDay(days - 1).toISOString(),
      bucket_width: '1d',
      limit: days,
      group_by: ['agent_id', 'model'],
    };
    const [costs, usage] = await Promise.all([
      buckets('/v1/organizations/analytics/cost_report', query),
      buckets('/v1/organizations/analytics/usage_report', query),
    ]);
    const costByAgent = ranked(sumBy(costs, (_, row) => row.agent_id, dollarsOf));
    const tokensByAgent = ranked(sumBy(usage, (_, row) => row.agent_id, tokensOf));
    // Names only for the agents the charts show.
    const names = await agentNames(new Set([...costByAgent, ...tokensByAgent].map((item) => item.label)));
    if (!alive) return;
    const agentName = (id) => (id ? names.get(id) || id : 'no agent (chat completions)');
    const named = (series, nameOf) => series.map((item) => ({ ...item, label: nameOf(item.label) }));
    const modelName = (model) => model || 'unknown model';
    usageBox.replaceChildren(
      chartBox('cost-per-day', 'Cost per day', perDay(costs, dollarsOf), formatCost),
      chartBox('tokens-per-day', 'Tokens per day', perDay(usage, tokensOf), formatTokens),
      chartBox('cost-per-agent', 'Cost per agent', named(costByAgent, agentName), formatCost),
      chartBox('tokens-per-agent', 'Tokens per agent', named(tokensByAgent, agentName), formatTokens),
      chartBox('cost-per-model', 'Cost per model', named(ranked(sumBy(costs, (_, row) => row.model, dollarsOf)), modelName), formatCost),
      chartBox('tokens-per-model', 'Tokens per model', named(ranked(sumBy(usage, (_, row) => row.model, tokensOf)), modelName), formatTokens),
    );
  }

  // Each part shows what it could load: a refused usage report leaves the counts standing.
  async function load() {
    const results = await Promise.allSettled([loadStats(), loadUsage()]);
    if (!alive) return;
    for (const result of results) {
      if (result.status === 'rejected') showError(result.reason);
    }
    root.dataset.loaded = 'true';
  }

  root.append(
    h('header', { class: 'toolbar' },
      h('h1', {}, 'Dashboard'),
      h('span', { class: 'spacer' }),
      h('div', { class: 'inline' }, rangeSelect,
        h('button', { type: 'button', 'data-action': 'refresh', onclick: () => load() }, 'Refresh'))),
    statsBox,
    h('h2', {}, 'Work'),
    statusBox,
    h('h2', {}, 'Cost and tokens ', badge('UTC days', 'info')),
    usageBox,
  );
  load();
  const timer = setInterval(() => { if (document.visibilityState !== 'hidden') load(); }, REFRESH_MS);
  return () => { alive = false; clearInterval(timer); };
}

registerScreen('dashboard', { title: 'Dashboard', order: 0, render });
