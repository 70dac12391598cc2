'use strict';
// The mtl-lab dashboard: a hash router over four views (experiments, runs, run, compare) of the
// JSON API, live through one poll of /api/changes a second.
//
// Safety: every string from the API reaches the DOM through el() (text nodes, properties, or
// setAttribute on plain attributes), never as HTML; links are only "#/…" routes built by route().

const PAGE_ROWS = 200;
const MAX_ROWS = 10000; // the most rows the server sends at once: past them, filter
const STATUSES = ['running', 'done', 'failed', 'interrupted', 'pruned'];

// ---- helpers ----

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
}

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'indeterminate', 'tabIndex']);

// el('a', {href: '#/…', class: 'x', title: t}, child, …): children are nodes or text.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'href') {
      if (!String(v).startsWith('#/')) throw new Error('links are hash routes only');
      node.setAttribute('href', v);
    } else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) node[k] = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

// Replaces node's children; like el(), takes nodes, text, arrays and skips null/false.
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

function route(path, params) {
  const q = Object.entries(params || {}).filter(([, v]) => v != null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `#/${path}${q ? `?${q}` : ''}`;
}

function fmtNum(v) {
  if (v == null) return '—';
  if (typeof v !== 'number') return String(v);
  if (!isFinite(v) || Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e4) return v.toFixed(0);
  if (a < 1e-4) return v.toExponential(3);
  return v.toPrecision(4);
}

// Settings and other plain values: the shortest form, unless that is long.
function fmtValue(v) {
  if (typeof v === 'number' && String(v).length > 10) return fmtNum(v);
  return v == null ? '—' : String(v);
}

function fmtStd(v) {
  return typeof v === 'number' && isFinite(v) && v !== 0 ? v.toPrecision(2) : fmtNum(v);
}

function fmtSigned(v) {
  if (v == null || typeof v !== 'number') return '—';
  return `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(2)}`;
}

function fmtDelta(d) {
  if (!d || d.value == null) return '—';
  const interval = d.low != null && d.high != null ? ` [${fmtSigned(d.low)}, ${fmtSigned(d.high)}]` : '';
  return `${fmtSigned(d.value)}${interval}`;
}

function fmtDuration(s) {
  if (s == null || !isFinite(s)) return '?';
  if (s < 90) return `${Math.round(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function relTime(iso) {
  const t = Date.parse(iso);
  if (isNaN(t)) return String(iso);
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function progressText(p) {
  if (!p) return '';
  return `epoch ${p.epoch}/${p.epochs}${p.eta_s != null ? ` · ~${fmtDuration(p.eta_s)} left` : ''}`;
}

function badge(status, count) {
  const cls = STATUSES.includes(status) ? status : 'other';
  return el('span', {class: `badge status-${cls}`, title: count == null ? null : `${count} ${status}`},
    count == null ? status : `${status} ${count}`);
}

function chips(tags) {
  return Object.entries(tags || {}).map(([k, v]) => el('span', {class: 'chip', title: `${k}=${v}`}, `${k}=${v}`));
}

function shorten(text, n) {
  const first = String(text).split('\n')[0];
  return first.length > n ? `${first.slice(0, n - 1)}…` : first;
}

function table(attrs, headers, rows) {
  return el('table', attrs, el('thead', {}, el('tr', {}, headers.map((h) => el('th', {scope: 'col'}, h)))),
    el('tbody', {}, rows));
}

function kvTable(id, obj) {
  const rows = Object.entries(obj || {}).map(([k, v]) => el('tr', {}, el('th', {scope: 'row'}, k),
    el('td', {}, v != null && typeof v === 'object' ? JSON.stringify(v) : fmtValue(v))));
  return el('table', {id, class: 'kv'}, el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', {class: 'muted'}, 'none'))));
}

function section(title, ...children) {
  return el('section', {class: 'block'}, el('h2', {}, title), children);
}

function parseIds(text) {
  return String(text || '').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

// ---- API, banner, top bar ----

class ApiError extends Error {
  constructor(message, status, at) {
    super(message);
    this.status = status;
    this.at = at;
  }
}

async function api(path) {
  let res;
  try {
    res = await fetch(path, {cache: 'no-store', headers: {Accept: 'application/json'}});
  } catch (e) {
    throw new ApiError(`cannot reach the server (${path})`, 0);
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    throw new ApiError((body && typeof body.error === 'string') ? body.error : `${res.status} ${res.statusText} (${path})`,
      res.status, body && typeof body.at === 'number' ? body.at : null);
  }
  if (body == null) throw new ApiError(`not JSON: ${path}`, res.status);
  return body;
}

let bannerErrors = 0;

function showError(err) {
  bannerErrors++;
  const banner = document.getElementById('banner');
  fill(banner, el('span', {class: 'banner-text'}, err && err.message ? err.message : String(err)),
    el('button', {type: 'button', class: 'banner-close', 'aria-label': 'Dismiss', onclick: () => { banner.hidden = true; }}, '×'));
  banner.hidden = false;
}

function clearError() {
  document.getElementById('banner').hidden = true;
}

function setCrumbs(items) {
  const parts = [];
  items.forEach(([label, href], i) => {
    if (i) parts.push(el('span', {class: 'sep', 'aria-hidden': 'true'}, '›'));
    parts.push(href ? el('a', {href}, label) : el('span', {'aria-current': 'page'}, label));
  });
  fill(document.getElementById('crumbs'), ...parts);
}

function setDbPath(db) {
  const node = document.getElementById('db-path');
  node.textContent = db || '';
  node.title = db || '';
}

function setLive(ok) {
  const live = document.getElementById('live');
  live.className = ok ? 'live online' : 'live offline';
  document.getElementById('live-label').textContent = ok ? 'live' : 'offline';
}

// ---- router and live refresh ----

let current = null;
let renders = 0;

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const i = h.indexOf('?');
  return {path: i < 0 ? h : h.slice(0, i), params: new URLSearchParams(i < 0 ? '' : h.slice(i + 1))};
}

function makeView(path, params) {
  if (path === '/' || path === '') return experimentsView();
  if (path === '/runs') return runsView(params);
  if (path === '/compare') return compareView(params);
  const m = /^\/run\/(\d+)$/.exec(path);
  if (m) return runView(Number(m[1]));
  return notFoundView(path);
}

function navigate() {
  const {path, params} = parseHash();
  // Same view, other parameters (a new filter, sort, group): keep its state, fetch again.
  if (current && current.update && current.update(path, params)) {
    refreshView();
    return;
  }
  disposeCharts();
  clearError();
  delete document.body.dataset.view;
  current = makeView(path, params);
  fill(document.getElementById('view'), current.root);
  window.scrollTo(0, 0);
  refreshView();
}

// Runs the current view's refresh, one at a time; a call that arrives meanwhile runs after it.
let refreshing = false;
let refreshAgain = false;

async function refreshView() {
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      const view = current;
      bannerErrors = 0;
      try {
        await view.refresh();
        if (view !== current) continue;
        if (!bannerErrors) clearError();
        view.loaded = true;
        finishRender(view.name);
      } catch (err) {
        if (view !== current) continue;
        showError(err);
        if (!view.loaded) {
          disposeCharts();
          fill(view.root, el('h1', {}, 'Error'), el('pre', {class: 'error-block', id: 'view-error'}, err.message || String(err)));
          finishRender('error');
        } else {
          finishRender(view.name);
        }
      }
    } while (refreshAgain);
  } finally {
    refreshing = false;
  }
}

function finishRender(name) {
  document.body.dataset.view = name;
  document.body.dataset.renders = String(++renders);
}

let lastVersion = null;

let pollFailed = false;

async function poll() {
  try {
    const res = await fetch('/api/changes', {cache: 'no-store'});
    if (!res.ok) throw new Error(String(res.status));
    const {version} = await res.json();
    setLive(true);
    // A changed database, or the server (or database) back after a failed poll: read again.
    if (current && ((lastVersion !== null && version !== lastVersion) || pollFailed)) refreshView();
    lastVersion = version;
    pollFailed = false;
  } catch (e) {
    pollFailed = true;
    setLive(false);
  } finally {
    setTimeout(poll, 1000);
  }
}

// ---- views ----
// A view is {name, root, refresh(), update?(path, params)}: refresh fetches and renders into root;
// update takes new hash parameters for the same view and answers whether it kept the view.

function notFoundView(path) {
  const root = el('section', {});
  return {name: 'notfound', root, async refresh() {
    setCrumbs([['Experiments', '#/'], ['not found']]);
    fill(root, el('h1', {}, 'Not found'), el('p', {}, 'No page at ', el('code', {}, `#${path}`), '. ',
      el('a', {href: '#/'}, 'Back to the experiments')));
  }};
}

