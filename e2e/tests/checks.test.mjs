// Uptime checks in the dashboard, in Chromium against the real server
// binary and a local HTTP server the test starts on 127.0.0.1: the Checks
// page's form refuses bad values next to their field (a number out of range
// in the browser, a target the server refuses), creates an HTTP check that
// comes up in the list with its latency, uptime and 90 daily bars, and the
// check's own page draws its latency chart, keeps the range in the URL and
// lists the change to up; a status page made on the Checks page with the
// check ticked and an incident opened and resolved is what /status/{slug}
// shows. Screenshots go to e2e/artifacts/checks-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { assertAccessible } from './a11y.mjs';
import { artifacts, launchBrowser, newPage, startServer } from './harness.mjs';

const USER = 'dana';
const PASSWORD = 'correct horse battery';

let server;
let browser;
let target;

before(async () => {
  target = createServer((req, res) => {
    res.writeHead(req.url === '/health' ? 200 : 500, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise((ok) => target.listen(0, '127.0.0.1', ok));
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((ok) => (target ? target.close(ok) : ok()));
});

test('create a check through the form, see it come up, open its page, show it on a status page', async () => {
  // The first account is the admin: its checks may target loopback.
  const reg = await fetch(`${server.url}/api/auth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: USER, password: PASSWORD }),
  });
  assert.equal(reg.status, 201);
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`${server.url}/login`);
  await page.locator('#login-submit:not([disabled])').waitFor({ timeout: 15_000 });
  await page.fill('#login-username', USER);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForURL(`${server.url}/`);

  // Through the navigation.
  await page.click('nav[aria-label="Main"] a[href="/checks"]');
  await page.locator('#checks-empty').waitFor({ timeout: 15_000 });
  await page.click('#new-check');
  const form = page.locator('#check-form');
  await form.waitFor();
  const errorOf = (id) => form.locator(`label:has(#${id}) .field-error`);

  // Out of range: refused in the browser, under the field.
  const base = `http://127.0.0.1:${target.address().port}`;
  await page.fill('#check-name', 'Router UI');
  await page.fill('#check-target', `${base}/health`);
  await page.fill('#check-interval', '5');
  await page.click('#save-check');
  assert.match(await errorOf('check-interval').textContent(), /20 to 3600/);
  await assertAccessible(page, 'the check form with a field error');
  await page.fill('#check-interval', '20');
  await page.fill('#check-timeout', '30000');
  await page.click('#save-check');
  assert.match(await errorOf('check-timeout').textContent(), /longer than the interval/);
  await page.fill('#check-timeout', '2000');
  // A TCP target without a port: refused by the server, shown under the target.
  await page.selectOption('#check-kind', 'tcp');
  assert.ok(await page.locator('#check-method').isHidden(), 'HTTP fields hidden for TCP');
  await page.fill('#check-target', '127.0.0.1');
  await page.click('#save-check');
  await errorOf('check-target').waitFor({ timeout: 10_000 });
  assert.match(await errorOf('check-target').textContent(), /^Host:port/);
  assert.equal(await errorOf('check-interval').count(), 0, 'only the field at fault');
  assert.equal((await (await fetch(`${server.url}/api/health`)).status), 200);

  // Right values: saved, the form closes, the check comes up in the list.
  await page.selectOption('#check-kind', 'http');
  await page.fill('#check-target', `${base}/health`);
  await page.fill('#check-status-max', '299');
  await page.click('#save-check');
  await form.waitFor({ state: 'hidden', timeout: 10_000 });
  const row = page.locator('#checks tr[data-check="Router UI"]');
  await row.locator('[data-status="online"]').waitFor({ timeout: 15_000 });
  assert.match(await row.locator('.check-latency').textContent(), /^\d+ ms$/);
  await row.locator('.check-uptime-24h', { hasText: '100.00 %' }).waitFor({ timeout: 10_000 });
  const days = row.locator('.uptime-strip .day');
  assert.equal(await days.count(), 90);
  assert.match(await days.nth(89).getAttribute('class'), /\bok\b/);
  assert.match(await days.nth(0).getAttribute('class'), /\bnone\b/);
  await page.screenshot({ path: join(artifacts, 'checks-list.png'), fullPage: true });
  await assertAccessible(page, 'the Checks page');

  // Editing shows what was saved.
  await row.locator('button', { hasText: 'Edit' }).click();
  assert.equal(await page.inputValue('#check-status-max'), '299');
  assert.equal(await page.inputValue('#check-interval'), '20');
  await form.locator('button', { hasText: 'Cancel' }).click();

  // Its page: the latency chart, the range in the URL, the events.
  await row.locator('a.check-link').click();
  await page.waitForURL(/\/checks\/\d+$/);
  await page.locator('#check-name', { hasText: 'Router UI' }).waitFor({ timeout: 15_000 });
  await page.locator('#check-state [data-status="online"]').waitFor();
  const chart = page.locator('[data-chart="Latency"]');
  await chart.locator('.plot canvas, .plot .uplot').first().waitFor({ timeout: 15_000 });
  assert.equal(await chart.locator('.plot-overlay').count(), 0, 'latency drawn');
  await page.locator('#check-events tr[data-event="Up"]').waitFor();
  assert.match(await page.locator('#check-events tr[data-event="Up"] .event-lasted').textContent(), /so far/);
  assert.equal(await page.locator('#check-uptime .uptime-strip .day').count(), 90);
  // The week's answer is in before the reload (a reload would cut it off).
  const week = page.waitForResponse((r) => r.url().includes('/history?start=-7d'));
  await page.click('#range-picker [data-range="7d"]');
  await page.waitForURL(/\?range=7d$/);
  assert.equal((await week).status(), 200);
  await page.reload();
  await page.locator('#range-picker [data-range="7d"][aria-pressed="true"]').waitFor({ timeout: 15_000 });
  await chart.locator('.chart-summary', { hasText: 'Latency' }).waitFor({ timeout: 15_000 });
  // What the run asks again (check, uptime, events, history) is in before leaving.
  const again = ['/uptime', '/events', '/history?', /\/api\/checks\/\d+$/].map((part) => page.waitForResponse((r) =>
    r.request().method() === 'GET' && (typeof part === 'string' ? r.url().includes(part) : part.test(r.url()))));
  await page.click('#run-check');
  await Promise.all(again);
  assert.match(await page.textContent('#check-last'), /up in \d+ ms/);
  await page.screenshot({ path: join(artifacts, 'checks-page.png'), fullPage: true });
  await assertAccessible(page, "a check's page");

  // A status page made in the dashboard: the check ticked, an incident
  // opened and resolved; the public page (no login) shows them.
  await page.goto(`${server.url}/checks`);
  await page.locator('#new-status-page:not([disabled])').waitFor({ timeout: 15_000 });
  await page.click('#new-status-page');
  const spForm = page.locator('#status-page-form');
  await spForm.waitFor();
  await page.fill('#sp-slug', 'Not a slug');
  await page.fill('#sp-title', 'Our services');
  await spForm.locator('.sp-item[data-item="Router UI"] .sp-tick').check();
  await page.click('#save-status-page');
  await spForm.locator('label:has(#sp-slug) .field-error').waitFor({ timeout: 10_000 });
  await assertAccessible(page, 'the status page form');
  await page.fill('#sp-slug', 'our-services');
  await page.click('#save-status-page');
  await spForm.waitFor({ state: 'hidden', timeout: 10_000 });
  const spRow = page.locator('.sp-row[data-page="our-services"]');
  await spRow.waitFor();
  await spRow.locator('.sp-incident-title').fill('Router restarts');
  await spRow.locator('.sp-incident-message').fill('Investigating.');
  await spRow.locator('button', { hasText: 'Open incident' }).click();
  await spRow.locator('.sp-incidents li', { hasText: 'Router restarts' }).waitFor({ timeout: 10_000 });
  await spRow.locator('.sp-resolve').click();
  await spRow.locator('.sp-incidents li', { hasText: 'resolved' }).waitFor({ timeout: 10_000 });
  const publicHtml = await (await fetch(`${server.url}/status/our-services`)).text();
  assert.match(publicHtml, /Router UI/);
  assert.match(publicHtml, /Router restarts/);
  assert.ok(!publicHtml.includes('/health'), 'the target was not ticked');
  await page.screenshot({ path: join(artifacts, 'checks-status-pages.png'), fullPage: true });
  // The logged-out session probe on the login page answers 401, and the
  // two refusals above (the target, the slug) are 422s; nothing else may fail.
  assert.equal(page.problems.filter((p) => /status of 422/.test(p)).length, 2, page.problems.join('\n'));
  assert.deepEqual(page.problems.filter((p) => !/status of (401|422)/.test(p)), []);
});
