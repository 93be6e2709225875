// What runs on a machine, in Chromium against the real server binary: an
// agent's reports with containers, processes and services (played through
// POST /api/ingest, shaped as the agent sends them) show on the agent page
// as a sortable containers table with state and health badges, a click opens
// that container's CPU and memory charts (live and over 1 h), the processes
// table and the services list with the failed unit first; the overview card
// counts them. Screenshots go to e2e/artifacts/containers-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { artifacts, callApi, launchBrowser, newPage, startServer } from './harness.mjs';

const USER = 'carol';
const PASSWORD = 'correct horse battery';

let server;
let browser;

const api = (method, path, body, headers) => callApi(server.url, method, path, body, headers);

function report(ts, i) {
  const c = (id, name, state, health, cpu, restarts) => ({
    id: id.padEnd(64, '0'), name, image: 'nginx:1.27', state, restarts,
    ...(health ? { health } : {}),
    ...(state === 'running'
      ? { cpu_pct: cpu, mem_used_bytes: 50_000_000 + i * 1_000_000, mem_limit_bytes: 536_870_912,
          net_rx_bps: 1200 + i, net_tx_bps: 800, block_read_bps: 0, block_write_bps: 4096 }
      : {}),
  });
  return {
    ts_ms: ts, interval_ms: 5000,
    cpu: { total_pct: 10 + (i % 5) }, memory: { total_bytes: 8e9, used_bytes: 4e9 },
    containers: [
      c('aa', 'web', 'running', 'unhealthy', 5 + (i % 7), 2),
      c('bb', 'db', 'running', 'healthy', 40 + (i % 3), 0),
      c('cc', 'backup', 'exited', null, 0, 0),
    ],
    processes: [
      { pid: 4242, name: 'postgres', user: 'postgres', cpu_pct: 12.5, rss_bytes: 104857600 },
      { pid: 1, name: 'systemd', user: 'root', cpu_pct: 0.1, rss_bytes: 12e6 },
    ],
    services: [
      { unit: 'cron.service', active: 'active', sub: 'running' },
      { unit: 'nginx.service', active: 'failed', sub: 'failed' },
    ],
  };
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('containers, processes and services on the agent page', async () => {
  assert.equal((await api('POST', '/api/auth/register', { username: USER, password: PASSWORD })).status, 201);
  const login = await api('POST', '/api/auth/token', { username: USER, password: PASSWORD });
  const bearer = { authorization: `Bearer ${login.json.access_token}` };
  const created = await api('POST', '/api/agents', { name: 'docker-host' }, bearer);
  assert.equal(created.status, 201, created.text);
  const { agent, token } = created.json;
  // The last 10 minutes at 5 s, ending now.
  const now = Date.now();
  const reports = [];
  for (let i = 119; i >= 0; i--) reports.push(report(now - i * 5000, 120 - i));
  const sent = await api('POST', '/api/ingest', { reports }, { 'x-agent-token': token });
  assert.equal(sent.status, 200, sent.text);

  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`${server.url}/login`);
  await page.locator('#login-submit:not([disabled])').waitFor({ timeout: 15_000 });
  await page.fill('#login-username', USER);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  // The overview card counts them.
  await page.locator('.agent-card .agent-card-running', { hasText: '3 containers, 1 stopped, 1 unhealthy · 1 failed service' })
    .waitFor({ timeout: 15_000 });

  await page.goto(`${server.url}/agents/${agent.id}`);
  const table = page.locator('#containers');
  await table.locator('tr[data-container="web"]').waitFor({ timeout: 15_000 });
  assert.match(await page.textContent('#container-counts'), /3 containers, 1 stopped, 1 unhealthy/);
  assert.match(await table.locator('tr[data-container="web"]').textContent(), /running.*unhealthy/s);
  assert.match(await table.locator('tr[data-container="backup"]').textContent(), /exited/);
  // Sorting: by CPU, busiest first on the second click.
  const names = async () => table.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.container));
  assert.deepEqual(await names(), ['backup', 'db', 'web']);
  await table.locator('button[data-sort="CPU"]').click();
  await table.locator('button[data-sort="CPU"]').click();
  assert.equal((await names())[0], 'db');
  assert.equal(await table.locator('th[aria-sort="descending"]').count(), 1);
  // Processes and services.
  await page.locator('#processes', { hasText: 'postgres' }).waitFor();
  assert.equal(await page.locator('#services li').first().getAttribute('data-unit'), 'nginx.service');
  await page.screenshot({ path: join(artifacts, 'containers-agent-page.png'), fullPage: true });
  // Dark, and a phone: the tables fit the width (no sideways scrolling of
  // the page), in both schemes. The README shows these.
  for (const scheme of ['dark', 'light']) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [size, viewport] of [['phone', { width: 390, height: 844 }], ['desktop', { width: 1280, height: 900 }]]) {
      await page.setViewportSize(viewport);
      await page.waitForTimeout(250); // charts resize on a ResizeObserver
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${scheme} ${size}: the page is ${overflow} px wider than the screen`);
      if (size === 'phone') await page.locator('#containers').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(artifacts, `containers-${scheme}-${size}.png`), fullPage: size === 'desktop' });
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });

  // A container's charts, live and over the last hour (history API by name).
  await table.locator('tr[data-container="db"] button').click();
  const modal = page.locator('#container-modal');
  await modal.waitFor();
  await modal.locator('.plot canvas, .plot .uplot').first().waitFor({ timeout: 15_000 });
  assert.equal(await modal.locator('.plot-overlay').count(), 0, 'live values drawn');
  await page.screenshot({ path: join(artifacts, 'containers-chart-live.png') });
  await page.keyboard.press('Escape');
  await page.goto(`${server.url}/agents/${agent.id}?range=1h`);
  await table.locator('tr[data-container="db"] button').click();
  await modal.waitFor();
  await modal.locator('.chart-summary', { hasText: 'Container CPU' }).waitFor({ timeout: 15_000 });
  assert.equal(await modal.locator('.plot-overlay').count(), 0, 'history drawn');
  await page.screenshot({ path: join(artifacts, 'containers-chart-1h.png') });
  // The rule form offers the containers and units running now (free text
  // allowed): a "unit failed" rule for one unit.
  await page.goto(`${server.url}/alerts`);
  await page.click('#new-rule');
  await page.locator('#rule-form').waitFor();
  await page.selectOption('#rule-agent', { label: 'docker-host' });
  await page.selectOption('#rule-metric', 'container_down');
  const offered = () => page.locator('#rule-label-options option').evaluateAll((os) => os.map((o) => o.value));
  await page.waitForFunction(() => document.querySelectorAll('#rule-label-options option').length >= 3);
  assert.deepEqual(await offered(), ['backup', 'db', 'web']);
  await page.selectOption('#rule-metric', 'service_failed');
  await page.waitForFunction(() => document.querySelectorAll('#rule-label-options option').length === 2);
  assert.deepEqual(await offered(), ['cron.service', 'nginx.service']);
  await page.fill('#rule-label', 'nginx.service');
  await page.click('#save-rule');
  await page.locator('#rule-form').waitFor({ state: 'hidden' });
  const rules = await api('GET', '/api/rules', undefined, bearer);
  assert.deepEqual(rules.json.map((r) => [r.metric, r.label]), [['service_failed', 'nginx.service']]);

  // The logged-out session probe on the login page answers 401; nothing else may fail.
  assert.deepEqual(page.problems.filter((p) => !/status of 401/.test(p)), []);
});
