// Foundation: the release binary, alone in an empty directory, serves a
// server-rendered page that hydrates in a real browser, with the embedded
// bundle under immutable, compressed, correctly typed URLs.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { artifacts, launchBrowser, newPage, startServer, takeCspViolations } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the binary alone creates its default data directory', () => {
  assert.ok(existsSync(join(server.dir, 'data')), 'data/ created beside the binary');
});

test('health answers JSON with version and storage status', async () => {
  const res = await fetch(`${server.url}/api/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.match(body.version, /^\d+\.\d+\.\d+/);
  assert.equal(body.storage.status, 'ok');
});

test('pages are rendered on the server, not cached, and typed', async () => {
  const res = await fetch(`${server.url}/status`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const html = await res.text();
  assert.match(html, /<h1>Server status<\/h1>/, 'content is in the HTML before any script runs');
  assert.match(html, /\/pkg\/[0-9a-f]{16}\/ui\.js/, 'hydration script points at the hashed bundle');
});

test('the bundle is served immutable, compressed and with the right types', async () => {
  const html = await (await fetch(`${server.url}/`)).text();
  const pkg = html.match(/\/pkg\/[0-9a-f]{16}/)[0];
  for (const [file, type] of [['ui_bg.wasm', 'application/wasm'], ['ui.js', 'javascript']]) {
    const br = await fetch(`${server.url}${pkg}/${file}`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(br.status, 200, file);
    assert.match(br.headers.get('content-type'), new RegExp(type));
    assert.match(br.headers.get('cache-control'), /immutable/);
    assert.equal(br.headers.get('x-content-type-options'), 'nosniff');
    // fetch() decodes the body; the header says what was sent.
    assert.equal(br.headers.get('content-encoding'), 'br', `${file} sent as brotli`);
    const gz = await fetch(`${server.url}${pkg}/${file}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers.get('content-encoding'), 'gzip', `${file} sent as gzip`);
  }
  const stale = await fetch(`${server.url}/pkg/0000000000000000/ui.js`);
  assert.equal(stale.status, 404, 'another build\'s hash is not served');
});

test('unknown page is a 404 rendered by the app; unknown API path is JSON', async () => {
  const page = await fetch(`${server.url}/no/such/page`);
  assert.equal(page.status, 404);
  assert.match(await page.text(), /Page not found/);
  const api = await fetch(`${server.url}/api/no-such-endpoint`);
  assert.equal(api.status, 404);
  assert.equal((await api.json()).code, 'not_found');
});

test('the page hydrates: a button that only works client-side fetches /api/health', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/status`);
  const button = page.locator('#check-health');
  await button.waitFor();
  // Clicking before hydration does nothing; retry until the wasm has taken over.
  const deadline = Date.now() + 15_000;
  while (!(await page.locator('#health-version').count())) {
    assert.ok(Date.now() < deadline, `page never hydrated: ${page.problems.join('; ')}`);
    await button.click();
    await page.waitForTimeout(200);
  }
  const version = await page.locator('#health-version').textContent();
  assert.match(version, /^\d+\.\d+\.\d+/);
  // Client-side navigation: the router handles the link without a reload.
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.click('nav a[href="/"]');
  await page.locator('h1', { hasText: 'Your servers, at a glance' }).waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'navigated without reloading');
  await page.screenshot({ path: join(artifacts, 'foundation-home.png'), fullPage: true });
  // Logged out, the app's session probe (/api/users/me, then one refresh)
  // answers 401 by design; Chromium logs those as failed resources.
  const problems = page.problems.filter((p) => !/status of 401/.test(p));
  assert.deepEqual(problems, []);
});

test('pages run under a strict Content-Security-Policy, and a violation is caught', async () => {
  const res = await fetch(`${server.url}/status`);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self' 'nonce-[0-9a-f]{32}' 'wasm-unsafe-eval'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('referrer-policy'), 'same-origin');
  const page = await newPage(browser);
  await page.goto(`${server.url}/status`);
  await page.locator('#check-health').waitFor();
  // An injected inline script (what an XSS would add) does not run, and the
  // harness sees the browser's report, so every other test would fail on one.
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true;';
    document.head.appendChild(s);
  });
  const deadline = Date.now() + 5_000;
  let seen = [];
  while (!seen.length && Date.now() < deadline) {
    await page.waitForTimeout(50);
    seen = takeCspViolations();
  }
  assert.equal(await page.evaluate(() => window.__injected), undefined, 'the injected script ran');
  assert.equal(seen.length, 1, `violations: ${seen}`);
  assert.match(seen[0], /script-src/);
});