function experimentsView() {
  const root = el('section', {});
  const state = {a: null, b: null};
  return {name: 'experiments', root, async refresh() {
    const data = await api('/api/experiments');
    setDbPath(data.db);
    setCrumbs([['Experiments']]);
    const exps = data.experiments || [];
    const rows = exps.map((e) => {
      const statuses = STATUSES.filter((s) => e.by_status && e.by_status[s] > 0).map((s) => badge(s, e.by_status[s]));
      const v = e.verdict;
      return el('tr', {dataset: {experiment: e.name}},
        el('td', {}, el('a', {href: route('runs', {experiment: e.name}), class: 'exp-name'}, e.name),
          el('div', {class: 'muted small'}, (e.tasks || []).join(', '))),
        el('td', {class: 'num'}, String(e.total)),
        el('td', {class: 'badges'}, statuses),
        el('td', {title: e.last_activity || ''}, e.last_activity ? relTime(e.last_activity) : '—'),
        el('td', {class: 'num'}, e.revision == null ? '—' : String(e.revision)),
        el('td', {class: 'verdict'}, v ? [el('span', {class: 'muted'}, 'best: '), el('b', {}, v.group),
          ` Δm% ${fmtDelta({value: v.delta_m, low: v.low, high: v.high})}`,
          v.baseline ? el('span', {class: 'muted'}, ' (the single-task baseline: no multi-task group is higher)') : null]
          : el('span', {class: 'muted'}, '—')),
        el('td', {}, el('a', {href: route('compare', {experiment: e.name})}, 'compare')));
    });
    const names = exps.map((e) => e.name);
    if (!names.includes(state.a)) state.a = names[0] || null;
    if (!names.includes(state.b)) state.b = names[1] || names[0] || null;
    const select = (id, key, label) => {
      const s = el('select', {id, 'aria-label': label}, names.map((n) => el('option', {value: n, selected: n === state[key]}, n)));
      s.value = state[key] || '';
      s.addEventListener('change', () => { state[key] = s.value; });
      return s;
    };
    const form = el('form', {id: 'compare-two', class: 'inline-form'},
      el('span', {}, 'Compare two experiments: '), select('compare-a', 'a', 'first experiment'),
      el('span', {}, ' with '), select('compare-b', 'b', 'second experiment'),
      el('button', {type: 'submit', disabled: names.length < 2}, 'Compare'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (state.a && state.b) location.hash = route('compare', {experiment: state.a, other: state.b});
    });
    fill(root, el('h1', {}, 'Experiments'),
      exps.length ? table({id: 'experiments-table', class: 'data'},
        ['Experiment', 'Runs', 'Status', 'Last activity', 'Revision', 'Verdict', ''], rows)
        : el('p', {class: 'muted', id: 'experiments-table-empty'}, 'No experiments in this database yet.'),
      form);
  }};
}

