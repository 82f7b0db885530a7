// Lookahead operator console. Polls /_lookahead/status every second and the
// at-risk list (/_lookahead/record) every few seconds or when the search
// changes. No framework, no build: plain DOM.
//
// XSS: location names are user data (object keys). Every value reaches the
// page through textContent, or through setAttribute with numbers for the
// SVG charts; nothing is ever assigned to innerHTML. The CSP the gateway
// sends forbids inline scripts besides.
'use strict';

(function () {
  const statusPollMs = 1000;
  const recordPollMs = 5000;
  const fetchTimeoutMs = 5000;
  const searchDebounceMs = 250;
  const recordLimit = 100;
  const bucketMs = 10 * 1000;
  const historyMs = 5 * 60 * 1000;
  /** Client-side samples when the status carries no `writes` history. */
  const clientSamplesMax = 600;
  const svgNs = 'http://www.w3.org/2000/svg';

  const state = {
    polls: 0,
    clientSamples: [],
    lastCounters: undefined,
    search: '',
    recordTimer: undefined,
    recordSeq: 0,
    recordView: undefined,
    searchTimer: undefined,
  };

  // ---------------------------------------------------------------- helpers

  function $(id) {
    return document.getElementById(id);
  }

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  function setText(id, value) {
    const node = $(id);
    if (node) node.textContent = value === undefined || value === null || value === '' ? '—' : String(value);
  }

  function fmtInt(v) {
    return isNum(v) ? Math.round(v).toLocaleString('en-US') : '—';
  }

  function fmtPct(v) {
    if (!isNum(v)) return '—';
    const pct = v * 100;
    return (pct > 0 && pct < 1 ? pct.toFixed(2) : pct.toFixed(1)) + ' %';
  }

  function fmtBytes(v) {
    if (!isNum(v)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let x = v;
    let i = 0;
    while (x >= 1024 && i < units.length - 1) {
      x /= 1024;
      i++;
    }
    return (i === 0 ? String(Math.round(x)) : x.toFixed(x < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function fmtMs(v) {
    if (!isNum(v)) return '—';
    if (v < 1000) return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ms';
    if (v < 60000) return (v / 1000).toFixed(1) + ' s';
    return fmtDuration(v / 1000);
  }

  function fmtDuration(seconds) {
    if (!isNum(seconds)) return '—';
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function setBadge(id, cls, text) {
    const node = $(id);
    if (!node) return;
    node.className = 'badge badge-' + cls;
    node.textContent = text;
  }

  async function getJson(url) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), fetchTimeoutMs);
    try {
      const res = await fetch(url, { cache: 'no-store', credentials: 'same-origin', signal: abort.signal });
      let json;
      try {
        json = await res.json();
      } catch {
        json = undefined;
      }
      return { status: res.status, json };
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------- status

  /** [badge class, badge text, explanation] of the link between sites. */
  function linkState(s) {
    const r = s.replication;
    if ((r && r.role === 'fenced') || s.role === 'fenced') {
      return ['fenced', 'fenced', 'fenced: a newer epoch took over, this site refuses writes'];
    }
    if (!r) {
      if (s.role === 'secondary') return ['single', 'secondary', 'secondary site'];
      return ['single', 'single site', 'single site: no replication configured'];
    }
    switch (r.peer) {
      case 'ok':
        return ['healthy', 'healthy', 'healthy: the secondary acks record messages'];
      case 'degraded':
        return ['degraded', 'degraded', r.dirtyCount > 0
          ? 'degraded: keys written while the secondary was away await resync'
          : 'degraded: the secondary is unreachable, writes go on untracked by it'];
      case 'unreachable':
        return ['unreachable', 'unreachable', 'unreachable: writes that miss the record are refused'];
      default:
        return ['unknown', String(r.peer || 'unknown'), 'unknown link state'];
    }
  }

  function peerRole(s) {
    if (s.peer && s.peer.role) return s.peer.role;
    if (s.role === 'primary' || (s.replication && s.replication.role === 'fenced')) return 'secondary';
    if (s.role === 'secondary') return 'primary';
    return undefined;
  }

  function renderSites(s) {
    const r = s.replication;
    const fenced = r && r.role === 'fenced';
    setText('self-role', fenced ? 'fenced (was ' + s.role + ')' : s.role);
    setText('self-name', s.site);
    setText('self-endpoint', s.endpoint);
    setText('self-uptime', fmtDuration(s.uptimeSeconds));
    const single = !r && !s.peer && s.role !== 'secondary';
    setText('peer-role', single ? 'none' : peerRole(s));
    setText('peer-name', s.peer && s.peer.site);
    setText('peer-endpoint', single ? 'no peer configured' : s.peer && s.peer.endpoint);
    setText('peer-state', r && r.peer ? 'peer ' + r.peer : single ? 'single site' : undefined);
    const [cls, text, explanation] = linkState(s);
    setBadge('link-state', cls, text);
    setText('link-text', explanation);
    const link = document.querySelector('.link');
    if (link) link.className = 'link ' + (cls === 'healthy' ? 'ok' : cls === 'degraded' ? 'degraded' : cls === 'fenced' ? 'fenced' : cls === 'unreachable' ? 'down' : '');
    setText('epoch', r && isNum(r.epoch) ? r.epoch : isNum(s.epoch) ? s.epoch : undefined);
  }

  function renderWrites(s) {
    const r = s.replication || {};
    const totals = (s.writes && s.writes.totals) || {};
    const hits = isNum(r.hits) ? r.hits : totals.hits;
    const misses = isNum(r.misses) ? r.misses : totals.misses;
    let rate = r.missRate;
    if (!isNum(rate) && isNum(hits) && isNum(misses)) rate = hits + misses === 0 ? 0 : misses / (hits + misses);
    setText('writes-total', fmtInt(isNum(totals.writes) ? totals.writes : isNum(hits) && isNum(misses) ? hits + misses : undefined));
    setText('hits', fmtInt(hits));
    setText('misses', fmtInt(misses));
    setText('miss-rate', fmtPct(rate));
    setText('puts', fmtInt(totals.puts));
    setText('refused', fmtInt(totals.refused));
  }

  function renderReplication(s) {
    const r = s.replication;
    const note = $('replication-note');
    const facts = $('replication-facts');
    if (!r) {
      note.hidden = false;
      note.textContent = s.role === 'secondary'
        ? 'This is the secondary: the primary reports queue depth and lag.'
        : 'Replication is not configured on this site.';
      facts.hidden = true;
    } else {
      note.hidden = true;
      facts.hidden = false;
      setText('queue-depth', fmtInt(r.queueDepth));
      setText('lag', fmtMs(r.oldestQueuedAgeMs));
      setText('bytes-replicated', fmtBytes(r.bytesReplicated));
      setText('objects-replicated', fmtInt(r.objectsReplicated));
      setText('dirty', fmtInt(r.dirtyCount));
      setText('pending-misses', fmtInt(r.pendingMisses));
      setText('pending-removals', fmtInt(r.pendingRemovals));
      setText('admissions', fmtInt(r.admissions));
      setText('pinned-entries', fmtInt(r.pinnedEntries));
      setText('sync-copies', syncCopiesText(r));
    }
    renderResync(s.resync);
  }

  // Claim 2 (--sync-copy-on-miss): how the misses' synchronous copies ended;
  // the ones not copied were acked with the copier left to deliver them.
  function syncCopiesText(r) {
    if (r.syncCopyOnMiss === undefined) return undefined;
    if (!r.syncCopyOnMiss) return 'off';
    const c = r.syncCopies || {};
    const n = (k) => (isNum(c[k]) ? c[k] : 0);
    return 'on: ' + fmtInt(n('copied')) + ' copied; left to the copier: ' + fmtInt(n('peer-down')) + ' peer down, ' +
      fmtInt(n('failed')) + ' failed, ' + fmtInt(n('overflow')) + ' overflow';
  }

  function renderResync(resync) {
    const box = $('resync');
    if (!resync || typeof resync !== 'object') {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const done = isNum(resync.done) ? resync.done : 0;
    const total = isNum(resync.total) ? resync.total : 0;
    const progress = $('resync-progress');
    progress.max = total > 0 ? total : 1;
    progress.value = total > 0 ? Math.min(done, total) : 0;
    setBadge('resync-phase', 'degraded', String(resync.phase || 'running'));
    setText('resync-text', fmtInt(done) + ' / ' + fmtInt(total) + (total > 0 ? ' (' + fmtPct(done / total) + ')' : ''));
  }

  function renderRecordSize(s) {
    const r = s.replication || {};
    const view = state.recordView;
    const size = isNum(r.recordSize) ? r.recordSize : view && view.size;
    const max = isNum(r.recordEntriesMax) ? r.recordEntriesMax : view && view.entriesMax;
    setText('record-size', fmtInt(size));
    setText('record-max', fmtInt(max));
    const bar = $('record-bar');
    const ratio = isNum(size) && isNum(max) && max > 0 ? Math.min(1, size / max) : 0;
    bar.style.width = (ratio * 100).toFixed(2) + '%';
    bar.className = 'bar-fill' + (ratio >= 1 ? ' full' : ratio >= 0.8 ? ' high' : '');
  }

  // ---------------------------------------------------------------- charts

  /** Per-second samples {t, hits, misses, puts, putMsSum, putMsMax}. */
  function samplesOf(s) {
    if (s.writes && Array.isArray(s.writes.samples)) {
      return { samples: s.writes.samples, now: isNum(s.writes.now) ? s.writes.now : Date.now(), timed: true, counted: true };
    }
    // No server history: derive per-poll deltas of the replication counters.
    const r = s.replication;
    if (r && isNum(r.hits) && isNum(r.misses)) {
      const now = Date.now();
      const last = state.lastCounters;
      if (last && r.hits >= last.hits && r.misses >= last.misses) {
        state.clientSamples.push({ t: now, hits: r.hits - last.hits, misses: r.misses - last.misses, puts: 0, putMsSum: 0, putMsMax: 0 });
        if (state.clientSamples.length > clientSamplesMax) state.clientSamples.shift();
      }
      state.lastCounters = { hits: r.hits, misses: r.misses };
    }
    return { samples: state.clientSamples, now: Date.now(), timed: false, counted: Boolean(r) };
  }

  function bucketize(samples, now) {
    const start = Math.floor((now - historyMs) / bucketMs) * bucketMs;
    const n = Math.floor((now - start) / bucketMs) + 1;
    const buckets = [];
    for (let i = 0; i < n; i++) buckets.push({ t: start + i * bucketMs, hits: 0, misses: 0, puts: 0, putMsSum: 0, putMsMax: 0 });
    for (const s of samples) {
      if (!s || !isNum(s.t)) continue;
      const i = Math.floor((s.t - start) / bucketMs);
      if (i < 0 || i >= n) continue;
      const b = buckets[i];
      b.hits += s.hits || 0;
      b.misses += s.misses || 0;
      b.puts += s.puts || 0;
      b.putMsSum += s.putMsSum || 0;
      b.putMsMax = Math.max(b.putMsMax, s.putMsMax || 0);
    }
    return { buckets, start, end: start + n * bucketMs };
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(svgNs, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /** Line chart of `series` (arrays of number|null over equal time steps). */
  function drawChart(svg, opts) {
    // Draw in CSS pixels, so labels keep their size however wide the card.
    const w = Math.max(240, Math.round(svg.clientWidth || 600)), h = 150, left = 52, right = 8, top = 8, bottom = 20;
    const plotW = w - left - right, plotH = h - top - bottom;
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.replaceChildren();
    const values = opts.series.flat().filter(isNum);
    if (values.length === 0) {
      svg.appendChild(svgEl('text', { x: w / 2, y: h / 2, 'text-anchor': 'middle', class: 'empty' }, opts.emptyText));
      return;
    }
    const yMax = opts.yMax !== undefined ? opts.yMax : niceCeil(Math.max(...values));
    svg.appendChild(svgEl('line', { x1: left, y1: top, x2: left, y2: top + plotH, class: 'axis' }));
    svg.appendChild(svgEl('line', { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: 'axis' }));
    for (const frac of [0, 0.5, 1]) {
      const y = top + plotH * (1 - frac);
      svg.appendChild(svgEl('line', { x1: left, y1: y, x2: left + plotW, y2: y, class: 'axis' }));
      svg.appendChild(svgEl('text', { x: left - 4, y: y + 4, 'text-anchor': 'end', class: 'label' }, opts.fmtY(yMax * frac)));
    }
    const minutes = historyMs / 60000;
    svg.appendChild(svgEl('text', { x: left, y: h - 4, class: 'label' }, '-' + minutes + ' min'));
    svg.appendChild(svgEl('text', { x: left + plotW, y: h - 4, 'text-anchor': 'end', class: 'label' }, 'now'));
    opts.series.forEach((series, si) => {
      const n = series.length;
      const x = (i) => left + (n <= 1 ? plotW : (plotW * i) / (n - 1));
      const y = (v) => top + plotH * (1 - Math.min(1, v / yMax));
      let d = '';
      let pen = false;
      series.forEach((v, i) => {
        if (!isNum(v)) {
          pen = false;
          return;
        }
        const prevOk = i > 0 && isNum(series[i - 1]);
        const nextOk = i < n - 1 && isNum(series[i + 1]);
        if (!prevOk && !nextOk) svg.appendChild(svgEl('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5, class: 'd' + si }));
        d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
      });
      if (d !== '') svg.appendChild(svgEl('path', { d, class: 's' + si }));
    });
  }

  function renderCharts(s) {
    const { samples, now, timed, counted } = samplesOf(s);
    const { buckets } = bucketize(samples, now);
    drawChart($('chart-miss'), {
      series: [buckets.map((b) => (b.hits + b.misses > 0 ? b.misses / (b.hits + b.misses) : null))],
      yMax: 1,
      fmtY: (v) => Math.round(v * 100) + '%',
      emptyText: counted ? 'no writes in the last ' + historyMs / 60000 + ' minutes' : 'this site reports no write statistics',
    });
    drawChart($('chart-latency'), {
      series: [
        buckets.map((b) => (b.puts > 0 ? b.putMsSum / b.puts : null)),
        buckets.map((b) => (b.puts > 0 ? b.putMsMax : null)),
      ],
      fmtY: fmtMs,
      emptyText: timed ? 'no PUTs in the last ' + historyMs / 60000 + ' minutes' : 'this site reports no PUT timings',
    });
  }

  // ---------------------------------------------------------------- record

  function renderRecord(view) {
    state.recordView = view;
    const kinds = view.byKind || {};
    setText('kind-key', fmtInt(kinds.key));
    setText('kind-prefix', fmtInt(kinds.prefix));
    setText('kind-upload', fmtInt(kinds.upload));
    setText('kind-bucket', fmtInt(kinds.bucket));
    const generations = isNum(view.generationCount) ? view.generationCount : Array.isArray(view.generations) ? view.generations.length : undefined;
    setText('generations', fmtInt(generations));
    const entries = Array.isArray(view.entries) ? view.entries : [];
    const rows = entries.map((e) => {
      const tr = document.createElement('tr');
      tr.appendChild(el('td', e && e.name));
      tr.appendChild(el('td', e && e.kind));
      tr.appendChild(el('td', e && isNum(e.generation) ? e.generation : '—'));
      return tr;
    });
    $('record-list').replaceChildren(...rows);
    const matched = isNum(view.matched) ? view.matched : entries.length;
    let note;
    if (matched === 0) note = state.search ? 'no location matches “' + state.search + '”' : 'the record is empty: nothing is at risk';
    else if (matched > entries.length) note = 'showing ' + fmtInt(entries.length) + ' of ' + fmtInt(matched) + (state.search ? ' matching' : '') + ' locations';
    else note = fmtInt(matched) + (state.search ? ' matching' : '') + ' location' + (matched === 1 ? '' : 's');
    setText('record-note', note);
    if (state.lastStatus) renderRecordSize(state.lastStatus);
  }

  function recordUnavailable() {
    setText('record-note', 'this site serves no record list');
    $('record-search').disabled = true;
  }

  async function pollRecord() {
    clearTimeout(state.recordTimer);
    const seq = ++state.recordSeq;
    let again = true;
    try {
      const query = new URLSearchParams({ search: state.search, limit: String(recordLimit) });
      const res = await getJson('/_lookahead/record?' + query.toString());
      if (seq !== state.recordSeq) return; // a newer search answered or is on its way
      if (res.status === 404) {
        recordUnavailable();
        again = false;
      } else if (res.status === 200 && res.json) renderRecord(res.json);
      else setText('record-note', 'record list failed: ' + ((res.json && res.json.message) || 'HTTP ' + res.status));
    } catch (err) {
      if (seq === state.recordSeq) setText('record-note', 'record list failed: ' + String(err && err.message ? err.message : err));
    } finally {
      if (again && seq === state.recordSeq) state.recordTimer = setTimeout(pollRecord, recordPollMs);
    }
  }

  // ---------------------------------------------------------------- loop

  function render(s) {
    state.lastStatus = s;
    renderSites(s);
    renderWrites(s);
    renderReplication(s);
    renderRecordSize(s);
    renderCharts(s);
    setText('raw', JSON.stringify(s, null, 2));
  }

  function setConn(ok, text) {
    const conn = $('conn');
    conn.className = ok ? 'muted' : 'error';
    conn.textContent = text;
  }

  async function pollStatus() {
    try {
      const res = await getJson('/_lookahead/status');
      if (res.status !== 200 || !res.json || typeof res.json !== 'object') {
        throw new Error((res.json && res.json.message) || 'HTTP ' + res.status);
      }
      render(res.json);
      state.polls++;
      document.body.dataset.polls = String(state.polls);
      setConn(true, 'updated ' + new Date().toLocaleTimeString());
    } catch (err) {
      setConn(false, 'status failed: ' + String(err && err.message ? err.message : err) + ' (retrying)');
      setBadge('link-state', 'error', 'no status');
    } finally {
      setTimeout(pollStatus, statusPollMs);
    }
  }

  function start() {
    $('record-search').addEventListener('input', (event) => {
      clearTimeout(state.searchTimer);
      const value = event.target.value;
      state.searchTimer = setTimeout(() => {
        state.search = value;
        void pollRecord();
      }, searchDebounceMs);
    });
    void pollStatus();
    void pollRecord();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
