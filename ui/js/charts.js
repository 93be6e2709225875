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

function scaled(v, units) {
  let a = Math.abs(v), i = 0;
  while (a >= KIB && i < units.length - 1) { a /= KIB; i++; }
  const s = v < 0 ? '-' : '';
  const d = i === 0 ? 0 : a < 10 ? 2 : a < 100 ? 1 : 0;
  return s + a.toFixed(d) + ' ' + units[i];
}

function formatter(unit) {
  switch (unit) {
    case 'pct': return (v) => v.toFixed(1) + ' %';
    case 'bytes': return (v) => scaled(v, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
    case 'rate': return (v) => scaled(v, ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s']);
    case 'mhz': return (v) => (v >= 1000 ? (v / 1000).toFixed(2) + ' GHz' : v.toFixed(0) + ' MHz');
    default: return (v) => String(v);
  }
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

function options(el, spec, uPlot) {
  const fmt = formatter(spec.unit);
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
  const y = spec.unit === 'pct'
    ? { range: (u, min, max) => [0, Math.max(100, max || 0)] }
    : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
  return {
    width: Math.max(el.clientWidth, 200),
    height: spec.height,
    series,
    bands,
    scales: { x: { time: true }, y },
    axes: [
      { ...axis, incrs: TIME_INCRS },
      { ...axis, size: 72, values: (u, vals) => vals.map((v) => (v == null ? '' : fmt(v))) },
    ],
    cursor: { drag: { x: true, y: false, setScale: true }, focus: { prox: 24 } },
    focus: { alpha: 0.4 },
    legend: { live: true },
  };
}

/** Creates a chart in `el`; returns a handle for the other functions. The
 *  chart is redrawn in the new colours when the system theme flips. */
export function createChart(uPlot, el, specJson, dataJson) {
  const spec = JSON.parse(specJson);
  const handle = { u: new uPlot(options(el, spec, uPlot), JSON.parse(dataJson), el) };
  handle.ro = new ResizeObserver(() => {
    const w = Math.max(el.clientWidth, 200);
    if (w !== handle.u.width) handle.u.setSize({ width: w, height: spec.height });
  });
  handle.ro.observe(el);
  handle.mq = window.matchMedia('(prefers-color-scheme: dark)');
  handle.onScheme = () => {
    const data = handle.u.data;
    handle.u.destroy();
    handle.u = new uPlot(options(el, spec, uPlot), data, el);
  };
  handle.mq.addEventListener('change', handle.onScheme);
  return handle;
}

/** New data; keeps a drag-zoom unless `reset`. */
export function updateChart(handle, dataJson, reset) {
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
  handle.mq.removeEventListener('change', handle.onScheme);
  handle.ro.disconnect();
  handle.u.destroy();
}