function runsView(params) {
  const state = {experiment: params.get('experiment') || '', where: params.get('where') || '', sort: params.get('sort') || '',
    selected: new Set(), shown: new Map(), limit: PAGE_ROWS, data: null, error: null};
  const input = el('input', {id: 'filter', type: 'text', value: state.where, spellcheck: 'false', autocomplete: 'off',
    placeholder: 'filter, e.g. status = done and lambda > 0.1', 'aria-label': 'Filter (mtl ls --where)'});
  const form = el('form', {id: 'filter-form', class: 'filter-form'}, input, el('button', {type: 'submit'}, 'Filter'));
  const errorPre = el('pre', {id: 'filter-error', class: 'error-block', hidden: true});
  const count = el('span', {id: 'runs-count', class: 'muted'});
  const compareBtn = el('button', {type: 'button', id: 'compare-selected', disabled: true}, 'Compare selected');
  const columnsBtn = el('button', {type: 'button', id: 'columns-button', 'aria-expanded': 'false', 'aria-controls': 'columns-panel'}, 'Columns');
  const panel = el('div', {id: 'columns-panel', class: 'columns-panel', hidden: true});
  const thead = el('thead', {});
  const tbody = el('tbody', {});
  const runsTable = el('table', {id: 'runs-table', class: 'data'}, thead, tbody);
  const wrap = el('div', {class: 'table-scroll'}, runsTable);
  const more = el('button', {type: 'button', id: 'show-more', hidden: true}, 'Show more');
  const title = el('h1', {});
  const links = el('p', {class: 'links'});
  const root = el('section', {}, title, links, form, errorPre,
    el('div', {class: 'toolbar'}, count, el('span', {class: 'spacer'}), compareBtn,
      el('span', {class: 'popover-anchor'}, columnsBtn, panel)),
    wrap, more);

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const hash = route('runs', {experiment: state.experiment, where: input.value.trim(), sort: state.sort});
    if (hash === location.hash) refreshView(); else location.hash = hash;
  });
  compareBtn.addEventListener('click', () => {
    if (state.selected.size) location.hash = route('compare', {experiment: state.experiment, runs: [...state.selected].sort((a, b) => a - b).join(',')});
  });
  columnsBtn.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    columnsBtn.setAttribute('aria-expanded', String(!panel.hidden));
  });
  panel.addEventListener('change', (ev) => {
    const box = ev.target.closest('input[type=checkbox]');
    if (!box) return;
    state.shown.set(box.value, box.checked);
    renderTable();
  });
  thead.addEventListener('click', (ev) => {
    const th = ev.target.closest('th[data-key]');
    if (!th) return;
    const key = th.dataset.key;
    const sort = state.sort.split(',')[0] === key ? `-${key}` : key;
    location.hash = route('runs', {experiment: state.experiment, where: state.where, sort});
  });
  thead.addEventListener('change', (ev) => {
    if (!ev.target.matches('input.select-all')) return;
    for (const box of tbody.querySelectorAll('input.select-run')) {
      box.checked = ev.target.checked;
      toggle(Number(box.value), box.checked);
    }
    updateSelection();
  });
  tbody.addEventListener('change', (ev) => {
    if (!ev.target.matches('input.select-run')) return;
    toggle(Number(ev.target.value), ev.target.checked);
    updateSelection();
  });
  // More rows are asked of the server (it sends the first `limit` of the sorted matches).
  more.addEventListener('click', () => { state.limit = Math.min(state.limit + PAGE_ROWS, MAX_ROWS); refreshView(); });

  function toggle(id, on) { if (on) state.selected.add(id); else state.selected.delete(id); }

  function updateSelection() {
    compareBtn.disabled = state.selected.size === 0;
    compareBtn.textContent = state.selected.size ? `Compare selected (${state.selected.size})` : 'Compare selected';
  }

  function isShown(col) {
    if (col.key === 'id') return true;
    return state.shown.has(col.key) ? state.shown.get(col.key) : !col.constant;
  }

  function showFilterError(err) {
    const lines = [];
    if (err.at != null && state.where) lines.push(state.where, `${' '.repeat(Math.max(0, err.at))}^`);
    lines.push(err.message);
    errorPre.textContent = lines.join('\n');
    errorPre.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  }

  function renderPanel(columns) {
    fill(panel, el('div', {class: 'muted small'}, 'Constant columns are hidden at first.'),
      columns.filter((c) => c.key !== 'id').map((c) => el('label', {class: 'col-choice'},
        el('input', {type: 'checkbox', value: c.key, checked: isShown(c)}), ` ${c.key} `,
        el('span', {class: `kind kind-${['builtin', 'setting', 'metric', 'tag'].includes(c.kind) ? c.kind : 'other'}`},
          c.constant ? `${c.kind}, constant` : c.kind))));
  }

  function cell(col, row) {
    const v = row.values ? row.values[col.key] : undefined;
    if (col.key === 'id') return el('td', {class: 'num'}, el('a', {href: route(`run/${encodeURIComponent(row.id)}`)}, String(row.id)));
    if (col.key === 'status') {
      return el('td', {class: 'status-cell'}, badge(row.status),
        row.progress ? el('span', {class: 'progress'}, ` ${progressText(row.progress)}`) : null,
        row.error ? el('span', {class: 'error-short', title: row.error}, ` ${shorten(row.error, 60)}`) : null);
    }
    return el('td', {class: typeof v === 'number' ? 'num' : null}, v === undefined ? '' : col.kind === 'metric' ? fmtNum(v) : fmtValue(v));
  }

  function renderTable() {
    const data = state.data;
    wrap.hidden = !data;
    if (!data) {
      thead.replaceChildren();
      tbody.replaceChildren();
      more.hidden = true;
      count.textContent = '';
      return;
    }
    const cols = data.columns.filter(isShown);
    const hasStatus = cols.some((c) => c.key === 'status');
    const first = state.sort.split(',')[0] || '';
    const sortKey = first.replace(/^-/, '');
    const dir = first.startsWith('-') ? 'descending' : 'ascending';
    fill(thead, el('tr', {},
      el('th', {class: 'sel'}, el('input', {type: 'checkbox', class: 'select-all', 'aria-label': 'select the runs shown'})),
      cols.map((c) => el('th', {scope: 'col', dataset: {key: c.key}, class: `sortable kind-${c.kind}`, title: `${c.kind}: click to sort`,
        'aria-sort': c.key === sortKey && first ? dir : 'none'},
      el('button', {type: 'button', class: 'th-button'}, c.key,
        c.key === sortKey && first ? el('span', {class: 'arrow'}, dir === 'ascending' ? ' ▲' : ' ▼') : null))),
      el('th', {scope: 'col'}, 'tags · note')));
    const frag = document.createDocumentFragment();
    for (const row of data.rows) {
      frag.append(el('tr', {dataset: {runId: String(row.id)}, class: `row-${STATUSES.includes(row.status) ? row.status : 'other'}`},
        el('td', {class: 'sel'}, el('input', {type: 'checkbox', class: 'select-run', value: String(row.id),
          checked: state.selected.has(row.id), 'aria-label': `select run ${row.id}`})),
        cols.map((c) => cell(c, row)),
        el('td', {class: 'tags'}, chips(row.tags), row.note ? el('em', {class: 'note'}, row.note) : null,
          !hasStatus && row.error ? el('span', {class: 'error-short', title: row.error}, shorten(row.error, 60)) : null)));
    }
    fill(tbody, frag);
    const left = data.matched - data.rows.length;
    more.hidden = left <= 0 || data.rows.length >= MAX_ROWS;
    more.textContent = `Show ${Math.min(left, PAGE_ROWS)} more (${left} not shown)`;
    count.textContent = `${data.matched} of ${data.total} runs` +
      (left > 0 ? ` · showing the first ${data.rows.length}` : '');
    renderPanel(data.columns);
  }

  const view = {name: 'runs', root,
    update(path, p) {
      if (path !== '/runs' || (p.get('experiment') || '') !== state.experiment) return false;
      state.where = p.get('where') || '';
      state.sort = p.get('sort') || '';
      if (document.activeElement !== input) input.value = state.where;
      return true;
    },
    async refresh() {
      const q = {experiment: state.experiment, where: state.where, sort: state.sort, limit: String(state.limit)};
      title.textContent = state.experiment;
      setCrumbs([['Experiments', '#/'], [state.experiment]]);
      fill(links, el('a', {href: route('compare', {experiment: state.experiment})}, 'compare seed groups'));
      const scroll = [window.scrollY, wrap.scrollTop];
      try {
        state.data = await api(`/api/runs?${new URLSearchParams(Object.entries(q).filter(([, v]) => v))}`);
        errorPre.hidden = true;
        input.removeAttribute('aria-invalid');
      } catch (err) {
        if (err.status !== 400) throw err;
        state.data = null;
        showFilterError(err);
      }
      renderTable();
      updateSelection();
      window.scrollTo(window.scrollX, scroll[0]);
      wrap.scrollTop = scroll[1];
    }};
  return view;
}

