// uPlot options for StatusMonitor charts, so the Rust side stays small.
// `spec` (JSON, built by ui/src/chart_data.rs): { unit, height, series:
// [{label, color, edge}], bands: [[upper, lower]] }; `data` (JSON): uPlot's
// aligned columns with time in seconds and null for gaps.
// Colours come from the page's CSS variables so charts follow the theme.

const KIB = 1024;
// Time-axis steps in seconds: never finer than one second (reports come every
// few seconds, so sub-second labels like ":45.500" only add noise).
const M = 60, H = 3600, D = 86400;
const TIME_INCRS = [1, 2, 5, 10, 15, 30, M, 2 * M, 5 * M, 10 * M, 15 * M, 30 * M,
  H, 2 * H, 3 * H, 6 * H, 12 * H, D, 2 * D, 7 * D, 14 * D, 30 * D, 91 * D, 182 * D, 365 * D];

// One date and time format for charts and tables: the browser's locale
// (24 h where the locale says so). `fmtDateTime` is also used by the Rust
// side (ui/src/format.rs) for every date shown in a table.
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const TIME_S = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const DAY = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const MONTH = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short' });

export function fmtDateTime(ms) { return DATE_TIME.format(new Date(ms)); }
const DAY_TIME = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
export function fmtSince(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? TIME.format(d) : DAY_TIME.format(d);
}

// Axis labels of the time axis, by the step between ticks (seconds).
function timeTicks(u, vals, axisIdx, foundSpace, foundIncr) {
  const f = foundIncr < M ? TIME_S : foundIncr < D ? TIME : foundIncr < 28 * D ? DAY : MONTH;
  return vals.map((v) => (v == null ? '' : f.format(new Date(v * 1000))));
}

function scaled(v, units, tick) {
  let a = Math.abs(v), i = 0;
  while (a >= KIB && i < units.length - 1) { a /= KIB; i++; }
  const s = v < 0 ? '-' : '';
  const d = i === 0 ? 0 : a < 10 ? 2 : a < 100 ? 1 : 0;
  // Ticks sit on round binary steps: "512 MiB", "1.5 GiB", not "1.50 GiB".
  const n = tick ? String(parseFloat(a.toFixed(d))) : a.toFixed(d);
  return s + n + ' ' + units[i];
}

const BYTES = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
const RATES = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s'];

function formatter(unit, tick) {
  switch (unit) {
    case 'pct': return (v) => (tick ? String(parseFloat(v.toFixed(1))) : v.toFixed(1)) + ' %';
    case 'bytes': return (v) => scaled(v, BYTES, tick);
    case 'rate': return (v) => scaled(v, RATES, tick);
    case 'ms': return (v) => (v >= 1000 ? (v / 1000).toFixed(tick ? 1 : 2) + ' s' : v.toFixed(tick && v >= 10 ? 0 : 1) + ' ms');
    case 'mhz': return (v) => (v >= 1000 ? (v / 1000).toFixed(tick ? 1 : 2) + ' GHz' : v.toFixed(0) + ' MHz');
    default: return (v) => String(v);
  }
}

// Tick steps in the unit's own terms: powers of two of each binary unit
// (256 MiB, 512 MiB, 1 GiB …) for bytes and rates.
const BINARY_INCRS = [];
for (let k = 0; k < 5; k++) {
  for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) BINARY_INCRS.push(m * KIB ** k);
}

// Charts of one page zoom together; `group` holds their handles.
const group = new Set();
let syncing = false;

function zoomed(u) {
  const xs = u.data[0];
  if (!xs || xs.length < 2 || u.scales.x.min == null) return false;
  return u.scales.x.min > xs[0] + 0.5 || u.scales.x.max < xs[xs.length - 1] - 0.5;
}

function resetAll() {
  syncing = true;
  for (const h of group) {
    const xs = h.u.data[0];
    if (xs && xs.length > 1) h.u.setScale('x', { min: xs[0], max: xs[xs.length - 1] });
  }
  syncing = false;
}

// The row nearest `idx` (within 24 px) where some line has a value: the
// empty rows that frame a range or mark a gap show nothing.
function nearestWithValue(u, spec, idx) {
  if (idx == null) return null;
  const has = (i) => spec.series.some((s, k) => !s.edge && u.data[k + 1][i] != null);
  const xs = u.data[0];
  const px = (i) => Math.abs(u.valToPos(xs[i], 'x') - u.valToPos(xs[idx], 'x'));
  for (let d = 0; d < xs.length; d++) {
    for (const i of [idx - d, idx + d]) {
      if (i < 0 || i >= xs.length) continue;
      if (px(i) > 24) continue;
      if (has(i)) return i;
    }
    if (px(Math.max(idx - d, 0)) > 24 && px(Math.min(idx + d, xs.length - 1)) > 24) break;
  }
  return null;
}

