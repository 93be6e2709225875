// A public status page in Chromium with JavaScript disabled, against the real
// server binary: checks of a local HTTP server the test starts on 127.0.0.1
// (one answering 200, one 500), an agent that reported, and an incident, all
// made through the JSON API. The page is read in light, dark and phone
// viewports: the items with their state and 90 uptime bars are there, the
// colours follow the reader's preference, nothing is wider than a phone, and
// the HTML holds no hostname, internal name or check URL that was not ticked
// ("show target" is ticked on one check, so the search can find a URL).
// Then a page laid out in the dashboard (two sections, an item moved
// between them, labels, CPU and memory, a maintenance window in progress) is
// what the page shows without JavaScript; made private, the public address
// asks for its key (typed as a password it opens the page), the secret link
// shown once opens it, and a new link replaces the old one.
// Screenshots go to e2e/artifacts/status-page-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { artifacts, callApi, launchBrowser, newPage, startServer } from './harness.mjs';

const USER = 'sam';
const PASSWORD = 'correct horse battery';
const HOSTNAME = 'secret-host-e2e.lan';

let server;
let browser;
let target;

const api = (method, path, body, headers) => callApi(server.url, method, path, body, headers);

before(async () => {
  // The services the checks probe: 200 on /ok and /hidden, 500 on /fail.
  target = createServer((req, res) => {
    const ok = req.url.startsWith('/ok') || req.url.startsWith('/hidden');
    res.writeHead(ok ? 200 : 500, { 'content-type': 'text/plain' });
    res.end(ok ? 'fine' : 'broken');
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

test('a status page works without JavaScript in light, dark and on a phone, and leaks nothing unticked', async () => {
  const base = `http://127.0.0.1:${target.address().port}`;
  // The first account is the admin: its checks may target loopback.
  assert.equal((await api('POST', '/api/auth/register', { username: USER, password: PASSWORD })).status, 201);
  const login = await api('POST', '/api/auth/token', { username: USER, password: PASSWORD });
  const bearer = { authorization: `Bearer ${login.json.access_token}` };

  const check = async (name, path) => {
    const r = await api('POST', '/api/checks', { name, kind: 'http', target: `${base}${path}`, interval_s: 60 }, bearer);
    assert.equal(r.status, 201, r.text);
    // Run it now (the scheduler's first run may be up to a minute away).
    const run = await api('POST', `/api/checks/${r.json.id}/run`, undefined, bearer);
    assert.equal(run.status, 200, run.text);
    return r.json.id;
  };
  const web = await check('internal-web-check', '/ok?token=web-secret-path');
  const api500 = await check('internal-api-check', '/fail?token=api-secret-path');
  const shown = await check('shown-check', '/ok?shown-target-path');
  const unticked = await check('internal-unticked-check', '/hidden?unticked-secret-path');

  const created = await api('POST', '/api/agents', { name: 'internal-agent-name' }, bearer);
  assert.equal(created.status, 201, created.text);
  const { agent, token } = created.json;
  const report = { ts_ms: Date.now(), interval_ms: 5000, cpu: { total_pct: 37 }, memory: { total_bytes: 8e9, used_bytes: 2e9 } };
  const sent = await api('POST', '/api/ingest', { host: { hostname: HOSTNAME, os: 'Debian 12' }, reports: [report] },
    { 'x-agent-token': token });
  assert.equal(sent.status, 200, sent.text);

  const longLabel = 'Reverse-proxy-for-the-family-photo-library-and-the-media-server';
  const page = await api('POST', '/api/status-pages', {
    slug: 'home-lab',
    title: 'Home lab',
    description: 'Services of the house',
    sections: [
      { title: 'Web', items: [
        { kind: 'check', id: web, label: 'Website' },
        { kind: 'check', id: api500, label: 'Photo API' },
        { kind: 'check', id: shown, label: longLabel, show_target: true },
      ] },
      { title: 'Machines', items: [{ kind: 'agent', id: agent.id, label: 'NAS', show_metrics: true }] },
    ],
  }, bearer);
  assert.equal(page.status, 201, page.text);
  const incident = await api('POST', `/api/status-pages/${page.json.id}/incidents`,
    { title: 'Photo API errors', message: 'We are looking into it.' }, bearer);
  assert.equal(incident.status, 201, incident.text);

  // What the server sends: nothing that was not ticked.
  const html = await (await fetch(`${server.url}/status/home-lab`)).text();
  const json = await (await fetch(`${server.url}/status/home-lab.json`)).text();
  for (const [what, body] of [['HTML', html], ['JSON', json]]) {
    for (const secret of [HOSTNAME, 'internal-agent-name', 'internal-web-check', 'internal-api-check',
      'internal-unticked-check', 'web-secret-path', 'api-secret-path', 'unticked-secret-path', token]) {
      assert.ok(!body.includes(secret), `${what} shows ${secret}`);
    }
    assert.ok(body.includes('shown-target-path'), `${what} shows the ticked target (the search can find one)`);
  }
  // No item carries an id (an incident's own number is no secret).
  const items = JSON.parse(json).sections.flatMap((s) => s.items);
  assert.equal(items.length, 4);
  for (const item of items) assert.deepEqual(Object.keys(item).filter((k) => /id|host/.test(k)), [], JSON.stringify(item));
  assert.ok(!html.includes('<script'), 'no script');
  void unticked;

  const views = [
    { name: 'light', options: { colorScheme: 'light', viewport: { width: 1280, height: 900 } }, bg: 'rgb(246, 248, 250)' },
    { name: 'dark', options: { colorScheme: 'dark', viewport: { width: 1280, height: 900 } }, bg: 'rgb(13, 17, 23)' },
    { name: 'phone', options: { colorScheme: 'light', viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }, bg: 'rgb(246, 248, 250)' },
  ];
  for (const view of views) {
    const context = await browser.newContext({ ...view.options, javaScriptEnabled: false });
    const tab = await context.newPage();
    const res = await tab.goto(`${server.url}/status/home-lab`);
    assert.equal(res.status(), 200, view.name);
    assert.equal(await tab.locator('h1').textContent(), 'Home lab');
    const rows = tab.locator('section.group li');
    assert.equal(await rows.count(), 4, view.name);
    const row = (label) => tab.locator('section.group li', { has: tab.locator('.name', { hasText: label }) });
    assert.equal(await row('Website').locator('.state').textContent(), 'Operational', view.name);
    assert.equal(await row('Photo API').locator('.state').textContent(), 'Down', view.name);
    assert.equal(await row('NAS').locator('.state').textContent(), 'Operational', view.name);
    assert.match(await row('NAS').locator('.facts').textContent(), /CPU 37 %/);
    assert.equal(await tab.locator('.overall').textContent(), 'Some systems are down');
    // 90 daily bars per check, today's coloured by today's runs.
    for (const [label, today] of [['Website', 'ok'], ['Photo API', 'bad'], [longLabel, 'ok']]) {
      const bars = row(label).locator('.bars .bar');
      assert.equal(await bars.count(), 90, `${view.name} ${label}`);
      assert.match(await bars.nth(89).getAttribute('class'), new RegExp(`\\b${today}\\b`), `${view.name} ${label}`);
      const box = await bars.nth(89).boundingBox();
      assert.ok(box && box.width >= 1 && box.height >= 10, `${view.name} ${label}: a visible bar ${JSON.stringify(box)}`);
    }
    assert.match(await tab.locator('.incidents').textContent(), /Photo API errors.*We are looking into it\./s);
    // Styled by the one style sheet, in the reader's colours (the page is
    // read by the DevTools protocol: the page itself runs no script).
    const look = await tab.evaluate(() => ({
      bg: getComputedStyle(document.body).backgroundColor,
      scrollWidth: document.documentElement.scrollWidth,
      width: window.innerWidth,
      scripts: document.scripts.length,
    }));
    assert.equal(look.bg, view.bg, view.name);
    assert.equal(look.scripts, 0);
    assert.ok(look.scrollWidth <= look.width, `${view.name}: ${look.scrollWidth}px wide in a ${look.width}px viewport`);
    // No element sticks out to the right either (overflow hidden would hide it from scrollWidth).
    const widest = await tab.evaluate(() => Math.max(...[...document.querySelectorAll('body *')]
      .map((e) => e.getBoundingClientRect().right)));
    assert.ok(widest <= look.width + 0.5, `${view.name}: an element reaches ${widest}px`);
    await tab.screenshot({ path: join(artifacts, `status-page-${view.name}.png`), fullPage: true });
    await context.close();
  }
});

/** `ms` as a `datetime-local` value in this machine's (and the browser's) time zone. */
function localInput(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// Uses the account, checks and agent the test above made.
test('a page laid out in the dashboard: sections, labels, maintenance, then private with its link', async () => {
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`${server.url}/login`);
  await page.locator('#login-submit:not([disabled])').waitFor({ timeout: 15_000 });
  await page.fill('#login-username', USER);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForURL(`${server.url}/`);
  await page.goto(`${server.url}/checks`);
  await page.locator('#new-status-page:not([disabled])').waitFor({ timeout: 15_000 });
  await page.click('#new-status-page');
  const form = page.locator('#status-page-form');
  await page.fill('#sp-slug', 'laid-out');
  await page.fill('#sp-title', 'Laid out');
  for (const item of ['internal-web-check', 'shown-check', 'internal-agent-name']) {
    await form.locator(`.sp-item[data-item="${item}"] .sp-tick`).check();
  }
  await page.click('#sp-add-section');
  const sections = form.locator('.sp-section');
  await sections.nth(0).locator('.sp-section-title').fill('Websites');
  await sections.nth(1).locator('.sp-section-title').fill('Machines');
  // The agent, last of the first section, moves down into the second; the
  // second check moves above the first.
  const agentItem = 'internal-agent-name (agent)';
  await sections.nth(0).locator(`.sp-entry[data-item="${agentItem}"] .sp-down`).click();
  await sections.nth(1).locator(`.sp-entry[data-item="${agentItem}"]`).waitFor();
  await sections.nth(0).locator('.sp-entry[data-item="shown-check"] .sp-up').click();
  assert.deepEqual(await sections.nth(0).locator('.sp-entry').evaluateAll((l) => l.map((e) => e.dataset.item)),
    ['shown-check', 'internal-web-check']);
  assert.equal(await sections.nth(1).locator('.sp-section-title').inputValue(), 'Machines', 'titles survive a move');
  const agentEntry = sections.nth(1).locator(`.sp-entry[data-item="${agentItem}"]`);
  await agentEntry.locator('.sp-label').fill('Home server');
  await agentEntry.locator('.sp-metrics').check();

  // A window without a start is refused by its fields; one from ten minutes
  // ago to an hour from now is listed as in progress.
  await page.fill('#sp-window-title', 'Disk swap');
  await page.click('#sp-window-add');
  await form.locator('#sp-maintenance .field-error', { hasText: 'starts' }).waitFor();
  const now = Date.now();
  await page.fill('#sp-window-start', localInput(now - 10 * 60_000));
  await page.fill('#sp-window-end', localInput(now + 60 * 60_000));
  await page.click('#sp-window-add');
  await form.locator('.sp-window[data-window="Disk swap"]', { hasText: 'in progress' }).waitFor();

  // The form, sections and windows open, fits a phone in both schemes.
  for (const scheme of ['dark', 'light']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${scheme} phone: the page is ${overflow} px wider than the screen`);
    await form.locator('#sp-sections').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(artifacts, `status-page-editor-${scheme}-phone.png`) });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // A label the server refuses (a hidden direction mark) lands on the sections.
  const first = sections.nth(0).locator('.sp-entry').first();
  await first.locator('.sp-label').fill('Blog\u202e');
  await page.click('#save-status-page');
  await form.locator('#sp-sections .field-error').waitFor({ timeout: 10_000 });
  await first.locator('.sp-label').fill('Blog');
  await page.click('#save-status-page');
  const row = page.locator('.sp-row[data-page="laid-out"]');
  await row.locator('.sp-in-maintenance').waitFor({ timeout: 10_000 });
  assert.match(await row.textContent(), /3 items in 2 sections · 1 maintenance window/);

  // Without JavaScript, on a phone: the sections in order and the notice.
  const reader = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 360, height: 740 }, isMobile: true });
  const tab = await reader.newPage();
  assert.equal((await tab.goto(`${server.url}/status/laid-out`)).status(), 200);
  assert.deepEqual(await tab.locator('section.group h2').allTextContents(), ['Websites', 'Machines']);
  assert.deepEqual(await tab.locator('section.group').nth(0).locator('.name').allTextContents(), ['Blog', 'internal-web-check']);
  assert.deepEqual(await tab.locator('section.group').nth(1).locator('.name').allTextContents(), ['Home server']);
  assert.match(await tab.locator('section.group').nth(1).locator('.facts').textContent(), /CPU 37 %/);
  assert.match(await tab.locator('.notice h2').textContent(), /Ongoing maintenance: Disk swap/);
  assert.equal(await tab.locator('.overall').textContent(), 'Scheduled maintenance in progress');
  assert.equal(await tab.locator('section.group .state', { hasText: 'Maintenance' }).count(), 3);
  const wide = await tab.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(wide[0] <= wide[1], `${wide[0]}px wide in a ${wide[1]}px viewport`);
  await tab.screenshot({ path: join(artifacts, 'status-page-sections-phone.png'), fullPage: true });

  // Private: the secret link is shown once.
  await row.locator('.sp-edit').click();
  await page.locator('#sp-private').check();
  await page.click('#save-status-page');
  const secretText = await page.locator('#sp-secret', { hasText: 'laid-out' }).textContent();
  const link = secretText.match(/https?:\/\/\S+\/status\/laid-out\?key=\S+/)[0];
  const key = new URL(link).searchParams.get('key');
  await row.filter({ hasText: 'private' }).waitFor();
  // The public address asks for the key; typed in as a password, it opens
  // the page. (A new reader: the first may keep the public page 5 s.)
  await reader.close();
  const privateReader = await browser.newContext({ javaScriptEnabled: false });
  const tab2 = await privateReader.newPage();
  assert.equal((await tab2.goto(`${server.url}/status/laid-out`)).status(), 401);
  assert.equal(await tab2.locator('section.group').count(), 0);
  await tab2.fill('input[name="key"]', key);
  await tab2.click('button[type="submit"]');
  await tab2.locator('h1', { hasText: 'Laid out' }).waitFor();
  assert.equal(await tab2.locator('section.group').count(), 2);
  // The link itself opens it; a new link replaces it.
  assert.equal((await tab2.goto(link)).status(), 200);
  await row.locator('.sp-new-key').click();
  const newText = await page.locator('#sp-secret', { hasText: 'laid-out' }).filter({ hasNotText: key }).textContent();
  const newLink = newText.match(/https?:\/\/\S+\/status\/laid-out\?key=\S+/)[0];
  assert.notEqual(newLink, link);
  assert.equal((await tab2.goto(link)).status(), 403, 'the old link is refused');
  assert.equal((await tab2.goto(newLink)).status(), 200);
  await privateReader.close();
  // 401: the session check before logging in; 422: the refused label.
  assert.deepEqual(page.problems.filter((p) => !/status of (401|422)/.test(p)), []);
});
