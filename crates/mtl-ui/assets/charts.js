'use strict';
// Charts of the mtl-lab dashboard: a registry of ECharts instances (window.mtlCharts, keyed by a
// stable id the browser tests use) and one option builder per kind of chart. Loaded before app.js;
// uses its helpers (el, esc, fmtNum, fmtSigned) at call time.
//
// Safety: axis labels, legends and series names are drawn on the canvas, so they are safe as they
// are. Tooltip formatters return HTML, so every data string in them goes through esc().

window.mtlCharts = {};
const PALETTE = ['#3b6fd8', '#e8590c', '#2f9e44', '#ae3ec9', '#0c8599', '#f08c00', '#c2255c', '#5f3dc4', '#666'];
const SPLIT_COLORS = {train: '#3b6fd8', val: '#e8590c', test: '#2f9e44'};
const DIVERGING = ['#b2182b', '#f4a582', '#f7f7f7', '#92c5de', '#2166ac'];

// A chart card is created while a view builds its DOM; ECharts only measures a container once it
// is in the document, so the instances are made (or updated) by flushCharts() after attaching.
let pendingCharts = [];
let seenCharts = new Set();

function chartCard(id, title, option, onClick) {
  seenCharts.add(id);
  const inst = window.mtlCharts[id];
  let card;
  if (inst && !inst.isDisposed() && inst.getDom().parentNode) {
    card = inst.getDom().parentNode;
    card.querySelector('figcaption').textContent = title;
  } else {
    card = el('figure', {class: 'chart-card'}, el('figcaption', {}, title),
      el('div', {class: 'chart', dataset: {chartId: id}}));
  }
  pendingCharts.push({id, card, option, onClick});
  return card;
}

// Makes or updates the pending charts, then disposes the charts under `prefix` that the last
// render did not ask for. A chart that lives on keeps its zoom and legend choice.
function flushCharts(prefix = '') {
  const charts = window.mtlCharts;
  for (const {id, card, option, onClick} of pendingCharts) {
    if (!card.isConnected) continue;
    const div = card.querySelector('.chart');
    let inst = charts[id];
    if (inst && !inst.isDisposed() && inst.getDom() === div) {
      keepViewState(inst.getOption(), option);
    } else {
      if (inst && !inst.isDisposed()) inst.dispose();
      inst = echarts.init(div, null, {renderer: 'canvas'});
      charts[id] = inst;
    }
    inst.setOption(option, true);
    inst.off('click');
    if (onClick) inst.on('click', onClick);
    inst.resize();
  }
  pendingCharts = [];
  for (const id of Object.keys(charts)) {
    if (id.startsWith(prefix) && !seenCharts.has(id)) disposeChart(id);
  }
  seenCharts = new Set();
}

function keepViewState(old, option) {
  if (!old) return;
  if (old.dataZoom && option.dataZoom) {
    option.dataZoom = option.dataZoom.map((dz, i) => (old.dataZoom[i]
      ? Object.assign({}, dz, {start: old.dataZoom[i].start, end: old.dataZoom[i].end}) : dz));
  }
  if (old.legend && old.legend[0] && old.legend[0].selected && option.legend) {
    option.legend = Object.assign({}, option.legend, {selected: old.legend[0].selected});
  }
}

function disposeChart(id) {
  const inst = window.mtlCharts[id];
  if (inst && !inst.isDisposed()) inst.dispose();
  delete window.mtlCharts[id];
}

function disposeCharts() {
  for (const id of Object.keys(window.mtlCharts)) disposeChart(id);
  pendingCharts = [];
  seenCharts = new Set();
}

let resizeQueued = false;
window.addEventListener('resize', () => {
  if (resizeQueued) return;
  resizeQueued = true;
  requestAnimationFrame(() => {
    resizeQueued = false;
    for (const inst of Object.values(window.mtlCharts)) if (!inst.isDisposed()) inst.resize();
  });
});

// ---- shared option pieces ----

function tooltipBase(extra) {
  return Object.assign({className: 'mtl-tooltip', confine: true, renderMode: 'html'}, extra);
}

