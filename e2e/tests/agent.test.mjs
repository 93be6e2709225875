// The real agent binary against the real server binary: it enrols with the
// token the API hands out, its reports reach history, a server outage leaves
// no gap (the agent spools and replays), and a revoked token stops it with a
// message that says what to do.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, startServer } from './harness.mjs';

const AGENT = join(repo, 'target', 'release', 'statusmonitor-agent');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;
let bearer;
let agentDir;

async function api(method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

function runAgent(token) {
  const child = spawn(AGENT, [
    'run', '--server', server.url, '--token', token, '--interval', '1s',
    '--spool-dir', join(agentDir, 'spool'), '--config', join(agentDir, 'none.toml'),
  ], { env: { ...process.env, STATUSMONITOR_AGENT_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  child.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  return child;
}

async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

before(async () => {
  agentDir = mkdtempSync(join(tmpdir(), 'statusmonitor-agent-e2e-'));
  server = await startServer();
  assert.equal((await api('POST', '/api/auth/register', { username: 'alice', password: 'correct horse battery' })).status, 201);
  const login = await api('POST', '/api/auth/token', { username: 'alice', password: 'correct horse battery' });
  assert.equal(login.status, 200, login.text);
  bearer = login.json.access_token;
});

after(async () => {
  await server?.stop();
  rmSync(agentDir, { recursive: true, force: true });
});

test('agent reports survive a server outage without a gap, and a revoked token stops it', async () => {
  const created = await api('POST', '/api/agents', { name: 'e2e-box' });
  assert.equal(created.status, 201, created.text);
  const { agent, token } = created.json;
  const agentProc = runAgent(token);
  try {
    await until('the agent to come online', async () => (await api('GET', `/api/agents/${agent.id}`)).json?.online);

    // Stop the server for a while; the agent keeps collecting into its spool.
    await until('a few reports', async () => {
      const h = await api('GET', `/api/history/${agent.id}/cpu?start=-5m&tier=5s`);
      return h.json?.series?.find((s) => s.metric === 'cpu.total_pct')?.points.length >= 3;
    });
    const downAt = Date.now();
    await server.restart(async () => sleep(6_000));
    const upAt = Date.now();

    // After the restart the spool is replayed: every second of the outage is there.
    const points = await until('the outage to be backfilled', async () => {
      const h = await api('GET', `/api/history/${agent.id}/cpu?start=-5m&tier=5s&max_points=5000`);
      const pts = h.json?.series?.find((s) => s.metric === 'cpu.total_pct')?.points ?? [];
      // 1 s reports in 5 s buckets: every bucket of the outage has a point.
      const covered = pts.filter(([ts]) => ts >= downAt && ts < upAt);
      return covered.length >= Math.floor((upAt - downAt) / 5000) - 1 ? pts : null;
    }, 30_000);
    // The 5 s tier buckets 1 s reports into 5 s points: consecutive points
    // around the outage must be one bucket apart, never more.
    const around = points.filter(([ts]) => ts >= downAt - 10_000 && ts <= upAt + 10_000);
    for (let i = 1; i < around.length; i += 1) {
      assert.ok(around[i][0] - around[i - 1][0] <= 5_000, `gap between ${around[i - 1][0]} and ${around[i][0]}`);
    }

    // Regenerating the token revokes the running agent's token at once.
    const regen = await api('POST', `/api/agents/${agent.id}/regenerate-token`);
    assert.equal(regen.status, 200, regen.text);
    const code = await Promise.race([agentProc.exited, sleep(20_000).then(() => 'still running')]);
    assert.equal(code, 78, `agent exit code (output: ${agentProc.output})`);
    assert.match(agentProc.output, /regenerate it in the dashboard/);
  } finally {
    agentProc.kill('SIGKILL');
  }
});
