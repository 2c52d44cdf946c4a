// The web dashboard, clicked through in a real headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) against the real wharf
// binary. Every change made through the page is checked through the API,
// not through the page that made it.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startWharf, uniqueName } from '../compat/lib/wharf.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.WHARF_CHROMIUM ?? '/usr/bin/chromium';
// The flags this machine's closed network needs: no background connections.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const UI_TIMEOUT_MS = 10_000;

let server;
let browser;
let page;
const pageErrors = [];

before(async () => {
  server = await startWharf();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  // Script errors and Content-Security-Policy violations both land here.
  page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
});

after(async () => {
  if (page) {
    const shots = path.join(repoRoot, 'target', 'test-logs');
    await mkdir(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true }).catch(() => {});
  }
  await browser?.close();
  await server?.stop();
});

const row = (name) => page.locator(`tr[data-queue="${name}"]`);
const backlogOf = (name) => row(name).locator('[data-testid="backlog"]');
const status = () => page.getByTestId('status');

async function signIn(token) {
  await page.goto(`${server.base}/dashboard/`);
  await page.getByTestId('token').fill(token);
  await page.getByTestId('sign-in').click();
}

test('the page is served with a strict content security policy', async () => {
  const reply = await fetch(`${server.base}/dashboard/`);
  assert.equal(reply.status, 200);
  assert.match(reply.headers.get('content-type'), /^text\/html/);
  assert.match(reply.headers.get('content-security-policy'), /script-src 'self'/);
  const script = await fetch(`${server.base}/dashboard/app.js`);
  assert.match(script.headers.get('content-type'), /^text\/javascript/);
  assert.equal((await fetch(`${server.base}/dashboard/nothing.js`)).status, 404);
});

test('a wrong token is refused with the API error and shows no queue', async () => {
  await signIn('not-a-real-token-at-all-0000');
  await assert.doesNotReject(status().filter({ hasText: 'Error 10000' }).waitFor());
  assert.equal(await page.getByTestId('queues').isVisible(), false);
});

test('create a queue, send, peek, pause, resume and purge from the page', async () => {
  await signIn(server.token);
  await page.getByTestId('who').filter({ hasText: server.accountId }).waitFor();
  const name = uniqueName('orders');
  await page.getByTestId('new-queue').fill(name);
  await page.getByTestId('create-queue').click();
  await page.getByTestId('detail-name').filter({ hasText: name }).waitFor();
  const queue = await server.queueByName(name);
  assert.ok(queue, 'the queue exists on the server');

  await page.getByTestId('send-body').fill('hello from the dashboard');
  await page.getByTestId('send').click();
  await backlogOf(name).filter({ hasText: /^1$/ }).waitFor();
  await page.getByTestId('send-type').selectOption('json');
  await page.getByTestId('send-body').fill('{"order": 42}');
  await page.getByTestId('send').click();
  await backlogOf(name).filter({ hasText: /^2$/ }).waitFor();
  assert.equal((await server.metrics(queue.queue_id)).backlog_count, 2);

  await page.getByTestId('peek').click();
  const peeked = page.getByTestId('peeked');
  await peeked.getByText('hello from the dashboard').waitFor();
  await peeked.getByText('{"order":42}').waitFor();
  assert.equal((await server.metrics(queue.queue_id)).backlog_count, 2, 'peeking leased nothing');

  await page.getByTestId('pause').click();
  await row(name).getByTestId('delivery').filter({ hasText: 'paused' }).waitFor();
  assert.equal((await server.queueByName(name)).settings.delivery_paused, true);
  await page.getByTestId('resume').click();
  await row(name).getByTestId('delivery').filter({ hasText: 'active' }).waitFor();
  assert.equal((await server.queueByName(name)).settings.delivery_paused, false);

  page.once('dialog', (dialog) => dialog.accept());
  await page.getByTestId('purge').click();
  await backlogOf(name).filter({ hasText: /^0$/ }).waitFor();
  assert.equal((await server.metrics(queue.queue_id)).backlog_count, 0);
});

