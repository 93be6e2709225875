// Accounts a household shares, in a real browser against the release binary:
// the admin invites a second user, shares an agent with them as viewer; the
// viewer sees it live with no edit buttons; the viewer turns on two-factor
// log-in with a code computed here (RFC 6238), logs in with a code, then
// with a recovery code once, and fails with the same recovery code again.
// Then the admin's controls: a rule on a tag made in the rule form, an
// invitation listed and revoked (its link refused), a user's two-factor
// log-in removed, and two-factor log-in required for everyone (refused
// until the admin has it; a user without it can then only set it up).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { callApi, launchBrowser, newPage, startServer } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const BOB_PASSWORD = 'bobs own passphrase';

let server;
let browser;
let bearer;

const api = (method, path, body, headers = {}) =>
  callApi(server.url, method, path, body, { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...headers });

/** RFC 4648 base32 (no padding) to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let value = 0; const out = [];
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

/** The six-digit TOTP (HMAC-SHA1, 30 s) of `secret` at `unixSeconds`. */
function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

async function hydrated(page, selector) {
  await page.locator(`${selector}:not([disabled])`).waitFor({ timeout: 15_000 });
}

async function logIn(page, user, password) {
  // After a log-out the app is on /login already: loading it again would
  // abort the page's own requests in flight.
  if (new URL(page.url()).pathname !== '/login') await page.goto(`${server.url}/login`);
  await hydrated(page, '#login-submit');
  await page.fill('#login-username', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

async function logOut(page) {
  await page.click('#logout');
  await page.waitForURL(`${server.url}/login`);
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  assert.equal((await api('POST', '/api/auth/register', { username: 'alice', password: PASSWORD })).status, 201);
  const login = await api('POST', '/api/auth/token', { username: 'alice', password: PASSWORD });
  bearer = login.json.access_token;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('invite, share as viewer, two-factor log-in with a code and a recovery code', async () => {
  // The admin invites bob on the Users page.
  const alice = await newPage(browser);
  await logIn(alice, 'alice', PASSWORD);
  await alice.waitForURL(`${server.url}/`);
  await alice.locator('#nav-users').click();
  await hydrated(alice, '#new-user-submit');
  await alice.fill('#new-user-name', 'bob');
  await alice.check('#new-user-invite');
  await alice.click('#new-user-submit');
  const secret = await alice.locator('#user-secret').textContent();
  const link = secret.match(/https?:\/\/\S+\/invite\?token=\S+/)[0];
  assert.ok(link.startsWith(server.url), link);

  // Bob opens the link and chooses his password.
  const bob = await newPage(browser);
  await bob.goto(link);
  await bob.locator('#invite-user', { hasText: 'bob' }).waitFor();
  await hydrated(bob, '#invite-submit');
  await bob.fill('#invite-password', BOB_PASSWORD);
  await bob.click('#invite-submit');
  await bob.waitForURL(`${server.url}/login`);
  const again = (await api('GET', `/api/auth/invitation${new URL(link).search}`)).status;
  assert.equal(again, 404, 'the link is used up');

  // Alice's agent reports; she shares it with bob as viewer.
  const created = await api('POST', '/api/agents', { name: 'nas' });
  const id = created.json.agent.id;
  const now = Date.now();
  const report = { ts_ms: now, interval_ms: 5000, cpu: { total_pct: 42, cores_pct: [42] },
    memory: { total_bytes: 8e9, used_bytes: 4e9, available_bytes: 4e9 } };
  assert.equal((await api('POST', '/api/ingest', { host: { hostname: 'nas' }, reports: [report] },
    { 'x-agent-token': created.json.token })).status, 200);
  await alice.goto(`${server.url}/agents/${id}`);
  await hydrated(alice, '#share-submit');
  await alice.fill('#share-user', 'bob');
  await alice.click('#share-submit');
  await alice.locator('#share-list', { hasText: 'bob (viewer)' }).waitFor();

  // Bob sees it, marked as shared, live, with no edit buttons.
  await logIn(bob, 'bob', BOB_PASSWORD);
  await bob.waitForURL(`${server.url}/`);
  await bob.locator('.agent-card', { hasText: 'shared by alice' }).waitFor();
  await bob.goto(`${server.url}/agents`);
  const row = bob.locator('.agent-row', { hasText: 'nas' });
  await row.waitFor();
  await row.locator('a', { hasText: 'Dashboard' }).waitFor();
  for (const edit of ['.action-rename', '.action-regenerate', '.action-delete']) {
    assert.equal(await row.locator(edit).count(), 0, `${edit} is not offered to a viewer`);
  }
  await bob.goto(`${server.url}/agents/${id}`);
  await bob.locator('#shared-note', { hasText: 'view only' }).waitFor();
  assert.equal(await bob.locator('#agent-sharing').count(), 0);

  // Bob turns on two-factor log-in with a code computed here.
  await bob.goto(`${server.url}/account`);
  await hydrated(bob, '#tf-start');
  await bob.click('#tf-start');
  const key = (await bob.locator('#tf-secret').textContent()).trim();
  await bob.locator('#tf-qr').waitFor();
  await bob.fill('#tf-code', totp(key, Date.now() / 1000));
  await bob.click('#tf-submit');
  await bob.locator('#tf-recovery li').first().waitFor();
  const codes = await bob.locator('#tf-recovery li').allTextContents();
  assert.equal(codes.length, 10);
  await bob.locator('#tf-status', { hasText: 'On' }).waitFor();

  // Log in again: the code step. The code of the next step (the current one
  // is spent; the server allows one step of drift).
  await logOut(bob);
  await logIn(bob, 'bob', BOB_PASSWORD);
  await bob.locator('#login-code').waitFor();
  await bob.fill('#login-code', totp(key, Date.now() / 1000 + 30));
  await bob.click('#login-submit');
  await bob.waitForURL(`${server.url}/`);

  // A recovery code works once.
  await logOut(bob);
  await logIn(bob, 'bob', BOB_PASSWORD);
  await bob.locator('#login-code').waitFor();
  await bob.fill('#login-code', codes[0].trim());
  await bob.click('#login-submit');
  await bob.waitForURL(`${server.url}/`);
  await logOut(bob);
  await logIn(bob, 'bob', BOB_PASSWORD);
  await bob.locator('#login-code').waitFor();
  await bob.fill('#login-code', codes[0].trim());
  await bob.click('#login-submit');
  await bob.locator('.form-error .error', { hasText: 'recovery code' }).waitFor();
  assert.equal(new URL(bob.url()).pathname, '/login');

  // A rule on a tag, made in the rule form: a bad tag is refused next to
  // it, a tag of alice's agents is offered, and the rule lists with it.
  assert.equal((await api('PUT', `/api/agents/${id}/tags`, { tags: ['vps'] })).status, 200);
  await alice.goto(`${server.url}/alerts`);
  await hydrated(alice, '#new-rule');
  await alice.click('#new-rule');
  await alice.selectOption('#rule-metric', 'offline');
  await alice.selectOption('#rule-agent', { label: 'Another tag…' });
  await alice.fill('#rule-tag', 'not a tag!');
  await alice.click('#save-rule');
  await alice.locator('label:has(#rule-tag) .field-error', { hasText: 'tag' }).waitFor();
  await alice.selectOption('#rule-agent', 'tag:vps');
  await alice.click('#save-rule');
  await alice.locator('#rules .rule-row', { hasText: 'every agent tagged vps' }).waitFor();
  const rules = (await api('GET', '/api/rules')).json;
  assert.deepEqual(rules.map((r) => r.target?.tag), ['vps']);

  // The overview keeps its filter, order and grouping in the address: a
  // reload shows the same; an unknown order falls back to the default.
  await alice.goto(`${server.url}/`);
  await alice.locator('.agent-card').first().waitFor({ timeout: 15_000 });
  await alice.selectOption('#overview-order', 'name');
  await alice.check('#overview-group');
  await alice.fill('#overview-filter', 'tag:vps');
  await alice.waitForURL(`${server.url}/?order=name&q=tag%3Avps&group=1`);
  await alice.reload();
  await alice.locator('.tag-group-title', { hasText: 'vps' }).waitFor({ timeout: 15_000 });
  assert.equal(await alice.inputValue('#overview-order'), 'name');
  assert.equal(await alice.inputValue('#overview-filter'), 'tag:vps');
  assert.ok(await alice.isChecked('#overview-group'));
  await alice.goto(`${server.url}/?order=bogus&group=maybe`);
  await alice.locator('.agent-card').first().waitFor({ timeout: 15_000 });
  assert.equal(await alice.inputValue('#overview-order'), 'status');
  assert.ok(!(await alice.isChecked('#overview-group')));

  // An invitation waits in the list until it is revoked; its link is then refused.
  await alice.goto(`${server.url}/users`);
  await hydrated(alice, '#new-user-submit');
  await alice.fill('#new-user-name', 'carol');
  await alice.check('#new-user-invite');
  await alice.click('#new-user-submit');
  const carolText = await alice.locator('#user-secret', { hasText: 'carol' }).textContent();
  const carolLink = carolText.match(/https?:\/\/\S+\/invite\?token=\S+/)[0];
  assert.equal((await api('GET', `/api/auth/invitation${new URL(carolLink).search}`)).status, 200);
  const pending = alice.locator('#invitation-list [data-invitation="carol"]');
  await pending.locator('.action-revoke').click();
  await pending.waitFor({ state: 'detached' });
  assert.equal((await api('GET', `/api/auth/invitation${new URL(carolLink).search}`)).status, 404);
  const carol = await newPage(browser);
  await carol.goto(carolLink);
  await carol.locator('.error-note, [role="alert"]').first().waitFor();
  assert.equal(await carol.locator('#invite-user').count(), 0, 'the revoked link names no account');
  await carol.close();

  // Bob lost his phone: alice removes his two-factor log-in.
  const bobRow = alice.locator('#user-list [data-user="bob"]');
  assert.match(await bobRow.locator('.agent-main').textContent(), /two-factor/);
  await bobRow.locator('.action-remove-2fa').click();
  await bobRow.locator('.action-remove-2fa').waitFor({ state: 'detached' });
  assert.doesNotMatch(await bobRow.locator('.agent-main').textContent(), /two-factor/);

  // Requiring two-factor log-in for everyone needs the admin's own first:
  // refused, the box stays off; with hers on (set up here through the API),
  // it takes.
  await alice.click('#require-two-factor');
  await alice.locator('.error-note', { hasText: 'two-factor' }).waitFor();
  await alice.locator('#require-two-factor:not(:checked):not([disabled])').waitFor();
  const enrol = await api('POST', '/api/users/me/two-factor');
  assert.equal(enrol.status, 200, enrol.text);
  const confirmed = await api('POST', '/api/users/me/two-factor/confirm', { code: totp(enrol.json.secret, Date.now() / 1000) });
  assert.equal(confirmed.status, 200, confirmed.text);
  await alice.click('#require-two-factor');
  await alice.locator('#require-two-factor:checked:not([disabled])').waitFor();
  assert.equal((await api('GET', '/api/admin/settings')).json.require_two_factor, true);

  // Bob, now without two-factor log-in, can only set it up: the log-in
  // lands on his Account page, which says so, and his agents are refused.
  await logIn(bob, 'bob', BOB_PASSWORD);
  await bob.waitForURL(`${server.url}/account`);
  await bob.locator('#tf-status', { hasText: 'requires it' }).waitFor();
  const bobToken = (await callApi(server.url, 'POST', '/api/auth/token', { username: 'bob', password: BOB_PASSWORD })).json.access_token;
  const refused = await callApi(server.url, 'GET', '/api/agents', undefined, { authorization: `Bearer ${bobToken}` });
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.json.code, 'two_factor_setup_required');
  assert.deepEqual(bob.problems.filter((p) => !p.includes('401') && !p.includes('403')), []);
  assert.deepEqual(alice.problems.filter((p) => !/status of (401|409|422)/.test(p)), []);
});