// Axis tooltip for line charts: one line per series, "mean ± std" where a point carries a std.
// Band helper series (id "band:…") are left out.
function axisTooltip(xName) {
  return (params) => {
    const list = (Array.isArray(params) ? params : [params]).filter((p) => !String(p.seriesId).startsWith('band:'));
    if (!list.length) return '';
    const x = list[0].value ? list[0].value[0] : list[0].axisValue;
    const lines = list.map((p) => {
      const v = p.value || [];
      const std = v[2] ? ` ± ${esc(fmtStd(v[2]))}` : '';
      return `${p.marker}${esc(p.seriesName)}: <b>${esc(fmtNum(v[1]))}</b>${std}`;
    });
    return [`${esc(xName)} ${esc(fmtNum(x))}`].concat(lines).join('<br>');
  };
}

function lineOption(xName, series, extra) {
  return Object.assign({
    animation: false,
    color: PALETTE,
    grid: {left: 12, right: 24, top: 40, bottom: 34, containLabel: true},
    legend: {type: 'scroll', top: 0, left: 0, right: 0},
    tooltip: tooltipBase({trigger: 'axis', formatter: axisTooltip(xName)}),
    xAxis: {type: 'value', name: xName, nameLocation: 'middle', nameGap: 24, scale: true},
    yAxis: {type: 'value', scale: true},
    dataZoom: [{type: 'inside', filterMode: 'none'}],
    series,
  }, extra || {});
}

function lineSeries(name, data, color, extra) {
  return Object.assign({
    type: 'line', name, data, color, showSymbol: data.length <= 40, symbolSize: 5,
    sampling: data.length > 2000 ? 'lttb' : undefined, emphasis: {focus: 'series'},
  }, extra || {});
}

// A mean line with a ± std band, drawn as two stacked invisible/filled lines under it. Points are
// [x, mean, std]. All three series share the name, so the legend toggles them together.
function bandSeries(key, name, points, color) {
  const stack = `band:${key}`;
  const common = {type: 'line', name, color, stack, stackStrategy: 'all', symbol: 'none', silent: true,
    lineStyle: {opacity: 0}, emphasis: {disabled: true}, z: 1};
  return [
    Object.assign({id: `band:${key}:low`, data: points.map((p) => [p[0], p[1] == null ? null : p[1] - (p[2] || 0)])}, common),
    Object.assign({id: `band:${key}:width`, data: points.map((p) => [p[0], p[1] == null ? null : 2 * (p[2] || 0)]),
      areaStyle: {color, opacity: 0.18}}, common),
    lineSeries(name, points.map((p) => [p[0], p[1], p[2] || 0]), color, {id: `mean:${key}`, z: 3}),
  ];
}

function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const k = keyOf(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(item);
  }
  return groups;
}

// ---- run view ----

// One chart per (task, metric), one line per split; a dashed vertical line at the best epoch.
function curveCards(curves, bestEpoch) {
  const groups = groupBy(curves, (c) => JSON.stringify([c.task, c.metric]));
  return [...groups.values()].map((list) => {
    const {task, metric} = list[0];
    const series = list.map((c, i) => lineSeries(c.split, c.points, SPLIT_COLORS[c.split] || PALETTE[(i + 3) % PALETTE.length]));
    if (bestEpoch != null && series.length) {
      series[0].markLine = {symbol: 'none', silent: true, animation: false,
        lineStyle: {type: 'dashed', color: '#555'}, label: {formatter: 'best', position: 'end'},
        data: [{xAxis: bestEpoch}]};
    }
    return chartCard(`curve:${task}:${metric}`, `${task} · ${metric}`, lineOption('epoch', series));
  });
}

// One chart per diagnostic name, one line per task (or task → other task).
function diagnosticCards(diagnostics) {
  const groups = groupBy(diagnostics, (d) => d.name);
  return [...groups.entries()].map(([name, list]) => {
    const series = list.map((d, i) => lineSeries(d.other ? `${d.task} → ${d.other}` : d.task, d.points, PALETTE[i % PALETTE.length]));
    return chartCard(`diag:${name}`, name, lineOption('step', series));
  });
}

// ---- compare view ----

// Curves of several series (runs, or one group's mean with a band) for one split, one chart per
// (task, metric).
function overlayCards(series, split, withBand, prefix) {
  const byChart = new Map();
  series.forEach((s, si) => {
    for (const c of s.curves) {
      if (c.split !== split) continue;
      const k = JSON.stringify([c.task, c.metric]);
      if (!byChart.has(k)) byChart.set(k, {task: c.task, metric: c.metric, series: []});
      const color = PALETTE[si % PALETTE.length];
      const chart = byChart.get(k);
      if (withBand) chart.series.push(...bandSeries(`${si}`, s.label, c.points, color));
      else chart.series.push(lineSeries(s.label, c.points.map((p) => [p[0], p[1]]), color));
    }
  });
  return [...byChart.values()].map((c) => chartCard(`${prefix}overlay:${c.task}:${c.metric}`,
    `${c.task} · ${c.metric} (${split})`, lineOption('epoch', c.series)));
}

