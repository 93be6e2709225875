// Shared helpers for the end-to-end tests: start the real release binary in an
// empty directory, and a headless Debian Chromium driven by playwright-core.

import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach } from 'node:test';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');
export const artifacts = join(repo, 'e2e', 'artifacts');

export async function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** Copies the release binary alone into a new empty directory and starts it
 *  there with no configuration but a loopback port. */
export async function startServer(extraArgs = [], env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'statusmonitor-e2e-'));
  const bin = join(dir, 'statusmonitor');
  copyFileSync(join(repo, 'target', 'release', 'statusmonitor'), bin);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const launch = async () => {
    const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, ...extraArgs], {
      cwd: dir,
      env: { ...process.env, STATUSMONITOR_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited early: ${output}`);
      try {
        const res = await fetch(`${url}/api/health`);
        if (res.ok) return child;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`server did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const halt = async (child, signal) => {
    child.kill(signal);
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  };
  const server = {
    url, dir, child: await launch(),
    output: () => output,
    /** Stops the server (SIGTERM, or SIGKILL for a crash), runs `meanwhile`,
     *  and starts it again on the same port and data directory. */
    async restart(meanwhile = async () => {}, signal = 'SIGTERM') {
      await halt(server.child, signal);
      await meanwhile();
      server.child = await launch();
    },
    async stop() {
      await halt(server.child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A JSON request to `url` + `path`: `{ status, json, text }` (`json` is
 *  null when the answer is not JSON). */
export async function callApi(url, method, path, body, headers = {}) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

export async function launchBrowser() {
  mkdirSync(artifacts, { recursive: true });
  // playwright gives each launch a fresh temporary profile of its own.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return browser;
}

/** Content-Security-Policy violations the browser reported in any page of
 *  this test file (`securitypolicyviolation` events), not yet failed on.
 *  Every test fails when one happened during it: the pages run under the
 *  server's real policy, so a blocked script or style shows up here. A test
 *  that provokes one on purpose takes it out with `takeCspViolations()`. */
const cspViolations = [];

export function takeCspViolations() {
  return cspViolations.splice(0);
}

function failOnCspViolations() {
  const seen = takeCspViolations();
  if (seen.length) throw new Error(`Content-Security-Policy violations:\n  ${seen.join('\n  ')}`);
}
afterEach(failOnCspViolations);
after(failOnCspViolations);

/** A page that records console errors and failed requests, so a test can
 *  assert that hydration ran cleanly, and CSP violations (see above). */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext(options);
  // Not subject to the page's policy: playwright's bindings and init
  // scripts go through the DevTools protocol.
  await context.exposeBinding('__smCspViolation', ({ page: p }, v) => {
    cspViolations.push(`${p.url()}: ${v.directive} blocked ${v.blocked || '(inline)'} at ${v.source} ${v.sample}`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__smCspViolation({
        directive: e.violatedDirective,
        blocked: e.blockedURI,
        source: `${e.sourceFile}:${e.lineNumber}`,
        sample: e.sample,
      });
    }, true);
  });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  // A request the browser cancelled (net::ERR_ABORTED: the page navigated
  // away or reloaded while it was in flight, or the app aborted it) is not a
  // failure of the server; every other failed request is.
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText ?? '';
    if (why !== 'net::ERR_ABORTED') page.problems.push(`requestfailed: ${r.url()} (${why})`);
  });
  return page;
}
