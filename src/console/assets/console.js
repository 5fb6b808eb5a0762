// SPDX-License-Identifier: Apache-2.0
// ortserve console: polls /console/api/snapshot (at most once per interval,
// the next poll only after the last answer) and draws what it holds with
// plain SVG. Server data is only ever written as text (textContent), never
// as markup. Operator actions call the server's own APIs
// (/v2/repository/models/{m}/load|unload, /v2/logging) after a confirmation.
'use strict';

(() => {
  const CREDENTIAL_KEY = 'ortserve.console.credential';
  const W = 300, H = 90;
  const $ = (id) => document.getElementById(id);

  const state = {
    seq: -1,
    history: 300,
    intervalMs: 1000,
    series: null,     // {t:[], cpu:[], ..., models:{name:{rps:[],...}}}
    snapshot: null,
    caller: null,
    paused: false,
    timer: null,
    cards: new Map(), // model name -> {root, ...elements}
  };

  // ---------- formatting ----------
  const num = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v)) ? '–'
      : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US')
      : Number(v.toFixed(digits)).toString();
  const pct = (v) => (v === null || v === undefined) ? '–' : (v * 100).toFixed(v < 0.1 && v > 0 ? 2 : 1) + ' %';
  function bytes(v) {
    if (v === null || v === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; ++i; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
  }
  function duration(s) {
    if (s === null || s === undefined) return '–';
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return `${d}d ${h}h ${m}m`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }
  const seconds = (v) => (v === null || v === undefined) ? '–' : v < 1 ? (v * 1000).toFixed(0) + ' ms' : v.toFixed(2) + ' s';
  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

  // ---------- credential ----------
  function credential() { return sessionStorage.getItem(CREDENTIAL_KEY) || ''; }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const c = credential();
    if (c) h['Authorization'] = 'Bearer ' + c;
    return h;
  }
  function ask(dialogId) {
    const dialog = $(dialogId);
    return new Promise((resolve) => {
      const done = (answer) => {
        dialog.querySelectorAll('button[data-answer]').forEach((b) => { b.onclick = null; });
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      dialog.querySelectorAll('button[data-answer]').forEach((b) => { b.onclick = () => done(b.dataset.answer); });
      // Closed by the browser (Escape): cancel. The close event of an earlier
      // question can arrive after this one opened; it finds the dialog open
      // and is ignored (it used to cancel this question at once).
      dialog.onclose = () => { if (!dialog.open) done('cancel'); };
      dialog.showModal();
    });
  }
  async function confirmAction(text) {
    setText($('confirm-text'), text);
    return (await ask('confirm')) === 'ok';
  }
  async function signIn() {
    $('credential-value').value = '';
    if ((await ask('credential')) !== 'ok') return;
    const value = $('credential-value').value.trim();
    if (value) sessionStorage.setItem(CREDENTIAL_KEY, value); else sessionStorage.removeItem(CREDENTIAL_KEY);
    state.seq = -1;
    schedule(0);
  }

  function banner(text) {
    const b = $('banner');
    if (!text) { b.hidden = true; return; }
    setText(b, text);
    b.hidden = false;
  }

  // ---------- polling ----------
  function schedule(ms) {
    clearTimeout(state.timer);
    if (!state.paused) state.timer = setTimeout(poll, ms);
  }

  async function poll() {
    const started = performance.now();
    try {
      const response = await fetch('/console/api/snapshot?since=' + state.seq, {headers: headers(), cache: 'no-store'});
      if (response.status === 401 || response.status === 403) {
        $('sign-in').hidden = false;
        banner(response.status === 401 ? 'This server needs a credential: use “Credential” above.'
                                        : 'This credential may not read the console (it needs the admin scope).');
        setText($('updated'), 'signed out');
        return schedule(5000);
      }
      if (!response.ok) throw new Error('snapshot answered ' + response.status);
      const body = await response.json();
      banner('');
      apply(body);
    } catch (e) {
      banner('Cannot reach the server (' + e.message + '); retrying.');
      setText($('updated'), 'offline');
    }
    const spent = performance.now() - started;
    schedule(Math.max(state.intervalMs - spent, 250));
  }

  function apply(body) {
    state.caller = body.caller;
    const snap = body.snapshot;
    if (snap.unchanged) return;
    state.intervalMs = Math.max(1000, snap.intervalMs || 1000);
    state.history = snap.history || 300;
    if (!mergeSeries(snap.series, snap.seq)) {
      state.seq = -1;  // A gap: the next poll asks for every point.
      return;
    }
    state.seq = snap.seq;
    state.snapshot = snap;
    render();
  }

  // Appends the new points (or takes every point of a full answer), keeping
  // at most `history` of them. False when the answer does not follow on
  // from what the page holds.
  function mergeSeries(incoming, seq) {
    if (incoming.full) {
      state.series = {t: incoming.t, cpu: incoming.cpu, rss: incoming.rss, connections: incoming.connections,
                      saePerMinute: incoming.saePerMinute, models: incoming.models, last: seq};
      return true;
    }
    if (!state.series || incoming.from !== state.seq + 1) return false;
    const s = state.series;
    const keep = (arr, add) => {
      const out = arr.concat(add);
      return out.length > state.history ? out.slice(out.length - state.history) : out;
    };
    const pad = (arr, n) => arr.concat(new Array(Math.max(0, n - arr.length)).fill(null));
    const before = s.t.length;
    s.t = keep(s.t, incoming.t);
    for (const k of ['cpu', 'rss', 'connections', 'saePerMinute']) s[k] = keep(s[k], incoming[k]);
    const models = {};
    for (const [name, m] of Object.entries(incoming.models)) {
      const old = s.models[name];
      const next = {};
      for (const [k, values] of Object.entries(m)) {
        // A model new to this page starts with gaps.
        next[k] = keep(old ? old[k] : pad([], before), values);
      }
      models[name] = next;
    }
    s.models = models;
    s.last = seq;
    return true;
  }

  // ---------- charts ----------
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }
  function pathOf(values, max, count) {
    // x: the last `history` samples across the width, newest at the right.
    const n = values.length, step = W / Math.max(1, count - 1), offset = count - n;
    let d = '', pen = false;
    for (let i = 0; i < n; ++i) {
      const v = values[i];
      if (v === null || v === undefined) { pen = false; continue; }
      const x = (offset + i) * step, y = H - 2 - (Math.min(v, max) / max) * (H - 6);
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      pen = true;
    }
    return d;
  }
  function ensurePaths(svg, n) {
    if (svg.childElementCount === 0) {
      const ns = 'http://www.w3.org/2000/svg';
      for (const y of [H * 0.5]) {
        const g = document.createElementNS(ns, 'line');
        g.setAttribute('class', 'grid');
        g.setAttribute('x1', '0'); g.setAttribute('x2', String(W));
        g.setAttribute('y1', String(y)); g.setAttribute('y2', String(y));
        svg.appendChild(g);
      }
      for (let i = 0; i < n; ++i) {
        const p = document.createElementNS(ns, 'path');
        p.setAttribute('class', i === 0 ? 'line' : 'line second');
        svg.appendChild(p);
      }
    }
    return svg.querySelectorAll('path');
  }
  // Draws one or two series; the figure's data-* attributes say what is
  // drawn (points with a value, the largest, the latest).
  function drawChart(figure, lines, format) {
    const svg = figure.querySelector('svg');
    const paths = ensurePaths(svg, lines.length);
    let max = 0, points = 0, last = null;
    for (const values of lines) {
      for (const v of values) if (v !== null && v !== undefined) { ++points; if (v > max) max = v; }
    }
    const first = lines[0];
    for (let i = first.length - 1; i >= 0; --i) if (first[i] !== null && first[i] !== undefined) { last = first[i]; break; }
    const top = niceMax(max);
    // The x axis spans the points kept (at least a minute, at most the history).
    const span = Math.min(state.history, Math.max(60, ...lines.map((values) => values.length)));
    lines.forEach((values, i) => { paths[i].setAttribute('d', pathOf(values.slice(-span), top, span)); });
    figure.dataset.points = String(points);
    figure.dataset.max = String(max);
    figure.dataset.last = last === null ? '' : String(last);
    let text = format(last);
    if (lines.length > 1) {
      const second = lines[1];
      let last2 = null;
      for (let i = second.length - 1; i >= 0; --i) if (second[i] !== null && second[i] !== undefined) { last2 = second[i]; break; }
      text += ' / ' + format(last2);
    }
    setText(figure.querySelector('output'), text + '  ↑' + format(top));
  }
  function drawBars(svg, counts) {
    const ns = 'http://www.w3.org/2000/svg';
    while (svg.childElementCount < counts.length) svg.appendChild(document.createElementNS(ns, 'rect'));
    while (svg.childElementCount > counts.length) svg.lastChild.remove();
    const max = Math.max(1, ...counts), w = 300 / Math.max(1, counts.length);
    counts.forEach((c, i) => {
      const r = svg.children[i], h = (c / max) * 66;
      r.setAttribute('x', (i * w + 1).toFixed(1));
      r.setAttribute('width', Math.max(1, w - 2).toFixed(1));
      r.setAttribute('y', (68 - h).toFixed(1));
      r.setAttribute('height', h.toFixed(1));
    });
  }

  // ---------- rendering ----------
  function mayControl(name) {
    const caller = state.caller, snap = state.snapshot;
    if (!caller || !snap || snap.server.controlMode !== 'explicit') return false;
    return caller.controlModels.some((p) => p === '*' || p === name || (p.endsWith('*') && name.startsWith(p.slice(0, -1))));
  }

  function render() {
    const snap = state.snapshot, s = snap.server;
    const ready = $('server-ready');
    ready.dataset.state = s.ready ? 'ready' : 'not-ready';
    setText(ready, s.ready ? 'ready' : 'not ready');
    setText($('updated'), 'updated ' + new Date(snap.time).toLocaleTimeString('en-GB'));
    setText($('s-version'), s.version || '–');
    setText($('s-commit'), (s.commit || '–').slice(0, 12));
    setText($('s-ort'), s.onnxruntime || '–');
    setText($('s-uptime'), duration(s.uptimeSeconds));
    setText($('s-cpu'), s.cpuCores === null ? '–' : num(s.cpuCores) + ' cores');
    setText($('s-rss'), bytes(s.residentBytes));
    setText($('s-conn'), s.openConnections === null ? '–' : String(s.openConnections));
    setText($('s-mode'), s.controlMode || '–');
    renderGpus(s.gpus);
    drawChart($('chart-cpu'), [state.series.cpu], (v) => num(v));
    drawChart($('chart-rss'), [state.series.rss], bytes);
    drawChart($('chart-conn'), [state.series.connections], (v) => num(v, 0));
    const logs = !!(state.caller && state.caller.canSetLogLevel);
    if (logs && $('log-control').hidden) readLogLevel();
    $('log-control').hidden = !logs;

    const sae = snap.sae;
    $('sae-panel').hidden = !sae;
    if (sae) {
      setText($('sae-model'), sae.model);
      setText($('sae-rate'), num(sae.perMinute, 1));
      setText($('sae-serious'), sae.verdicts ? `${pct(sae.seriousShare)} (${sae.serious})` : '–');
      setText($('sae-review'), sae.verdicts ? `${pct(sae.reviewShare)} (${sae.review})` : '–');
      drawChart($('chart-sae'), [state.series.saePerMinute], (v) => num(v, 1));
    }

    setText($('model-count'), `(${snap.models.length})`);
    const seen = new Set();
    for (const model of snap.models) {
      seen.add(model.name);
      renderModel(model, snap);
    }
    for (const [name, card] of state.cards) {
      if (!seen.has(name)) { card.root.remove(); state.cards.delete(name); }
    }
  }

  function renderGpus(gpus) {
    const box = $('gpus');
    box.hidden = !gpus || gpus.length === 0;
    if (box.hidden) return;
    while (box.childElementCount < gpus.length) {
      const d = document.createElement('div');
      d.appendChild(document.createElement('dt'));
      d.appendChild(document.createElement('dd'));
      box.appendChild(d);
    }
    gpus.forEach((g, i) => {
      const d = box.children[i];
      setText(d.firstChild, 'GPU ' + g.gpu);
      setText(d.lastChild, `${pct(g.utilization)} · ${bytes(g.memoryUsedBytes)} / ${bytes(g.memoryTotalBytes)}`);
    });
  }

  function card(model) {
    let c = state.cards.get(model.name);
    if (c) return c;
    const root = $('model-template').content.firstElementChild.cloneNode(true);
    root.dataset.model = model.name;
    c = {
      root,
      name: root.querySelector('.model-name'),
      state: root.querySelector('.model-state'),
      load: root.querySelector('.model-load'),
      unload: root.querySelector('.model-unload'),
      error: root.querySelector('.model-error'),
      versions: root.querySelector('table.versions tbody'),
      rps: root.querySelector('.m-rps'), errors: root.querySelector('.m-errors'),
      pending: root.querySelector('.m-pending'), cache: root.querySelector('.m-cache'),
      cRps: root.querySelector('.c-rps'), cErr: root.querySelector('.c-err'),
      cLat: root.querySelector('.c-lat'), cQueue: root.querySelector('.c-queue'),
      cPending: root.querySelector('.c-pending'),
      bars: root.querySelector('svg.bars'), barLabels: root.querySelector('.bar-labels'),
      windowLabel: root.querySelector('.window-label'),
      split: root.querySelector('table.split tbody'), routeExtra: root.querySelector('.route-extra'),
    };
    setText(c.name, model.name);
    c.load.addEventListener('click', () => control(model.name, 'load', c.load));
    c.unload.addEventListener('click', () => control(model.name, 'unload', c.unload));
    // Cards keep the server's order (by name).
    const list = $('models');
    const after = [...list.children].find((el) => el.dataset.model > model.name);
    list.insertBefore(root, after || null);
    state.cards.set(model.name, c);
    return c;
  }

  function fillRows(tbody, rows) {
    while (tbody.rows.length < rows.length) {
      const tr = tbody.insertRow();
      for (let i = 0; i < rows[0].length; ++i) tr.insertCell();
    }
    while (tbody.rows.length > rows.length) tbody.deleteRow(-1);
    rows.forEach((cells, r) => {
      const tr = tbody.rows[r];
      while (tr.cells.length < cells.length) tr.insertCell();
      cells.forEach((text, i) => {
        const cell = tr.cells[i];
        if (typeof text === 'object' && text !== null) {
          cell.className = text.cls || '';
          if (text.state !== undefined) cell.dataset.state = text.state;
          setText(cell, text.text);
        } else {
          setText(cell, String(text));
        }
      });
    });
  }

  function renderModel(model, snap) {
    const c = card(model);
    const states = model.versions.map((v) => v.state);
    const overall = states.includes('READY') ? 'READY' : states.includes('LOADING') ? 'LOADING' : 'UNAVAILABLE';
    c.state.dataset.state = overall;
    setText(c.state, overall);
    c.root.dataset.state = overall;
    const allowed = mayControl(model.name);
    c.unload.hidden = !(allowed && overall !== 'UNAVAILABLE');
    c.load.hidden = !(allowed && overall === 'UNAVAILABLE');
    c.error.hidden = !model.lastError;
    setText(c.error, model.lastError ? 'Last load failed: ' + model.lastError : '');

    const rows = model.versions.map((v) => [
      v.version || '–',
      {text: v.state, cls: 'state', state: v.state},
      v.loadSeconds === null ? '–' : seconds(v.loadSeconds),
      v.instances ? String(v.instances) : '–',
      v.devices || '–',
      v.memoryBytes ? bytes(v.memoryBytes) : '–',
    ]);
    fillRows(c.versions, rows);
    // Reasons (not READY, or a rolled-back reload) under their version.
    model.versions.forEach((v, i) => { c.versions.rows[i].title = v.reason || ''; });

    const series = state.series.models[model.name];
    const lastOf = (arr) => { for (let i = arr.length - 1; i >= 0; --i) if (arr[i] !== null) return arr[i]; return null; };
    setText(c.rps, series ? num(lastOf(series.rps), 1) : '–');
    setText(c.errors, model.requests ? pct(model.errorRate) : '–');
    setText(c.pending, num(model.pending, 0));
    const routing = model.routing;
    setText(c.cache, routing.cache ? (routing.cacheLookups ? pct(routing.cacheHitRatio) : '0 lookups') : 'off');
    if (series) {
      drawChart(c.cRps, [series.rps], (v) => num(v, 1));
      drawChart(c.cErr, [series.errorRate], pct);
      drawChart(c.cLat, [series.p50, series.p99], (v) => num(v, 2));
      drawChart(c.cQueue, [series.queueP50, series.queueP99], (v) => num(v, 2));
      drawChart(c.cPending, [series.pending], (v) => num(v, 0));
    }

    // Batch sizes over the window.
    const b = model.batchSizes;
    const labels = b.le.map((le, i) => (le === '+Inf' ? '>' + b.le[i - 1] : (i === 0 ? '≤' : '') + le));
    const counts = b.counts;
    drawBars(c.bars, counts.length ? counts : [0]);
    setText(c.barLabels, counts.length ? labels.map((l, i) => `${l}:${counts[i]}`).join('  ') : 'no runs yet');
    setText(c.windowLabel, `last ${snap.windowSeconds}s`);

    // Routing: configured weights beside the share each version got.
    const byVersion = new Map();
    for (const s of routing.split) byVersion.set(s.version, {weight: s.weight, share: null});
    for (const s of routing.shares) {
      const e = byVersion.get(s.version) || {weight: null, share: null};
      e.share = s.share;
      byVersion.set(s.version, e);
    }
    const splitRows = [...byVersion.entries()].sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([v, e]) => [v, e.weight === null ? (routing.split.length ? '0' : 'default') : pct(e.weight), pct(e.share)]);
    fillRows(c.split, splitRows.length ? splitRows : [['–', 'default', '–']]);
    const extra = [];
    if (routing.shadow) {
      const sh = routing.shadow;
      extra.push(`Shadow → ${sh.target} (${pct(sh.fraction)}): agreement ${pct(sh.agreement)}, ` +
                 `${sh.compared} compared, ${sh.dropped} dropped, ${sh.failed} failed`);
    }
    if (routing.fallback) extra.push(`Fallback → ${routing.fallback}`);
    if (routing.fallbackAnswers) extra.push(`Answered ${routing.fallbackAnswers} for failed primaries`);
    setText(c.routeExtra, extra.length ? extra.join(' · ') : 'No shadow or fallback.');
  }

  // ---------- operator actions ----------
  async function control(name, action, button) {
    const text = action === 'unload'
        ? `Unload model “${name}”? Requests to it fail until it is loaded again.`
        : `Load model “${name}” from the repository?`;
    if (!(await confirmAction(text))) return;
    button.disabled = true;
    try {
      const response = await fetch(`/v2/repository/models/${encodeURIComponent(name)}/${action}`,
                                   {method: 'POST', headers: headers({'Content-Type': 'application/json'}), body: '{}'});
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        banner(`${action} ${name}: ${body.error || response.status}`);
      } else {
        banner('');
      }
    } catch (e) {
      banner(`${action} ${name}: ${e.message}`);
    } finally {
      button.disabled = false;
      schedule(0);
    }
  }

  const LEVELS = {
    error: {log_info: false, log_warning: false, log_error: true, log_verbose_level: 0},
    warning: {log_info: false, log_warning: true, log_error: true, log_verbose_level: 0},
    info: {log_info: true, log_warning: true, log_error: true, log_verbose_level: 0},
    debug: {log_info: true, log_warning: true, log_error: true, log_verbose_level: 1},
    trace: {log_info: true, log_warning: true, log_error: true, log_verbose_level: 2},
  };
  function levelOf(settings) {
    if (settings.log_verbose_level >= 2) return 'trace';
    if (settings.log_verbose_level === 1) return 'debug';
    if (settings.log_info) return 'info';
    if (settings.log_warning) return 'warning';
    return 'error';
  }
  async function readLogLevel() {
    try {
      const response = await fetch('/v2/logging', {headers: headers(), cache: 'no-store'});
      if (response.ok) $('log-level').value = levelOf(await response.json());
    } catch (e) { /* the control keeps its choice */ }
  }
  async function applyLogLevel() {
    const level = $('log-level').value;
    if (!(await confirmAction(`Set the server's log level to “${level}”?`))) return readLogLevel();
    const button = $('log-apply');
    button.disabled = true;
    try {
      const response = await fetch('/v2/logging', {method: 'POST', headers: headers({'Content-Type': 'application/json'}),
                                                   body: JSON.stringify(LEVELS[level])});
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        banner('log level: ' + (body.error || response.status));
      } else {
        $('log-level').value = levelOf(await response.json());
      }
    } finally {
      button.disabled = false;
    }
  }

  // ---------- start ----------
  document.addEventListener('DOMContentLoaded', () => {
    $('sign-in').addEventListener('click', signIn);
    $('log-apply').addEventListener('click', applyLogLevel);
    $('pause').addEventListener('click', () => {
      state.paused = !state.paused;
      $('pause').setAttribute('aria-pressed', String(state.paused));
      setText($('pause'), state.paused ? 'Resume' : 'Pause');
      if (!state.paused) schedule(0); else clearTimeout(state.timer);
    });
    if (credential()) $('sign-in').hidden = false;
    schedule(0);
  });
})();