// The tooltip at the cursor: time and every line's value. While the chart
// has the keyboard's focus, the same text goes to its live region.
function tooltipPlugin(spec, fmt, el, handle) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement('div');
        tip.className = 'chart-tip';
        tip.hidden = true;
        u.over.appendChild(tip);
        u.over.addEventListener('mouseleave', () => { tip.hidden = true; });
      },
      setCursor: (u) => {
        const i = nearestWithValue(u, spec, u.cursor.idx);
        if (i == null || u.cursor.left < 0) { tip.hidden = true; return; }
        const rows = [];
        spec.series.forEach((s, k) => {
          if (s.edge) return;
          const v = u.data[k + 1][i];
          if (v != null) rows.push([s.label, fmt(v), u.series[k + 1].stroke]);
        });
        if (rows.length === 0) { tip.hidden = true; return; }
        tip.replaceChildren();
        const head = document.createElement('div');
        head.className = 'chart-tip-time';
        head.textContent = fmtDateTime(u.data[0][i] * 1000);
        tip.appendChild(head);
        const shown = rows.slice(0, 8);
        for (const [label, value] of shown) {
          const row = document.createElement('div');
          const l = document.createElement('span');
          l.textContent = label;
          const val = document.createElement('b');
          val.textContent = value;
          row.append(l, val);
          tip.appendChild(row);
        }
        if (rows.length > shown.length) {
          const more = document.createElement('div');
          more.textContent = `+${rows.length - shown.length} more`;
          tip.appendChild(more);
        }
        if (handle.live && document.activeElement === el) {
          handle.live.textContent = `${head.textContent}: ${rows.map(([l, v]) => `${l} ${v}`).join(', ')}`;
        }
        tip.hidden = false;
        const w = tip.offsetWidth, h = tip.offsetHeight;
        const left = u.cursor.left + 12 + w > u.over.clientWidth ? u.cursor.left - 12 - w : u.cursor.left + 12;
        const top = Math.min(Math.max(u.cursor.top - h / 2, 0), Math.max(u.over.clientHeight - h, 0));
        tip.style.transform = `translate(${Math.max(left, 0)}px, ${top}px)`;
      },
    },
  };
}

// Legends stay readable: band edges never listed, at most LEGEND_TOP lines
// (the largest), then "+N more".
const LEGEND_TOP = 6;
function tidyLegend(u, spec) {
  const rows = u.root.querySelectorAll('.u-legend .u-series');
  // A non-live legend has no row for the time column.
  const skip = rows.length > spec.series.length ? 1 : 0;
  const lines = [];
  spec.series.forEach((s, k) => {
    const row = rows[k + skip];
    if (!row) return;
    if (s.edge) { row.classList.add('legend-hidden'); return; }
    let max = -Infinity;
    for (const v of u.data[k + 1] || []) if (v != null && v > max) max = v;
    lines.push([max, row]);
  });
  lines.sort((a, b) => b[0] - a[0]);
  lines.forEach(([, row], n) => row.classList.toggle('legend-hidden', n >= LEGEND_TOP));
  const legend = u.root.querySelector('.u-legend');
  let more = u.root.querySelector('.legend-more');
  const extra = lines.length - LEGEND_TOP;
  if (extra > 0 && legend) {
    if (!more) {
      more = document.createElement('span');
      more.className = 'legend-more';
      legend.after(more);
    }
    more.textContent = `+${extra} more`;
    more.title = lines.slice(LEGEND_TOP).map(([, row]) => row.textContent.trim()).join(', ');
  } else if (more) more.remove();
}

function palette(el) {
  const css = getComputedStyle(el);
  const get = (name, fallback) => (css.getPropertyValue(name) || '').trim() || fallback;
  const colors = [];
  for (let i = 0; i < 8; i++) colors.push(get('--c' + i, '#0f766e'));
  return { colors, text: get('--muted', '#5b6573'), grid: get('--border', '#d9dee5') };
}

function withAlpha(color, alpha) {
  if (color.startsWith('#') && color.length === 7) {
    const a = Math.round(alpha * 255).toString(16).padStart(2, '0');
    return color + a;
  }
  return color;
}