// Each metric against λ: a line per method with a ± std band, references as dashed horizontal
// lines. The x axis is logarithmic when the positive λ span more than a factor of 10.
function lambdaCards(byLambda, prefix) {
  return byLambda.map((entry) => {
    const lambdas = entry.lines.flatMap((l) => l.points.map((p) => p.lambda)).filter((x) => typeof x === 'number');
    const positive = lambdas.length && lambdas.every((x) => x > 0);
    const logAxis = positive && Math.max(...lambdas) / Math.min(...lambdas) > 10;
    const series = [];
    entry.lines.forEach((line, i) => {
      const points = line.points.slice().sort((a, b) => a.lambda - b.lambda).map((p) => [p.lambda, p.mean, p.std]);
      series.push(...bandSeries(`${i}`, line.method, points, PALETTE[i % PALETTE.length]));
    });
    (entry.references || []).forEach((ref, i) => {
      const color = PALETTE[(entry.lines.length + i) % PALETTE.length];
      series.push({type: 'line', name: ref.method, color, data: [],
        markLine: {symbol: 'none', silent: true, animation: false, lineStyle: {type: 'dashed', color},
          label: {position: 'insideEndTop', formatter: () => `${ref.method} ${fmtNum(ref.mean)}`},
          data: [{yAxis: ref.mean}]}});
    });
    const option = lineOption('λ', series);
    option.xAxis = {type: logAxis ? 'log' : 'value', name: 'λ', nameLocation: 'middle', nameGap: 24, scale: true};
    return chartCard(`${prefix}lambda:${entry.metric}`, `${entry.metric} against λ`, option);
  });
}

function symmetricMax(values) {
  const m = Math.max(0, ...values.filter((v) => typeof v === 'number' && isFinite(v)).map(Math.abs));
  return m > 0 ? m : 1;
}

// The Δm% heatmap, with a diverging colour bar centred at 0.
function heatmapCard(hm, prefix) {
  const data = [];
  hm.cells.forEach((row, y) => row.forEach((v, x) => { if (v != null) data.push([x, y, v]); }));
  const max = symmetricMax(data.map((d) => d[2]));
  // Many columns (every weighting method): labels slanted, values in the tooltip only.
  const many = hm.columns.length > 10;
  const formatter = (p) => {
    const [x, y, v] = p.value;
    const iv = hm.intervals && hm.intervals[y] && hm.intervals[y][x];
    return `${esc(hm.row_title)}: ${esc(hm.rows[y])}<br>${esc(hm.column_title)}: ${esc(hm.columns[x])}` +
      `<br>Δm% <b>${esc(fmtSigned(v))}</b>${iv ? ` [${esc(fmtSigned(iv[0]))}, ${esc(fmtSigned(iv[1]))}]` : ''}`;
  };
  const option = {
    animation: false,
    tooltip: tooltipBase({trigger: 'item', formatter}),
    grid: {left: 12, right: 90, top: 28, bottom: 40, containLabel: true},
    xAxis: {type: 'category', data: hm.columns, name: hm.column_title, nameLocation: 'middle', nameGap: many ? 70 : 26,
      splitArea: {show: true}, axisLabel: {interval: 0, rotate: many ? 45 : 0}},
    // The rows' title is in the caption ("by strategy and …").
    yAxis: {type: 'category', data: hm.rows, inverse: true, splitArea: {show: true}},
    visualMap: {type: 'continuous', min: -max, max, calculable: true, right: 0, top: 'middle', itemHeight: 160,
      inRange: {color: DIVERGING}, formatter: (v) => fmtSigned(v)},
    series: [{type: 'heatmap', data, label: {show: !many, formatter: (p) => fmtSigned(p.value[2])},
      emphasis: {itemStyle: {borderColor: '#333', borderWidth: 1}}}],
  };
  return chartCard(`${prefix}heatmap`, `Δm% by ${hm.row_title} and ${hm.column_title}`, option);
}

