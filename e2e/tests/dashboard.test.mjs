// Dashboard: the whole user journey in headless Chromium against the real
// release binary: register → create an agent (token shown once, countdown,
// command line) → [live: start the real agent with the shown command, the
// overview card goes online, the chart moves, the CPU modal → alerts:
// notification settings and "send test", a refused rule, a rule that fires
// into the history and resolves when edited, filters and sorting] → rename →
// regenerate the token → an expired session goes to login and comes back →
// delete → log out. Screenshots of every page, light and dark, desktop and
// phone width, go to e2e/artifacts/dashboard-*.png.
//
// The live part needs the agent binary (target/release/statusmonitor-agent,
// built by `make build`, which `make e2e` runs); without it the step fails
// saying so, rather than passing without having run. Telegram and the webhook point at one local fake that records
// what it got (the real Bot API cannot be reached from here).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifacts, launchBrowser, newPage, repo, startServer } from './harness.mjs';
import { assertAccessible } from './a11y.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery';
const AGENT_BIN = join(repo, 'target', 'release', 'statusmonitor-agent');

const BOT_TOKEN = '123456:e2e-fake-bot-token';

let server;
let browser;
let agentProcess;
let fake;

/** A fake Telegram Bot API and webhook receiver in one: records every
 *  request and answers 200 `{"ok":true}`. */
async function startFake() {
  const hits = [];
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let json = null;
      try { json = JSON.parse(body); } catch { /* not JSON */ }
      hits.push({ path: req.url, headers: req.headers, json });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true,"result":{"message_id":1}}');
    });
  });
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  return { hits, http, url: `http://127.0.0.1:${http.address().port}` };
}

before(async () => {
  fake = await startFake();
  server = await startServer([], {
    STATUSMONITOR_TELEGRAM_BOT_TOKEN: BOT_TOKEN,
    STATUSMONITOR_TELEGRAM_API_BASE: fake.url,
  });
  browser = await launchBrowser();
});

after(async () => {
  agentProcess?.kill('SIGTERM');
  await browser?.close();
  await server?.stop();
  fake?.http.close();
});

/** Problems other than the expected ones: the 401 of the logged-out session
 *  probe, the 403 of the deliberately wrong current password, the 422s of the
 *  deliberately invalid webhook URL and rule, and the live socket of a
 *  just-deleted agent. */
function unexpected(page) {
  return page.problems.filter((p) => !/status of (40[13]|422)/.test(p) && !/\/api\/ws\//.test(p));
}

/** Light and dark, desktop and phone: four screenshots of the current page
 *  (of the viewport only for a modal, which covers the viewport), and the
 *  accessibility check in light and dark. */
async function shots(page, name, { fullPage = true } = {}) {
  const desktop = page.viewportSize();
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await assertAccessible(page, `${name} (${scheme})`);
    for (const [size, viewport] of [['desktop', desktop], ['phone', { width: 390, height: 844 }]]) {
      await page.setViewportSize(viewport);
      await page.waitForTimeout(250); // charts resize on a ResizeObserver
      await page.screenshot({ path: join(artifacts, `dashboard-${name}-${scheme}-${size}.png`), fullPage });
    }
  }
  await page.setViewportSize(desktop);
  await page.emulateMedia({ colorScheme: 'light' });
}

/** Waits until the page is hydrated: a submit button that SSR renders
 *  disabled becomes enabled. */
async function hydrated(page, selector) {
  await page.locator(`${selector}:not([disabled])`).waitFor({ timeout: 15_000 });
}