function options(el, spec, uPlot, handle) {
  const fmt = formatter(spec.unit, false);
  const tickFmt = formatter(spec.unit, true);
  const p = palette(el);
  // uPlot's default legend value for time: the full local date and time.
  const series = [{}];
  for (const s of spec.series) {
    const color = p.colors[s.color % p.colors.length];
    series.push({
      label: s.label,
      stroke: s.edge ? withAlpha(color, 0.35) : color,
      width: s.edge ? 0 : 1.5,
      points: { show: false },
      spanGaps: false,
      value: (u, v) => (v == null ? '—' : fmt(v)),
    });
  }
  const bands = spec.bands.map(([hi, lo]) => ({
    series: [hi, lo],
    fill: withAlpha(p.colors[spec.series[hi - 1].color % p.colors.length], 0.18),
  }));
  const axis = {
    stroke: p.text,
    grid: { stroke: p.grid, width: 1 },
    ticks: { stroke: p.grid, width: 1 },
    font: '11px system-ui, sans-serif',
  };
  const binary = spec.unit === 'bytes' || spec.unit === 'rate';
  const y = spec.unit === 'pct'
    ? { range: (u, min, max) => [0, Math.max(100, max || 0)] }
    : binary
      ? { range: (u, min, max) => [0, max > 0 ? roundUp(max * 1.05) : 1024] }
      : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
  return {
    width: Math.max(el.clientWidth, 200),
    height: spec.height,
    series,
    bands,
    scales: { x: { time: true }, y },
    axes: [
      { ...axis, incrs: TIME_INCRS, values: timeTicks },
      {
        ...axis, size: 76,
        ...(binary ? { incrs: BINARY_INCRS } : {}),
        values: (u, vals) => vals.map((v) => (v == null ? '' : tickFmt(v))),
      },
    ],
    cursor: { drag: { x: true, y: false, setScale: true }, focus: { prox: 24 }, sync: { key: 'statusmonitor' } },
    focus: { alpha: 0.4 },
    legend: { live: false },
    plugins: [tooltipPlugin(spec, fmt, el, handle)],
    hooks: {
      setScale: [(u, key) => {
        if (key !== 'x') return;
        // Read by the browser tests: the time span the axis shows.
        el.dataset.xMin = String(u.scales.x.min);
        el.dataset.xMax = String(u.scales.x.max);
        const z = zoomed(u);
        el.classList.toggle('zoomed', z);
        if (syncing || !handle.ready) return;
        syncing = true;
        for (const h of group) {
          if (h !== handle && h.u.data[0] && h.u.data[0].length > 1) {
            h.u.setScale('x', { min: u.scales.x.min, max: u.scales.x.max });
          }
        }
        syncing = false;
      }],
      setData: [(u) => tidyLegend(u, spec)],
    },
  };
}

// The next round binary step above `v`, so the top tick is a round value.
function roundUp(v) {
  for (const s of BINARY_INCRS) if (s * 4 >= v) return Math.ceil(v / s) * s;
  return v;
}

function resetButton(el) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'button secondary small zoom-reset';
  b.textContent = 'Reset zoom';
  b.addEventListener('click', resetAll);
  // Next to the chart, not in it: the chart is an image to assistive tech.
  el.after(b);
  return b;
}

// Keyboard: the chart takes focus; the arrow keys move the point (Home and
// End to the ends), Escape hides it. A live region beside the chart (not in
// it: the chart is an image to assistive tech) reads the tooltip's values.
function keyboard(el, handle) {
  el.tabIndex = 0;
  const live = document.createElement('p');
  live.className = 'visually-hidden chart-live';
  live.setAttribute('aria-live', 'polite');
  el.after(live);
  handle.live = live;
  let i = -1;
  el.addEventListener('keydown', (e) => {
    const u = handle.u;
    const n = u.data[0].length;
    if (e.key === 'Escape') { i = -1; u.setCursor({ left: -10, top: -10 }); return; }
    const step = { ArrowRight: 1, ArrowLeft: -1, Home: -n, End: n }[e.key];
    if (step === undefined || n === 0) return;
    e.preventDefault();
    i = Math.min(Math.max((i < 0 ? (step > 0 ? -1 : n) : i) + step, 0), n - 1);
    u.setCursor({ left: u.valToPos(u.data[0][i], 'x'), top: u.over.clientHeight / 2 });
  });
}

/** Creates a chart in `el`; returns a handle for the other functions. The
 *  chart is redrawn in the new colours when the system theme flips. */
export function createChart(uPlot, el, specJson, dataJson) {
  const spec = JSON.parse(specJson);
  const handle = { ready: false };
  handle.u = new uPlot(options(el, spec, uPlot, handle), JSON.parse(dataJson), el);
  handle.reset = resetButton(el);
  keyboard(el, handle);
  handle.ready = true;
  group.add(handle);
  handle.ro = new ResizeObserver(() => {
    const w = Math.max(el.clientWidth, 200);
    if (w !== handle.u.width) handle.u.setSize({ width: w, height: spec.height });
  });
  handle.ro.observe(el);
  handle.mq = window.matchMedia('(prefers-color-scheme: dark)');
  handle.onScheme = () => {
    const data = handle.u.data;
    handle.u.destroy();
    handle.u = new uPlot(options(el, spec, uPlot, handle), data, el);
  };
  handle.mq.addEventListener('change', handle.onScheme);
  return handle;
}

/** New data; keeps a drag-zoom unless `reset`. */
export function updateChart(handle, dataJson, reset) {
  // New data is not a zoom: the other charts keep their own view.
  syncing = true;
  try { update(handle, dataJson, reset); } finally { syncing = false; }
}

function update(handle, dataJson, reset) {
  const data = JSON.parse(dataJson);
  const u = handle.u;
  const zoomed = !reset && u.scales.x.min != null && u.data[0].length > 0 &&
    (u.scales.x.min > u.data[0][0] || u.scales.x.max < u.data[0][u.data[0].length - 1]);
  if (zoomed) {
    const { min, max } = u.scales.x;
    u.setData(data, false);
    u.setScale('x', { min, max });
  } else {
    u.setData(data, true);
  }
}

export function destroyChart(handle) {
  group.delete(handle);
  handle.reset.remove();
  handle.live.remove();
  handle.mq.removeEventListener('change', handle.onScheme);
  handle.ro.disconnect();
  handle.u.destroy();
}