function runView(id) {
  const root = el('section', {});
  return {name: 'run', root, async refresh() {
    const r = await api(`/api/run/${encodeURIComponent(id)}`);
    setCrumbs([['Experiments', '#/'], [r.experiment, route('runs', {experiment: r.experiment})], [`run ${r.id}`]]);
    const meta = {experiment: r.experiment, trial_key: r.trial_key, started_at: r.started_at, ended_at: r.ended_at,
      attempts: r.attempts, revision: r.revision, result_epoch: r.result_epoch, best_epoch: r.best_epoch};
    const curves = r.curves && r.curves.length ? el('div', {class: 'charts'}, curveCards(r.curves, r.best_epoch))
      : el('p', {class: 'muted'}, 'No learning curves recorded.');
    const diags = r.diagnostics && r.diagnostics.length ? el('div', {class: 'charts'}, diagnosticCards(r.diagnostics))
      : el('p', {class: 'muted'}, 'No diagnostics recorded.');
    const artifacts = (r.artifacts || []).map((a) => el('tr', {}, el('td', {}, a.name),
      el('td', {class: 'mono', title: a.sha256 || ''}, a.sha256 ? `${String(a.sha256).slice(0, 12)}…` : '—'),
      el('td', {class: 'mono'}, a.path == null ? '—' : a.path)));
    fill(root,
      el('div', {class: 'title-row'}, el('h1', {id: 'run-title'}, `run ${r.id}`), badge(r.status),
        r.progress ? el('span', {class: 'progress'}, progressText(r.progress)) : null,
        el('a', {href: route('runs', {experiment: r.experiment})}, r.experiment),
        el('a', {href: route('compare', {experiment: r.experiment, runs: String(r.id)})}, 'curves in compare')),
      r.error ? el('pre', {id: 'run-error', class: 'error-block'}, r.error) : null,
      el('div', {class: 'two-col'},
        section('Settings', kvTable('settings', r.settings)),
        el('div', {}, section('Run', kvTable('run-meta', meta)), section('Provenance', kvTable('provenance', r.provenance)))),
      section('Tags & note', el('div', {id: 'run-tags'}, chips(r.tags).length ? chips(r.tags) : el('span', {class: 'muted'}, 'no tags')),
        r.note ? el('p', {}, el('em', {id: 'run-note', class: 'note'}, r.note)) : null),
      section('Learning curves', curves),
      section('Diagnostics', diags),
      section('Artifacts', artifacts.length ? table({id: 'artifacts', class: 'data'}, ['name', 'sha256', 'path'], artifacts)
        : el('p', {class: 'muted'}, 'No artifacts.')));
    flushCharts();
  }};
}