test('a dead letter queue is redriven from the page', async () => {
  const name = uniqueName('work');
  const dlqName = `${name}-dlq`;
  const work = await server.ok('POST', '/queues', { queue_name: name });
  await server.ok('POST', `/queues/${work.queue_id}/consumers`, {
    type: 'http_pull',
    dead_letter_queue: dlqName,
    settings: { max_retries: 0 },
  });
  await server.ok('POST', `/queues/${work.queue_id}/messages`, { body: 'failed once', content_type: 'text' });
  const pulled = await server.ok('POST', `/queues/${work.queue_id}/messages/pull`, {});
  await server.ok('POST', `/queues/${work.queue_id}/messages/ack`, {
    retries: [{ lease_id: pulled.messages[0].lease_id, delay_seconds: 0 }],
  });
  const dlq = await server.queueByName(dlqName);
  assert.equal((await server.metrics(dlq.queue_id)).backlog_count, 1);

  await backlogOf(dlqName).filter({ hasText: /^1$/ }).waitFor();
  await row(dlqName).getByText(`dead letters of ${name}`).waitFor();
  await row(dlqName).getByRole('button', { name: dlqName }).click();
  await page.getByTestId('redrive').click();
  await status().filter({ hasText: `Moved 1 message(s) from ${dlqName} to ${name}` }).waitFor();
  await backlogOf(name).filter({ hasText: /^1$/ }).waitFor();
  assert.equal((await server.metrics(dlq.queue_id)).backlog_count, 0);
  assert.equal((await server.metrics(work.queue_id)).backlog_count, 1);

  // A queue nothing dead-letters into has nothing to redrive to.
  await row(name).getByRole('button', { name }).click();
  assert.equal(await page.getByTestId('redrive').isDisabled(), true);
});

test('settings are edited and a pull consumer added, edited and removed from the page', async () => {
  const name = uniqueName('tuned');
  const queue = await server.ok('POST', '/queues', { queue_name: name });
  await row(name).getByRole('button', { name }).click();
  await page.getByTestId('detail-name').filter({ hasText: name }).waitFor();

  await page.getByTestId('set-delay').fill('5');
  await page.getByTestId('set-retention').fill('3600');
  await page.getByTestId('save-settings').click();
  await status().filter({ hasText: `Saved the settings of ${name}` }).waitFor();
  const saved = (await server.queueByName(name)).settings;
  assert.deepEqual([saved.delivery_delay, saved.message_retention_period], [5, 3600]);

  // A retention below the minimum is the server's to refuse; nothing changes.
  await page.getByTestId('set-retention').fill('10');
  await page.getByTestId('save-settings').click();
  await status().filter({ hasText: 'Error 100128' }).waitFor();
  assert.equal((await server.queueByName(name)).settings.message_retention_period, 3600);

  const consumerSettings = async () => {
    const consumers = await server.ok('GET', `/queues/${queue.queue_id}/consumers`);
    assert.equal(consumers.length, 1);
    const { settings } = consumers[0];
    return [consumers[0].type, consumers[0].dead_letter_queue, settings.batch_size, settings.max_retries,
      settings.retry_delay, settings.visibility_timeout_ms];
  };
  assert.equal(await page.getByTestId('consumer-submit').textContent(), 'Add pull consumer');
  await page.getByTestId('con-dlq').fill(`${name}-dlq`);
  await page.getByTestId('con-batch').fill('10');
  await page.getByTestId('con-retries').fill('1');
  await page.getByTestId('con-retry-delay').fill('2');
  await page.getByTestId('consumer-submit').click();
  await status().filter({ hasText: `Added a pull consumer to ${name}` }).waitFor();
  assert.deepEqual(await consumerSettings(), ['http_pull', `${name}-dlq`, 10, 1, 2, 30000]);

  // The form now edits that consumer, filled from what the server keeps.
  await page.getByTestId('consumer-submit').filter({ hasText: 'Save consumer' }).waitFor();
  assert.equal(await page.getByTestId('con-batch').inputValue(), '10');
  assert.equal(await page.getByTestId('con-dlq').inputValue(), `${name}-dlq`);
  await page.getByTestId('con-batch').fill('20');
  await page.getByTestId('con-visibility').fill('60000');
  await page.getByTestId('consumer-submit').click();
  await status().filter({ hasText: `Saved the consumer of ${name}` }).waitFor();
  assert.deepEqual(await consumerSettings(), ['http_pull', `${name}-dlq`, 20, 1, 2, 60000]);

  // A batch size past the limit is the server's to refuse; nothing changes.
  await page.getByTestId('con-batch').fill('101');
  await page.getByTestId('consumer-submit').click();
  await status().filter({ hasText: 'Error 100127' }).waitFor();
  assert.deepEqual(await consumerSettings(), ['http_pull', `${name}-dlq`, 20, 1, 2, 60000]);

  page.once('dialog', (dialog) => dialog.accept());
  await page.getByTestId('remove-consumer').click();
  await page.getByTestId('consumer-submit').filter({ hasText: 'Add pull consumer' }).waitFor();
  assert.deepEqual(await server.ok('GET', `/queues/${queue.queue_id}/consumers`), []);
  assert.equal(await page.getByTestId('con-batch').inputValue(), '5', 'the form is back to the defaults');
});