async function hasIngest() {
  const res = await fetch(`${server.url}/api/ingest`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  return res.status !== 404 && res.status !== 405;
}

test('the dashboard journey', async (t) => {
  const page = await newPage(browser, { viewport: { width: 1280, height: 860 } });

  await t.test('visitors see the landing page and the login form', async () => {
    await page.goto(`${server.url}/`);
    await page.locator('h1', { hasText: 'Your servers, at a glance' }).waitFor();
    await page.goto(`${server.url}/login`);
    await hydrated(page, '#login-submit');
    await page.locator('a[href="/register"]').waitFor(); // registration is open on a fresh server
    await shots(page, 'login');
  });

  await t.test('register logs in and lands on the agents page', async () => {
    await page.goto(`${server.url}/register`);
    await hydrated(page, '#register-submit');
    // Up front: who becomes the admin, and what a valid name and password are.
    await page.locator('#register-rules', { hasText: 'becomes its administrator' }).waitFor();
    assert.match(await page.textContent('#register-rules'), /3 to 32 .* at least 10 characters/);
    await shots(page, 'register');
    // Errors stand next to their field: a mismatch at "repeat", the
    // server's refusal of a short password at the password.
    await page.fill('#reg-username', USER);
    await page.fill('#reg-password', PASSWORD);
    await page.fill('#reg-confirm', 'something else');
    await page.click('#register-submit');
    await page.locator('#reg-confirm + #confirm-error', { hasText: 'The passwords differ' }).waitFor();
    await page.fill('#reg-password', 'short');
    await page.fill('#reg-confirm', 'short');
    await page.click('#register-submit');
    await page.locator('#reg-password + #password-error', { hasText: /10 characters/ }).waitFor();
    assert.equal(await page.locator('#confirm-error').count(), 0, 'the old message went');
    assert.doesNotMatch(await page.textContent('#password-error'), /^password:|HTTP/);
    await page.fill('#reg-password', PASSWORD);
    await page.fill('#reg-confirm', PASSWORD);
    await page.click('#register-submit');
    await page.waitForURL(`${server.url}/agents`);
    await page.locator('#agents-empty').waitFor();
    await page.locator('.account-corner .who', { hasText: USER }).waitFor();
  });

  await t.test('the overview of a new user says how to start', async () => {
    await page.click('nav a[href="/"]');
    await page.locator('#overview-empty').waitFor();
    await shots(page, 'overview-empty');
  });

  await t.test('every link writes the address bar; Back, Forward and reload keep the page', async () => {
    const at = () => page.evaluate(() => location.pathname);
    const heading = (text) => page.locator('main h1', { hasText: text }).waitFor();
    await page.click('nav a[href="/alerts"]');
    await heading('Alerts');
    assert.equal(await at(), '/alerts');
    await page.click('nav a[href="/account"]');
    await heading('Account');
    assert.equal(await at(), '/account');
    await page.goBack();
    await heading('Alerts');
    assert.equal(await at(), '/alerts');
    await page.goBack();
    await heading('Overview');
    assert.equal(await at(), '/');
    await page.goForward();
    await heading('Alerts');
    assert.equal(await at(), '/alerts');
    await page.reload();
    await heading('Alerts');
    assert.equal(await at(), '/alerts');
    // The skip link lands on the main content.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
  });

  let command;
  await t.test('creating an agent shows its token once, with countdown and command', async () => {
    await page.click('nav a[href="/agents"]');
    await hydrated(page, '#create-agent');
    // A name of only spaces is refused out loud, not ignored.
    await page.fill('#new-agent-name', '   ');
    await page.click('#create-agent');
    await page.locator('#new-agent-error', { hasText: 'spaces alone' }).waitFor();
    await page.fill('#new-agent-name', 'nas');
    await page.click('#create-agent');
    await page.locator('#token-panel').waitFor();
    assert.equal(await page.locator('#new-agent-error').count(), 0, 'cleared on the next attempt');
    const token = await page.inputValue('#agent-token');
    assert.ok(token.length >= 32, `token looks random: ${token}`);
    command = await page.inputValue('#agent-command');
    assert.equal(command, `statusmonitor-agent --server ${server.url} --token ${token}`);
    // The one line that installs the agent from this server, copied as a
    // user would: it names this server and the token.
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await page.click('#copy-install');
    await page.locator('#copy-install', { hasText: 'Copied' }).waitFor();
    // Its accessible name says so too, then goes back with the text.
    await page.getByRole('button', { name: 'Copied the install command', exact: true }).waitFor();
    const install = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(install, `curl -fsSL ${server.url}/install.sh | sudo sh -s -- --token ${token}`);
    assert.equal(await page.inputValue('#agent-install'), install);
    // The container line loads the image from this server and passes the token.
    const docker = await page.inputValue('#agent-docker');
    assert.ok(docker.startsWith(`curl -fsSL ${server.url}/download/agent/image/linux-$(uname -m).tar | docker load && docker run -d `), docker);
    assert.ok(docker.endsWith(` statusmonitor-agent:latest --server ${server.url} --token ${token}`), docker);
    // "Copied ✓" goes back to "Copy" (the button's name says "Copy the …").
    await page.locator('#copy-install', { hasText: /^Copy$/ }).waitFor();
    assert.equal(await page.getAttribute('#copy-install', 'aria-label'), 'Copy the install command');
    const first = await page.textContent('#token-countdown');
    assert.match(first, /^[45]:\d\d$/);
    await page.waitForTimeout(1_200);
    assert.notEqual(await page.textContent('#token-countdown'), first, 'the countdown ticks');
    await page.locator('.agent-row', { hasText: 'nas' }).waitFor();
    await page.locator('.agent-row [data-status="pending"]').waitFor();
    // A second "nas" would be indistinguishable: refused.
    await page.fill('#new-agent-name', 'NAS');
    await page.click('#create-agent');
    await page.locator('#new-agent-error', { hasText: 'already have an agent named' }).waitFor();
    assert.equal(await page.locator('.agent-row').count(), 1);
    await page.fill('#new-agent-name', '');
    await shots(page, 'agents-token');
    // The token is in no later answer.
    const list = await page.evaluate(async () => (await fetch('/api/agents')).text());
    assert.ok(!list.includes(token), 'the list never carries the token');
  });

  await t.test('live: the real agent goes online and the charts move', async (t) => {
    assert.ok(existsSync(AGENT_BIN), `no agent binary at ${AGENT_BIN}: run \`make build\` first`);
    assert.ok(await hasIngest(), 'the server has no /api/ingest');
    // Before its first report the agent's page says what to run, not empty axes.
    const id = await page.locator('.agent-row', { hasText: 'nas' }).getAttribute('data-agent-id');
    const waiting = await page.context().newPage();
    await waiting.goto(`${server.url}/agents/${id}`);
    const note = waiting.locator('#waiting-first-report');
    await note.waitFor();
    assert.match(await note.textContent(), new RegExp(`statusmonitor-agent --server ${server.url} --token`));
    assert.equal(await waiting.locator('.agent-data').isVisible(), false, 'no empty charts');
    await waiting.close();
    const [, ...args] = command.split(' ');
    // A spool and config of its own: a spool left by an earlier run would be
    // replayed first and hold back the live reports.
    const own = mkdtempSync(join(tmpdir(), 'statusmonitor-dashboard-agent-'));
    agentProcess = spawn(AGENT_BIN, [
      ...args, '--interval', '1s', '--spool-dir', join(own, 'spool'), '--config', join(own, 'none.toml'),
    ], { stdio: 'ignore' });
    await page.locator('#token-active').waitFor({ timeout: 20_000 });
    await page.click('#token-done');
    await page.click('nav a[href="/"]');
    const card = page.locator('.agent-card[data-online="true"]');
    await card.waitFor({ timeout: 20_000 });
    const spark = card.locator('.sparkline path');
    const before = await spark.getAttribute('d');
    await page.waitForTimeout(2_500);
    assert.notEqual(await spark.getAttribute('d'), before, 'the sparkline moves');
    await shots(page, 'overview');
    await card.locator('a.stretched').click();
    await page.locator('#live-cpu').filter({ hasText: '%' }).waitFor({ timeout: 10_000 });
    await page.locator('[data-chart="CPU"] .u-over').waitFor();
    await shots(page, 'agent-live');
    await page.click('[data-chart="CPU"] .expand');
    await page.locator('#cpu-modal .core-bar').first().waitFor({ timeout: 10_000 });
    await shots(page, 'cpu-modal', { fullPage: false });
    await page.keyboard.press('Escape');
    await page.locator('#cpu-modal').waitFor({ state: 'detached' });
    // 7 days on an agent a few seconds old: the axis is the 7 days ending
    // now (never dates outside it), with a note where the data begins.
    await page.click('#range-picker [data-range="7d"]');
    await page.waitForURL(/range=7d/);
    const cpuChart = page.locator('[data-chart="CPU"] .chart[data-x-min]');
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-chart="CPU"] .chart');
      return el && Number(el.dataset.xMax) - Number(el.dataset.xMin) > 6 * 86400;
    });
    const nowS = Date.now() / 1000;
    const xMin = Number(await cpuChart.getAttribute('data-x-min'));
    const xMax = Number(await cpuChart.getAttribute('data-x-max'));
    assert.ok(Math.abs(xMax - nowS) < 120, `the axis ends now (${xMax} vs ${nowS})`);
    assert.ok(Math.abs(xMax - xMin - 7 * 86400) < 120, `the axis spans 7 days (${xMax - xMin} s)`);
    await page.locator('[data-chart="CPU"] .chart-note', { hasText: 'Collecting since' }).waitFor();
    // Legends list lines, not the min/max edges of their bands.
    const legend = await page.locator('[data-chart="Memory"] .u-legend .u-series:not(.legend-hidden)').allTextContents();
    assert.ok(legend.length > 0 && legend.every((l) => !/ (min|max)\b/.test(l)), `legend: ${legend}`);
    await shots(page, 'agent-7d');
    await page.click('#range-picker [data-range="1h"]');
    await page.waitForURL(/range=1h/);
    // Every chart has a text alternative: min / average / max of each line.
    await page.locator('[data-chart="CPU"] .chart-summary li', { hasText: /^CPU: min .+ %, average .+ %, max .+ %$/ }).waitFor({ state: 'attached', timeout: 10_000 });
    // A tooltip at the cursor with the time and the values.
    const over = page.locator('[data-chart="CPU"] .u-over');
    const box = await over.boundingBox();
    await page.mouse.move(box.x + box.width - 4, box.y + box.height / 2);
    await page.locator('[data-chart="CPU"] .chart-tip:not([hidden])', { hasText: '%' }).waitFor();
    // Drag-zoom one chart: every chart of the page follows; a visible reset.
    const memChart = page.locator('[data-chart="Memory"] .chart');
    const memSpan = async () => Number(await memChart.getAttribute('data-x-max')) - Number(await memChart.getAttribute('data-x-min'));
    const wholeSpan = await memSpan();
    await page.mouse.move(box.x + box.width * 0.90, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.99, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const reset = page.locator('[data-chart="Memory"] .zoom-reset');
    await reset.waitFor({ state: 'visible' });
    assert.ok((await memSpan()) < wholeSpan / 2, 'the memory chart zoomed with the CPU chart');
    await reset.click();
    await reset.waitFor({ state: 'hidden' });
    assert.ok(Math.abs((await memSpan()) - wholeSpan) < wholeSpan * 0.1, 'reset shows the whole range again');
    // The keyboard too: the chart takes focus, the arrow keys move the
    // point, and its live region reads the time and the values.
    await page.mouse.move(0, 0);
    await page.focus('[data-chart="CPU"] .chart');
    await page.keyboard.press('End');
    await page.locator('[data-chart="CPU"] .chart-tip:not([hidden])', { hasText: '%' }).waitFor();
    const live = page.locator('[data-chart="CPU"] .chart-live[aria-live="polite"]');
    await page.waitForFunction(() => /%/.test(document.querySelector('[data-chart="CPU"] .chart-live')?.textContent ?? ''));
    const atEnd = await live.textContent();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
    await page.waitForFunction((before) => {
      const text = document.querySelector('[data-chart="CPU"] .chart-live').textContent;
      return /%/.test(text) && text !== before;
    }, atEnd);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(1_500);
    await shots(page, 'agent-1h');
    // The range is in the URL: a reload keeps it.
    await page.reload();
    await page.locator('#range-picker [data-range="1h"][aria-pressed="true"]').waitFor();
    await page.click('nav a[href="/agents"]');
  });

  await t.test('recovery: while the server is away the overview says so over the last data, then comes back by itself', async () => {
    assert.ok(agentProcess, 'needs the live agent (the live step failed)');
    await page.click('nav a[href="/"]');
    await page.locator('.agent-card[data-online="true"]').waitFor({ timeout: 20_000 });
    const mark = page.problems.length;
    await server.restart(async () => {
      await page.locator('.reconnecting').waitFor({ timeout: 15_000 });
      assert.equal(await page.locator('.agent-card').count(), 1, 'the last cards stay on screen');
      assert.equal(await page.locator('.error-note').count(), 0, 'no error page while reconnecting');
      await shots(page, 'overview-reconnecting');
    });
    // Back by itself (no reload, no click): well within the retry cap.
    await page.locator('.reconnecting').waitFor({ state: 'detached', timeout: 12_000 });
    await page.locator('.agent-card .spark-caption', { hasText: '· live' }).waitFor({ timeout: 12_000 });
    // Refused connections while the server was away are expected.
    const during = page.problems.splice(mark);
    const other = during.filter((p) => !/ERR_CONNECTION_REFUSED|requestfailed|WebSocket/i.test(p));
    assert.deepEqual(other, []);
  });

  await t.test('alerts: notification channels and send test', async (t) => {
    assert.ok(agentProcess, 'needs the live agent (the live step failed)');
    await page.click('nav a[href="/alerts"]');
    await hydrated(page, '#new-rule');
    await page.locator('#rules-empty').waitFor();
    await page.locator('#history-empty').waitFor();
    await page.locator('#channels-empty').waitFor();
    // A webhook channel: the form is drawn from the kind's fields.
    await page.click('#new-channel');
    await page.selectOption('#channel-kind', 'webhook');
    await page.fill('#channel-name', 'Webhook');
    // A bad URL is refused next to its field, in words, and nothing is stored.
    await page.fill('#channel-url', 'ftp://example.com/x');
    await page.click('#save-channel');
    const refusal = page.locator('label:has(#channel-url) .field-error', { hasText: 'http:// or https://' });
    await refusal.waitFor();
    assert.doesNotMatch(await refusal.textContent(), /config\.url|HTTP 422/, 'a sentence, not API ids');
    await page.fill('#channel-url', `${fake.url}/hook`);
    await page.fill('#channel-secret', 'e2e secret');
    await page.click('#save-channel');
    await page.locator('#channel-form').waitFor({ state: 'hidden' });
    // A Telegram channel on the server's bot.
    await page.click('#new-channel');
    await page.selectOption('#channel-kind', 'telegram');
    await page.fill('#channel-name', 'Telegram');
    await page.fill('#channel-chat_id', '4242');
    await page.click('#save-channel');
    await page.locator('#channel-form').waitFor({ state: 'hidden' });
    await page.locator('#channels .channel-row').nth(1).waitFor();
    // The secret is write-only: editing shows it as set, never its value.
    const hook = page.locator('.channel-row', { hasText: 'Webhook' });
    await hook.locator('.action-edit').click();
    await page.locator('#channel-secret[placeholder^="set"]').waitFor();
    assert.equal(await page.inputValue('#channel-secret'), '');
    await page.click('#channel-form button:has-text("Cancel")');
    const before = fake.hits.length;
    await hook.locator('.action-test').click();
    await page.locator('.channel-row', { hasText: 'Webhook' }).locator('.test-result', { hasText: 'Test sent' }).waitFor();
    const telegram = page.locator('.channel-row', { hasText: 'Telegram' });
    await telegram.locator('.action-test').click();
    await page.locator('.channel-row', { hasText: 'Telegram' }).locator('.test-result', { hasText: 'Test sent' }).waitFor();
    await page.locator('.channel-row', { hasText: 'Webhook' }).locator('text=last sent').waitFor();
    const got = fake.hits.slice(before);
    assert.ok(got.some((h) => h.path === `/bot${BOT_TOKEN}/sendMessage` && h.json?.chat_id == 4242), 'Telegram got the test');
    assert.ok(got.some((h) => h.path === '/hook' && /^sha256=[0-9a-f]{64}$/.test(h.headers['x-statusmonitor-signature'] ?? '')),
      'the webhook got a signed test');
    // The rule form offers the channels.
    await page.click('#new-rule');
    await page.locator('#rule-channels .rule-channel').nth(1).waitFor();
    await page.keyboard.press('Escape');
  });

  await t.test('alerts: a rule fires into the history, resolves when edited', async (t) => {
    assert.ok(agentProcess, 'needs the live agent (the live step failed)');
    // Keyboard: the form takes focus, Escape closes it and gives focus back.
    await page.click('#new-rule');
    await page.locator('#rule-form').waitFor();
    const focused = () => page.evaluate(() => document.activeElement?.id);
    assert.equal(await focused(), 'rule-agent');
    await page.keyboard.press('Escape');
    await page.locator('#rule-form').waitFor({ state: 'hidden' });
    assert.equal(await focused(), 'new-rule');
    await page.keyboard.press('Enter');
    await page.locator('#rule-form').waitFor();
    // It starts at "Choose an agent…", then offers that agent's own mounts.
    assert.equal(await page.inputValue('#rule-agent'), '');
    await page.selectOption('#rule-agent', { label: 'nas' });
    await page.selectOption('#rule-metric', 'disk_pct');
    await page.waitForFunction(() => document.querySelectorAll('#rule-label option').length > 1);
    const mounts = await page.locator('#rule-label option').allTextContents();
    assert.equal(mounts[0], 'Every mount');
    assert.ok(mounts.slice(1).every((m) => m.startsWith('/') || /^[A-Z]:/.test(m)), `mounts: ${mounts}`);
    await page.selectOption('#rule-metric', 'memory_pct');
    // Out of range: the server says why, the form stays open with the input.
    await page.fill('#rule-threshold', '150');
    await page.click('#save-rule');
    // Next to the field, in the form's words (no API ids, no status code).
    const tooHigh = page.locator('label:has(#rule-threshold) #rule-error', { hasText: 'threshold between 0 and 100' });
    await tooHigh.waitFor();
    assert.doesNotMatch(await tooHigh.textContent(), /memory_pct|HTTP|`/);
    assert.equal(await page.inputValue('#rule-threshold'), '150');
    // Cleared on the next attempt.
    await page.fill('#rule-threshold', 'x');
    await page.click('#save-rule');
    await page.locator('label:has(#rule-threshold) #rule-error', { hasText: 'is a number' }).waitFor();
    assert.equal(await page.locator('#rule-error').count(), 1, 'one message at a time');
    // Memory in use is above 1 % on any machine: it fires at once.
    await page.fill('#rule-threshold', '1');
    await page.fill('#rule-name', 'memory in use');
    await page.fill('#rule-description', 'any machine uses some memory');
    await page.click('#save-rule');
    await page.locator('#rule-form').waitFor({ state: 'hidden' });
    const row = page.locator('.rule-row', { hasText: 'memory in use' });
    await row.locator('text=any machine uses some memory').waitFor();
    await row.locator('.badge-firing').waitFor({ timeout: 15_000 });
    const firing = page.locator('#history .event-row[data-state="firing"]', { hasText: 'nas' });
    await firing.first().waitFor({ timeout: 15_000 });
    // Delivery is recorded in the history (the page asks again every 10 s).
    await firing.first().filter({ hasText: 'Webhook sent' }).waitFor({ timeout: 25_000 });
    assert.ok(fake.hits.some((h) => h.path === '/hook' && h.json?.event === 'firing'), 'the webhook got the firing');
    await shots(page, 'alerts');

    // Edit: "below 1 %" no longer holds, so the rule resolves.
    await row.locator('.action-edit').click();
    assert.equal(await page.inputValue('#rule-name'), 'memory in use');
    assert.equal(await page.inputValue('#rule-description'), 'any machine uses some memory');
    // An emptied description is cleared (an edit sends every field).
    await page.fill('#rule-description', '');
    await page.selectOption('#rule-comparison', 'lt');
    await page.click('#save-rule');
    await row.locator('.badge-online', { hasText: 'OK' }).waitFor({ timeout: 15_000 });
    assert.equal(await row.locator('text=any machine uses some memory').count(), 0);
    await page.locator('#history .event-row[data-state="resolved"]').first().waitFor({ timeout: 15_000 });

    // Filters and sorting go to the server.
    await page.selectOption('#history-state', 'resolved');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#history .event-row')];
      return rows.length > 0 && rows.every((r) => r.dataset.state === 'resolved');
    });
    await page.selectOption('#history-state', '');
    await page.selectOption('#history-metric', 'cpu_pct');
    await page.locator('#history-empty').waitFor();
    await page.selectOption('#history-metric', '');
    await page.locator('#history .event-row').first().waitFor();
    await page.selectOption('#history-span', '1'); // the last hour holds them all
    await page.locator('#history .event-row').first().waitFor();
    assert.equal(await page.locator('#history-next').isDisabled(), true, 'one page only');
    await page.click('#sort-agent');
    await page.locator('th[aria-sort="ascending"] #sort-agent').waitFor();
    assert.match(await page.textContent('#history-count'), /^1–\d+ of \d+$/);

    // Disable, then delete after confirming; the history keeps the events.
    await row.locator('.action-toggle', { hasText: 'Disable' }).click();
    await row.locator('.badge', { hasText: 'Disabled' }).waitFor();
    await row.locator('.action-delete').click();
    await row.locator('.confirm-delete').click();
    await page.locator('#rules-empty').waitFor();
    await page.locator('#history .event-row').first().waitFor();
    await page.click('#clear-history');
    await page.click('#confirm-clear');
    await page.locator('#history-empty').waitFor();
  });

  await t.test('overview: problems first counts firing rules', async () => {
    assert.ok(agentProcess, 'needs the live agent (the live step failed)');
    // A quiet agent, online, whose name sorts first; and a firing rule on nas.
    const made = await page.evaluate(async () => {
      const post = (url, body, headers = {}) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
        .then((r) => r.json());
      const { agent, token } = await post('/api/agents', { name: 'aaa-quiet' });
      await post('/api/ingest', { reports: [{ ts_ms: Date.now(), interval_ms: 60000, cpu: { total_pct: 1 } }] }, { 'x-agent-token': token });
      const nas = (await (await fetch('/api/agents')).json()).find((a) => a.name === 'nas');
      const rule = await post('/api/rules', { agent_id: nas.id, metric: 'memory_pct', comparison: 'gt', threshold: 1 });
      return { agent: agent.id, rule: rule.id };
    });
    await page.click('nav a[href="/"]');
    await page.locator('.agent-card[data-status="online"]').nth(1).waitFor({ timeout: 20_000 });
    assert.equal(await page.inputValue('#overview-order'), 'status');
    await page.waitForFunction(() => document.querySelector('.agent-card h2')?.textContent === 'nas', null, { timeout: 20_000 });
    await page.evaluate(async ({ agent, rule }) => {
      await fetch(`/api/rules/${rule}`, { method: 'DELETE' });
      await fetch(`/api/agents/${agent}`, { method: 'DELETE' });
    }, made);
  });

  await t.test('rule form: network thresholds in a chosen unit, times in minutes', async () => {
    await page.click('nav a[href="/alerts"]');
    await hydrated(page, '#new-rule');
    await page.click('#new-rule');
    await page.selectOption('#rule-agent', { label: 'nas' });
    await page.selectOption('#rule-metric', 'net_rx_bps');
    await page.fill('#rule-threshold', '1.5');
    await page.selectOption('#rule-rate-unit', 'MiB/s');
    await page.fill('#rule-duration', '2');
    await page.fill('#rule-cooldown', '10');
    await page.fill('#rule-name', 'downloads');
    await page.click('#save-rule');
    await page.locator('#rule-form').waitFor({ state: 'hidden' });
    const stored = await page.evaluate(async () => (await (await fetch('/api/rules')).json()).find((r) => r.name === 'downloads'));
    assert.equal(stored.threshold, 1.5 * 1048576);
    assert.equal(stored.duration_s, 120);
    assert.equal(stored.cooldown_s, 600);
    // Edit shows back what was typed.
    const row = page.locator('.rule-row', { hasText: 'downloads' });
    await row.locator('.action-edit').click();
    assert.equal(await page.inputValue('#rule-threshold'), '1.5');
    assert.equal(await page.inputValue('#rule-rate-unit'), 'MiB/s');
    assert.equal(await page.inputValue('#rule-duration'), '2');
    assert.equal(await page.inputValue('#rule-cooldown'), '10');
    await page.keyboard.press('Escape');
    await page.evaluate(async (id) => fetch(`/api/rules/${id}`, { method: 'DELETE' }), stored.id);
  });

  await t.test('rename', async () => {
    await page.goto(`${server.url}/agents`);
    await hydrated(page, '#create-agent');
    // By id: while renaming, the row shows an input instead of the name.
    const id = await page.locator('.agent-row', { hasText: 'nas' }).getAttribute('data-agent-id');
    const row = page.locator(`.agent-row[data-agent-id="${id}"]`);
    await row.locator('.action-rename').click();
    await row.locator('.rename-input').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), `rename-${id}`, 'focus moves into the field');
    // Only spaces: an error next to the field, not silence.
    await row.locator('.rename-input').fill('   ');
    await row.locator('.rename-input').press('Enter');
    await row.locator('form:has(.rename-input) #rename-error', { hasText: 'spaces alone are not a name' }).waitFor();
    await row.locator('.rename-input').fill('nas-1');
    await row.locator('.rename-input').press('Enter');
    await page.locator('.agent-name', { hasText: 'nas-1' }).waitFor();
  });

  await t.test('regenerate the token after confirming', async () => {
    const row = page.locator('.agent-row', { hasText: 'nas-1' });
    await row.locator('.action-regenerate').click();
    await row.locator('.confirm-regenerate').click();
    await page.locator('#token-panel').waitFor();
    await page.locator('#token-countdown').waitFor();
    await page.click('#token-done');
    await page.locator('#token-panel').waitFor({ state: 'detached' });
  });

  await t.test('account page: sessions, and a wrong current password is refused', async () => {
    await page.click('nav a[href="/account"]');
    await page.locator('#session-list li').first().waitFor();
    assert.match(await page.textContent('#session-list'), /this browser/);
    await hydrated(page, '#pw-submit');
    await page.fill('#pw-current', 'not my password');
    await page.fill('#pw-new', 'another long password');
    await page.fill('#pw-repeat', 'another long password');
    await page.click('#pw-submit');
    // Next to the field it is about.
    await page.locator('#pw-current + #pw-error', { hasText: 'current password is wrong' }).waitFor();
    // A new password equal to the current one is refused, and the old
    // message goes: one message at a time.
    await page.fill('#pw-current', PASSWORD);
    await page.fill('#pw-new', PASSWORD);
    await page.fill('#pw-repeat', PASSWORD);
    await page.click('#pw-submit');
    await page.locator('#pw-new + #pw-error', { hasText: 'same as the current one' }).waitFor();
    assert.equal(await page.locator('#pw-error').count(), 1, 'one message at a time');
    await shots(page, 'account');
  });

  await t.test('server status checks on load and shows the storage figures', async () => {
    await page.goto(`${server.url}/status`);
    // No click: the page asks as soon as it runs.
    await page.locator('#health-store-bytes', { hasText: /5 s .*1 min .*1 h / }).waitFor();
    assert.match(await page.textContent('#health-series'), /^[1-9]\d*$/);
    assert.match(await page.textContent('#health-free'), /(B|iB)$/);
  });

  await t.test('long names never widen the page, at desktop and phone width', async () => {
    const longAgent = 'build-runner-' + 'x'.repeat(51);
    const longRule = 'CPU of the build runner stays high for a long while during nightly builds of ' + 'y'.repeat(23);
    assert.equal(longAgent.length, 64);
    assert.equal(longRule.length, 100);
    const made = await page.evaluate(async ([agentName, ruleName]) => {
      const post = (url, body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then((r) => r.json());
      const { agent } = await post('/api/agents', { name: agentName });
      const rule = await post('/api/rules', { agent_id: agent.id, metric: 'cpu_pct', comparison: 'gt', threshold: 99, name: ruleName });
      return { agent: agent.id, rule: rule.id };
    }, [longAgent, longRule]);
    const pages = [['/', '.agent-card'], ['/agents', '.agent-row'], [`/agents/${made.agent}`, '#agent-name'], ['/alerts', '.rule-row']];
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 860 });
      for (const [path, selector] of pages) {
        await page.goto(`${server.url}${path}`);
        await page.locator(selector, { hasText: path === '/alerts' ? 'CPU of the build' : 'build-runner' }).first().waitFor();
        const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: innerWidth }));
        assert.ok(scroll <= inner, `${path} at ${width} px is ${scroll} px wide`);
      }
    }
    // On a phone the table's rows are blocks: every value keeps its label
    // and the names their width.
    await page.setViewportSize({ width: 390, height: 860 });
    await page.goto(`${server.url}/alerts`);
    const ruleRow = page.locator('.rule-row', { hasText: 'CPU of the build' });
    await ruleRow.waitFor();
    const label = await ruleRow.locator('td[data-label="Condition"]').evaluate((td) => getComputedStyle(td, '::before').content);
    assert.equal(label, '"Condition:"');
    const agentCell = await ruleRow.locator('td[data-label="Agent"] .clip').boundingBox();
    assert.ok(agentCell && agentCell.width > 100, `the agent's name is shown (${agentCell?.width} px)`);
    await page.setViewportSize({ width: 1280, height: 860 });
    // The full name is one hover away.
    await page.goto(`${server.url}/agents`);
    assert.equal(await page.locator('.agent-name', { hasText: 'build-runner' }).getAttribute('title'), longAgent);
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.evaluate(async ({ agent, rule }) => {
      await fetch(`/api/rules/${rule}`, { method: 'DELETE' });
      await fetch(`/api/agents/${agent}`, { method: 'DELETE' });
    }, made);
  });

  await t.test('an expired session goes to login and comes back', async () => {
    const agents = await page.evaluate(async () => (await fetch('/api/agents')).json());
    const id = agents[0].id;
    await page.context().clearCookies();
    await page.goto(`${server.url}/agents/${id}`);
    await page.waitForURL(/\/login\?next=/);
    await hydrated(page, '#login-submit');
    await page.fill('#login-username', USER);
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL(`${server.url}/agents/${id}`);
    await page.locator('#agent-name', { hasText: 'nas-1' }).waitFor();
  });

  await t.test('delete after confirming', async () => {
    await page.goto(`${server.url}/agents`);
    await hydrated(page, '#create-agent');
    const row = page.locator('.agent-row', { hasText: 'nas-1' });
    await row.locator('.action-delete').click();
    await row.locator('.confirm-delete').click();
    await page.locator('#agents-empty').waitFor();
  });

  await t.test('theme toggle pins dark and is remembered', async () => {
    await page.click('#theme-toggle'); // system → light
    await page.click('#theme-toggle'); // light → dark
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await page.reload();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await page.click('#theme-toggle'); // dark → system
  });

  await t.test('log out', async () => {
    await page.click('#logout');
    await page.waitForURL(`${server.url}/login`);
    const me = await page.evaluate(async () => (await fetch('/api/users/me')).status);
    assert.equal(me, 401);
    // Registration closed with the first account: the landing page no longer offers it.
    await hydrated(page, '#login-submit');
    await page.click('a.brand');
    await page.locator('h1', { hasText: 'Your servers, at a glance' }).waitFor();
    await page.waitForFunction(() => !document.querySelector('.hero-actions a[href="/register"]'));
  });

  assert.deepEqual(unexpected(page), []);
});
