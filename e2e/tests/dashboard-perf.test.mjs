// Dashboard figures for docs/BENCHMARKS.md: the compressed size of the
// client bundle as the server sends it (brotli and gzip), and how long the
// overview of 10 agents takes to become interactive on loopback. Prints the
// figures and writes them to e2e/artifacts/dashboard-perf.json.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifacts, launchBrowser, newPage, startServer } from './harness.mjs';

let server;
let browser;
const figures = {};

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  writeFileSync(join(artifacts, 'dashboard-perf.json'), JSON.stringify(figures, null, 2));
  console.log('dashboard figures', figures);
  await browser?.close();
  await server?.stop();
});

/** Bytes on the wire of one URL with one content encoding. */
async function wireSize(url, encoding) {
  const res = await fetch(url, { headers: { 'accept-encoding': encoding } });
  assert.equal(res.status, 200, url);
  // fetch() decodes; ask for the raw length the server sent.
  const length = res.headers.get('content-length');
  const body = Buffer.from(await res.arrayBuffer());
  return { sent: Number(length ?? NaN), raw: body.length, encoding: res.headers.get('content-encoding') };
}

test('client bundle, compressed as served, is at most 620 KiB', async () => {
  const page = await newPage(browser);
  const urls = [];
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/pkg/')) urls.push(u.pathname);
  });
  await page.goto(`${server.url}/status`);
  await page.locator('#check-health').waitFor();
  await page.waitForLoadState('networkidle');
  // Every module of the bundle, also those loaded later (uPlot).
  const html = await (await fetch(`${server.url}/`)).text();
  const base = html.match(/\/pkg\/[0-9a-f]{16}/)[0];
  const js = await (await fetch(`${server.url}${base}/ui.js`)).text();
  const snippets = [...js.matchAll(/from '\.\/(snippets\/[^']+)'/g)].map((m) => `${base}/${m[1]}`);
  const files = [...new Set([`${base}/ui_bg.wasm`, `${base}/ui.js`, ...snippets, ...urls])];
  const total = { raw: 0, br: 0, gzip: 0 };
  for (const f of files) {
    const br = await wireSize(`${server.url}${f}`, 'br');
    const gz = await wireSize(`${server.url}${f}`, 'gzip');
    // Without a content-length (chunked), compress locally is not possible
    // here; the server stores pre-compressed copies, so it is always set.
    total.raw += br.raw;
    total.br += br.encoding === 'br' ? br.sent : br.raw;
    total.gzip += gz.encoding === 'gzip' ? gz.sent : gz.raw;
  }
  figures.bundle = {
    files: files.length,
    raw_bytes: total.raw,
    brotli_bytes: total.br,
    gzip_bytes: total.gzip,
    brotli_kib: +(total.br / 1024).toFixed(1),
    gzip_kib: +(total.gzip / 1024).toFixed(1),
  };
  // 400 KiB until the dashboard grew the pages of five capabilities
  // (containers, accounts, notification channels, the install line, form
  // and keyboard work): about +80 KiB brotli, measured per page on
  // 2026-12-06; see docs/BENCHMARKS.md, "Dashboard". 510 KiB until two
  // more pages of capabilities: the uptime checks (the Checks page with its
  // form and status-page card, a check's page: +68.9 KiB) and the accounts'
  // overview groups and orders, tag rules and the Users page's controls
  // (+15.8 KiB), measured per branch on 2026-12-06 with brotli quality 11.
  // 595 KiB until the status-page card edited sections, labels,
  // maintenance windows and private pages, and the rule form made tag rules
  // (+18.0 KiB as served: 608.9 KiB), the check form's "Run from" (+1.9
  // KiB) and the rule form's container and unit lists, measured per branch
  // on 2026-12-06: 617.9 KiB together on main (2026-12-07).
  // The next step is splitting the wasm by page, not another raise.
  assert.ok(total.br <= 620 * 1024, `brotli bundle ${figures.bundle.brotli_kib} KiB > 620 KiB`);
});

test('the overview of 10 agents is interactive within 1 s on loopback', async () => {
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  // An account and 10 agents, through the API from inside the page (cookies).
  await page.goto(`${server.url}/status`);
  await page.evaluate(async () => {
    const json = { 'content-type': 'application/json' };
    const creds = JSON.stringify({ username: 'perf', password: 'a long enough password' });
    await fetch('/api/auth/register', { method: 'POST', headers: json, body: creds });
    await fetch('/api/auth/token', { method: 'POST', headers: json, body: creds });
    for (let i = 0; i < 10; i++) {
      await fetch('/api/agents', { method: 'POST', headers: json, body: JSON.stringify({ name: `host-${i}` }) });
    }
  });
  const runs = [];
  for (let run = 0; run < 5; run++) {
    const start = Date.now();
    await page.goto(`${server.url}/`);
    // Interactive = all 10 cards rendered by the hydrated app and the filter
    // reacting to input.
    await page.locator('#overview-cards .agent-card').nth(9).waitFor();
    await page.fill('#overview-filter', 'host-3');
    await page.locator('#overview-cards .agent-card').nth(1).waitFor({ state: 'detached' });
    const ms = Date.now() - start;
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return { dcl: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd) };
    });
    runs.push({ interactive_ms: ms, ...nav });
  }
  const sorted = runs.map((r) => r.interactive_ms).sort((a, b) => a - b);
  figures.overview_10_agents = {
    runs,
    median_interactive_ms: sorted[Math.floor(sorted.length / 2)],
    worst_interactive_ms: sorted[sorted.length - 1],
  };
  assert.ok(figures.overview_10_agents.median_interactive_ms <= 1000, JSON.stringify(runs));
});