// One scatter of seed-group means per task pair; the front is highlighted and joined by a line.
// Clicking a group opens its runs.
function paretoCards(pareto, experiment, prefix) {
  return pareto.map((pp) => {
    const item = (p) => ({value: [p.x.mean, p.y.mean], name: p.label, group: p});
    const xName = `${pp.x_task} ${pp.x_metric}`;
    const yName = `${pp.y_task} ${pp.y_metric}`;
    const front = (pp.front || []).slice().sort((a, b) => a[0] - b[0]);
    const series = [
      {type: 'scatter', name: 'seed groups', color: '#8c96a3', symbolSize: 10, data: pp.points.filter((p) => !p.on_front).map(item)},
      {type: 'scatter', name: 'Pareto front', color: '#d9480f', symbolSize: 14, z: 4, data: pp.points.filter((p) => p.on_front).map(item)},
      {type: 'line', name: 'Pareto front', color: '#d9480f', data: front, showSymbol: false, silent: true,
        lineStyle: {type: 'dashed', width: 1.5}, tooltip: {show: false}},
    ];
    if (pp.single_task) {
      series.push({type: 'scatter', name: 'single-task', color: '#2f9e44', symbol: 'triangle', symbolSize: 15,
        data: [{value: pp.single_task, name: 'single-task'}]});
    }
    const fmtStat = (s) => (s ? `${esc(fmtNum(s.mean))} ± ${esc(fmtStd(s.std))} (n=${esc(s.n)})` : '—');
    const formatter = (p) => {
      const g = p.data && p.data.group;
      if (!g) return `${esc(p.name)}<br>${esc(xName)}: ${esc(fmtNum(p.value[0]))}<br>${esc(yName)}: ${esc(fmtNum(p.value[1]))}`;
      return `<b>${esc(g.label)}</b>${g.on_front ? ' ★' : ''}<br>${esc(xName)}: ${fmtStat(g.x)}<br>${esc(yName)}: ${fmtStat(g.y)}` +
        `<br><span class="tip-hint">click to open its ${esc((g.runs || []).length)} runs</span>`;
    };
    const option = {
      animation: false,
      grid: {left: 12, right: 24, top: 56, bottom: 34, containLabel: true},
      legend: {top: 0},
      tooltip: tooltipBase({trigger: 'item', formatter}),
      xAxis: {type: 'value', name: xName, nameLocation: 'middle', nameGap: 24, scale: true},
      yAxis: {type: 'value', name: yName, scale: true, nameTextStyle: {align: 'left'}},
      series,
    };
    const onClick = (p) => {
      const runs = (p.data && p.data.group && p.data.group.runs || []).map(Number).filter(Number.isFinite);
      if (runs.length) location.hash = route('runs', {experiment, where: `id in (${runs.join(', ')})`});
    };
    return chartCard(`${prefix}pareto:${pp.x_task}:${pp.y_task}`, `Pareto front: ${xName} vs ${yName}`, option, onClick);
  });
}

// Parallel coordinates of the settings, metrics and Δm%, coloured by the last dimension (Δm%).
function parallelCard(par, prefix) {
  const last = par.dimensions.length - 1;
  const max = symmetricMax(par.rows.map((r) => r.values[last]));
  const option = {
    animation: false,
    parallel: {left: 70, right: 110, top: 40, bottom: 30},
    parallelAxis: par.dimensions.map((d, i) => (d.type === 'category'
      ? {dim: i, name: d.name, type: 'category', data: d.categories}
      : {dim: i, name: d.name, type: 'value', scale: true})),
    visualMap: {type: 'continuous', dimension: last, min: -max, max, calculable: true, right: 0, top: 'middle',
      itemHeight: 140, inRange: {color: DIVERGING}, formatter: (v) => fmtSigned(v)},
    tooltip: tooltipBase({trigger: 'item', formatter: (p) => {
      const v = p.value || [];
      return `<b>${esc(p.name)}</b><br>` + par.dimensions.map((d, i) => `${esc(d.name)}: ${esc(i === last ? fmtSigned(v[i]) : fmtNum(v[i]))}`).join('<br>');
    }}),
    series: [{type: 'parallel', lineStyle: {width: 2, opacity: 0.75}, emphasis: {lineStyle: {width: 4, opacity: 1}},
      data: par.rows.map((r) => ({name: r.label, value: r.values.map((v) => (v == null ? '-' : v))}))}],
  };
  return chartCard(`${prefix}parallel`, 'Parallel coordinates (colour: Δm%)', option);
}
