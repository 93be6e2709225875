// A check run by an agent, end to end: the real agent binary reports to the
// real server binary; in Chromium the Checks page's form creates an HTTP
// check with "Run from" set to that agent; the agent fetches it, runs it
// against a local HTTP server on 127.0.0.1 and sends the result with its
// reports, so the list shows it up and where it runs from, and the check's
// page says so (no "Run now": the server does not run it).
// Screenshot: e2e/artifacts/agent-checks.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifacts, callApi, launchBrowser, newPage, repo, startServer } from './harness.mjs';

const AGENT = join(repo, 'target', 'release', 'statusmonitor-agent');
const USER = 'erin';
const PASSWORD = 'correct horse battery';

let server;
let browser;
let target;
let agentDir;
let agentProc;

before(async () => {
  target = createServer((req, res) => {
    res.writeHead(req.url === '/health' ? 200 : 500, { 'content-type': 'text/html' });
    res.end('<p>all good</p>');
  });
  await new Promise((ok) => target.listen(0, '127.0.0.1', ok));
  agentDir = mkdtempSync(join(tmpdir(), 'statusmonitor-agent-checks-e2e-'));
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  agentProc?.kill('SIGKILL');
  await browser?.close();
  await server?.stop();
  await new Promise((ok) => (target ? target.close(ok) : ok()));
  rmSync(agentDir, { recursive: true, force: true });
});

test('a check set to run from an agent is run by the real agent and shown as such', async () => {
  const reg = await callApi(server.url, 'POST', '/api/auth/register', { username: USER, password: PASSWORD });
  assert.equal(reg.status, 201, reg.text);
  const login = await callApi(server.url, 'POST', '/api/auth/token', { username: USER, password: PASSWORD });
  const auth = { authorization: `Bearer ${login.json.access_token}` };
  const created = await callApi(server.url, 'POST', '/api/agents', { name: 'e2e-nas' }, auth);
  assert.equal(created.status, 201, created.text);
  const { agent, token } = created.json;
  agentProc = spawn(AGENT, [
    'run', '--server', server.url, '--token', token, '--interval', '1s',
    '--spool-dir', join(agentDir, 'spool'), '--config', join(agentDir, 'none.toml'),
    '--no-containers', '--no-processes', '--no-services',
  ], { stdio: 'ignore' });

  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`${server.url}/login`);
  await page.locator('#login-submit:not([disabled])').waitFor({ timeout: 15_000 });
  await page.fill('#login-username', USER);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForURL(`${server.url}/`);
  await page.goto(`${server.url}/checks`);
  await page.locator('#checks-empty').waitFor({ timeout: 15_000 });
  await page.click('#new-check');
  await page.locator(`#check-runner option[value="${agent.id}"]`).waitFor({ state: 'attached' });
  await page.fill('#check-name', 'NAS UI');
  await page.fill('#check-target', `http://127.0.0.1:${target.address().port}/health`);
  await page.fill('#check-interval', '20');
  await page.fill('#check-timeout', '2000');
  await page.fill('#check-keyword', 'all good');
  await page.selectOption('#check-runner', String(agent.id));
  await page.click('#save-check');

  // A real barrier: the agent's result, shown in the list.
  const row = page.locator('tr[data-check="NAS UI"]');
  await row.locator('.badge', { hasText: 'Up' }).waitFor({ timeout: 30_000 });
  await row.getByText('from agent e2e-nas').waitFor({ timeout: 15_000 });
  assert.doesNotMatch(await row.textContent(), /all good/, 'no body comes back');
  await page.screenshot({ path: join(artifacts, 'agent-checks.png') });

  // Editing shows where it runs.
  await row.getByRole('button', { name: 'Edit' }).click();
  assert.equal(await page.inputValue('#check-runner'), String(agent.id));
  await page.click('#check-form button:has-text("Cancel")');

  await row.locator('a.check-link').click();
  await page.locator('#check-runner a', { hasText: 'its agent' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#check-runner a').getAttribute('href'), `/agents/${agent.id}`);
  assert.ok(await page.locator('#run-check').isHidden(), 'the server does not run it');
});