function compareView(params) {
  const state = {split: 'val', overlay: null};
  const read = (p) => Object.assign(state, {experiment: p.get('experiment') || '', other: p.get('other') || '',
    runs: parseIds(p.get('runs')), group: p.has('group') ? p.get('group') : null});
  read(params);
  const root = el('section', {});

  function groupsTable(data, tableId, selectable) {
    const head = ['', 'group', 'n', 'Δm% [95% interval]', 'standing'].concat(data.columns);
    const rows = data.groups.map((g, i) => {
      const tr = el('tr', {dataset: {group: String(i)}, tabIndex: 0,
        class: ['clickable', g.baseline ? 'baseline' : '', g.pareto ? 'pareto' : '', selectable && state.group === g.label ? 'selected' : ''].join(' '),
        title: g.pareto ? 'on the Pareto front; click to overlay its runs' : 'click to overlay its runs'},
      el('td', {class: 'star'}, g.pareto ? '★' : ''),
      el('td', {}, g.label, g.baseline ? el('span', {class: 'chip baseline-chip'}, 'baseline') : null),
      el('td', {class: 'num'}, String((g.runs || []).length)),
      el('td', {class: 'num'}, fmtDelta(g.delta_m)),
      el('td', {}, g.standing ? el('span', {class: `standing standing-${g.standing.replace(/[^a-z]+/g, '-')}`}, g.standing) : ''),
      data.columns.map((c) => {
        const s = g.stats && g.stats[c];
        return el('td', {class: 'num', title: s ? `n=${s.n}${s.low != null ? ` · 95% [${fmtNum(s.low)}, ${fmtNum(s.high)}]` : ''}` : null},
          s ? `${fmtNum(s.mean)} ± ${fmtStd(s.std)}` : '—');
      }));
      const choose = () => {
        // A group is named by its label (its settings): an index would point elsewhere once groups are added.
        const again = selectable && state.group === g.label;
        location.hash = route('compare', {experiment: data.experiment, group: again ? null : g.label});
      };
      tr.addEventListener('click', choose);
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); choose(); } });
      return tr;
    });
    return el('div', {class: 'table-scroll short'}, table({id: tableId, class: 'data groups'}, head, rows));
  }

  function overlaySection(data) {
    const ov = state.overlay;
    if (!ov) return null;
    const splits = [...new Set(ov.data.series.flatMap((s) => s.curves.map((c) => c.split)))];
    if (splits.length && !splits.includes(state.split)) state.split = splits.includes('val') ? 'val' : splits[0];
    const grid = el('div', {class: 'charts', id: 'overlay-charts'});
    const drawOverlay = () => {
      fill(grid, ...overlayCards(ov.data.series, state.split, ov.mean, ''));
      if (!grid.children.length) grid.append(el('p', {class: 'muted'}, `No ${state.split} curves.`));
    };
    const select = el('select', {id: 'overlay-split', 'aria-label': 'split'}, splits.map((s) => el('option', {value: s, selected: s === state.split}, s)));
    select.value = state.split;
    select.addEventListener('change', () => { state.split = select.value; drawOverlay(); flushCharts('overlay:'); });
    drawOverlay();
    const what = ov.mean ? `mean ± std of ${ov.label} (${ov.runs.length} runs)` : `runs ${ov.runs.join(', ')}`;
    return section('Overlaid curves', el('div', {class: 'toolbar'}, el('span', {class: 'muted'}, what), el('span', {class: 'spacer'}),
      el('label', {}, 'split ', select),
      ov.mean ? null : el('a', {href: route('runs', {experiment: data ? data.experiment : '', where: `id in (${ov.runs.join(', ')})`})}, 'these runs')), grid);
  }

  function single(data) {
    const parts = [el('h1', {}, `Compare · ${data.experiment}`),
      el('p', {class: 'links'}, el('a', {href: route('runs', {experiment: data.experiment})}, 'runs'),
        el('span', {class: 'muted'}, ` · grouped by ${(data.keys || []).join(', ') || 'nothing'} · click a group to overlay its runs`)),
      // Runs picked in the runs view come first; a group picked here shows below its table.
      ...(state.runs.length ? [overlaySection(data), section('Seed groups', groupsTable(data, 'groups-table', true))]
        : [section('Seed groups', groupsTable(data, 'groups-table', true)), overlaySection(data)])];
    if (data.by_lambda && data.by_lambda.length) parts.push(section('Metrics against λ', el('div', {class: 'charts'}, lambdaCards(data.by_lambda, ''))));
    if (data.heatmap) {
      const wide = data.heatmap.columns.length > 6 ? 'charts wide' : 'charts';
      parts.push(section('Δm% heatmap', el('div', {class: wide}, heatmapCard(data.heatmap, ''))));
    }
    if (data.pareto && data.pareto.length) parts.push(section('Pareto fronts', el('div', {class: 'charts'}, paretoCards(data.pareto, data.experiment, ''))));
    if (data.parallel && data.parallel.rows && data.parallel.rows.length) {
      parts.push(section('Parallel coordinates', el('div', {class: 'charts wide'}, parallelCard(data.parallel, ''))));
    }
    return parts;
  }

  function column(data, prefix, tableId) {
    return el('div', {class: 'compare-col'},
      el('h2', {}, el('a', {href: route('compare', {experiment: data.experiment})}, data.experiment)),
      groupsTable(data, tableId, false),
      el('div', {class: 'charts one'}, paretoCards(data.pareto || [], data.experiment, prefix)));
  }

  return {name: 'compare', root,
    update(path, p) {
      if (path !== '/compare' || (p.get('experiment') || '') !== state.experiment || (p.get('other') || '') !== state.other) return false;
      read(p);
      return true;
    },
    async refresh() {
      if (!state.experiment) throw new ApiError('the compare view needs ?experiment=NAME', 400);
      if (state.other) {
        const [a, b] = await Promise.all([api(`/api/compare?experiment=${encodeURIComponent(state.experiment)}`),
          api(`/api/compare?experiment=${encodeURIComponent(state.other)}`)]);
        setCrumbs([['Experiments', '#/'], [a.experiment, route('runs', {experiment: a.experiment})], [`compare with ${b.experiment}`]]);
        const scroll = window.scrollY;
        fill(root, el('h1', {}, `${a.experiment} and ${b.experiment}`),
          el('div', {class: 'two-col'}, column(a, '', 'groups-table'), column(b, 'b/', 'groups-table-b')));
        flushCharts();
        window.scrollTo(window.scrollX, scroll);
        return;
      }
      const data = await api(`/api/compare?experiment=${encodeURIComponent(state.experiment)}`);
      const g = state.group != null ? data.groups.find((x) => x.label === state.group) || null : null;
      const runs = g ? g.runs : state.runs;
      state.overlay = null;
      if (runs && runs.length) {
        try {
          const curves = await api(`/api/curves?runs=${runs.join(',')}&mean=${g ? 1 : 0}`);
          state.overlay = {data: curves, mean: !!g, runs, label: g ? g.label : ''};
        } catch (err) { showError(err); }
      }
      setCrumbs([['Experiments', '#/'], [data.experiment, route('runs', {experiment: data.experiment})], ['compare']]);
      const scroll = window.scrollY;
      fill(root, ...single(data).filter(Boolean));
      flushCharts();
      window.scrollTo(window.scrollX, scroll);
    }};
}

// ---- start ----

function start() {
  window.addEventListener('hashchange', navigate);
  document.addEventListener('keydown', (ev) => {
    const panel = document.getElementById('columns-panel');
    if (ev.key === 'Escape' && panel && !panel.hidden) document.getElementById('columns-button').click();
  });
  navigate();
  // The db path shows in the top bar on every view; the experiments view sets it itself.
  if (current && current.name !== 'experiments') api('/api/experiments').then((d) => setDbPath(d.db), () => {});
  poll();
}

if (window.echarts) start();
else window.addEventListener('DOMContentLoaded', start);