test('a worker consumer is shown but not edited as a pull consumer', async () => {
  const name = uniqueName('worker');
  const queue = await server.ok('POST', '/queues', { queue_name: name });
  await server.ok('POST', `/queues/${queue.queue_id}/consumers`, { type: 'worker', script_name: 'my-worker' });
  await row(name).getByRole('button', { name }).click({ timeout: UI_TIMEOUT_MS });
  await page.getByTestId('detail-name').filter({ hasText: name }).waitFor();
  await page.getByTestId('remove-consumer').waitFor();
  assert.equal(await page.getByTestId('consumer-form').isHidden(), true);
  assert.match(await page.getByTestId('detail').textContent(), /worker/);
});

test('the server refusing an input shows its error and changes nothing', async () => {
  const before = (await server.ok('GET', '/queues?per_page=1000')).length;
  await page.getByTestId('new-queue').fill('Not A Valid Name');
  await page.getByTestId('create-queue').click();
  await status().filter({ hasText: 'Error 11003' }).waitFor();
  assert.equal((await server.ok('GET', '/queues?per_page=1000')).length, before);
});

test('deleting a queue from the page removes it', async () => {
  const name = uniqueName('gone');
  await server.ok('POST', '/queues', { queue_name: name });
  await row(name).getByRole('button', { name }).click({ timeout: UI_TIMEOUT_MS });
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByTestId('delete').click();
  await row(name).waitFor({ state: 'detached' });
  assert.equal(await server.queueByName(name), undefined);
});

test('a long queue list is paged, fifty queues at a time', async () => {
  const made = [];
  for (let n = 0; n < 60; n += 1) {
    made.push((await server.ok('POST', '/queues', { queue_name: uniqueName(`many-${n}`) })).queue_id);
  }
  const total = (await server.ok('GET', '/queues?per_page=1000')).length;
  assert.ok(total > 50);
  await page.getByTestId('page-info').filter({ hasText: `page 1 of 2 (${total} queues)` }).waitFor();
  assert.equal(await page.locator('tr[data-queue]').count(), 50);
  await page.getByTestId('page-next').click();
  await page.getByTestId('page-info').filter({ hasText: 'page 2 of 2' }).waitFor();
  assert.equal(await page.locator('tr[data-queue]').count(), total - 50);
  assert.equal(await page.getByTestId('page-next').isDisabled(), true);
  await page.getByTestId('page-prev').click();
  await page.getByTestId('page-info').filter({ hasText: 'page 1 of 2' }).waitFor();
  for (const id of made) await server.ok('DELETE', `/queues/${id}`);
  await page.getByTestId('pager').waitFor({ state: 'hidden' });
});

test('sign out forgets the token; a read token may look but not change', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByTestId('sign-in').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('wharf-token')), null);

  const created = await fetch(`${server.apiBase}/user/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'dashboard-reader', scope: 'read' }),
  });
  const reader = (await created.json()).result.value;
  assert.ok(reader, 'a read token was made');
  const before = (await server.ok('GET', '/queues?per_page=1000')).length;
  await signIn(reader);
  await page.getByTestId('queues').waitFor();
  await page.getByTestId('new-queue').fill(uniqueName('readonly'));
  await page.getByTestId('create-queue').click();
  await status().filter({ hasText: 'Error 10000' }).waitFor();
  assert.equal((await server.ok('GET', '/queues?per_page=1000')).length, before);
});

test('the page raised no script error and no policy violation', () => {
  // A refused sign-in logs the browser's own "401/403" resource error; only
  // errors of the page's code and of the policy count.
  const ours = pageErrors.filter((error) => !/Failed to load resource/.test(error));
  assert.deepEqual(ours, []);
});
