// Every `wrangler queues …` subcommand of the pinned wrangler (package.json),
// run non-interactively against the real wharf binary. Each step asserts on
// wrangler's exit code and then on the state the server holds afterwards,
// read with plain HTTP rather than through wrangler.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startWharf, uniqueName } from './lib/wharf.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WRANGLER = path.join(here, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const COMMAND_TIMEOUT_MS = 60_000;

let server;
let home;

before(async () => {
  server = await startWharf();
  home = await mkdtemp(path.join(tmpdir(), 'wharf-wrangler-home-'));
});

after(async () => {
  const status = await server?.stop();
  if (home) await rm(home, { recursive: true, force: true });
  assert.deepEqual(status, { code: 0, signal: null }, 'wharf must exit 0 on SIGTERM');
});

/**
 * Runs `wrangler queues <args>` with a throw-away HOME and working directory
 * (no wrangler config file), pointed at wharf through the environment only.
 */
function wrangler(...args) {
  return wranglerWith({}, ...args);
}

/**
 * `wrangler(...)` with another HOME/working directory (`home`) or changed
 * variables (`env`; a variable set to undefined is removed).
 */
function wranglerWith(options, ...args) {
  const cwd = options.home ?? home;
  const env = {
    PATH: process.env.PATH,
    HOME: cwd,
    XDG_CONFIG_HOME: path.join(cwd, '.config'),
    CLOUDFLARE_API_BASE_URL: server.apiBase,
    CLOUDFLARE_API_TOKEN: server.token,
    CLOUDFLARE_ACCOUNT_ID: server.accountId,
    CI: 'true',
    WRANGLER_SEND_METRICS: 'false',
    NO_COLOR: '1',
    ...options.env,
  };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRANGLER, 'queues', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wrangler queues ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, COMMAND_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (process.env.WHARF_COMPAT_TRACE) console.error(`$ wrangler queues ${args.join(' ')} → ${code}\n${stdout}${stderr}`);
      resolve({ code, stdout, stderr, output: `${stdout}\n${stderr}` });
    });
  });
}

/** Runs a command that must succeed and returns its result. */
async function succeeds(...args) {
  const run = await wrangler(...args);
  assert.equal(run.code, 0, `wrangler queues ${args.join(' ')} exited ${run.code}:\n${run.output}`);
  return run;
}

/** Runs a command that must fail (non-zero exit) and returns its result. */
async function fails(...args) {
  const run = await wrangler(...args);
  assert.notEqual(run.code, 0, `wrangler queues ${args.join(' ')} should have failed:\n${run.output}`);
  return run;
}

/** The JSON document a `--json` command printed (wrangler prints nothing else then). */
function parseJson(run) {
  const start = run.stdout.search(/[[{]/);
  assert.ok(start >= 0, `no JSON in:\n${run.stdout}`);
  return JSON.parse(run.stdout.slice(start));
}

// One queue (and its dead letter queue) goes through every subcommand in
// order; the suites below share it and run one after the other.
const name = uniqueName('wr');
const dlq = `${name}-dlq`;
let queueId;

const state = async () => server.queueByName(name);

describe('wrangler queues', () => {
  test('create (with settings) and create of a second queue', async () => {
    await succeeds('create', name, '--delivery-delay-secs', '0', '--message-retention-period-secs', '3600');
    const queue = await state();
    assert.ok(queue, 'the queue exists on the server');
    queueId = queue.queue_id;
    assert.equal(queue.settings.delivery_delay, 0);
    assert.equal(queue.settings.message_retention_period, 3600);
    await succeeds('create', dlq);
    assert.ok(await server.queueByName(dlq));
  });

  test('create of a taken name fails and changes nothing', async () => {
    await fails('create', name);
    const matching = (await server.ok('GET', '/queues?per_page=100')).filter((q) => q.queue_name === name);
    assert.equal(matching.length, 1);
  });

  test('create of an invalid name fails', async () => {
    await fails('create', 'Bad_Name');
    assert.equal(await server.queueByName('Bad_Name'), undefined);
  });

  test('list shows both queues', async () => {
    const run = await succeeds('list');
    assert.ok(run.stdout.includes(name), run.stdout);
    assert.ok(run.stdout.includes(dlq), run.stdout);
  });

  test('list --page: both queues on page 1, none on page 2', async () => {
    const first = await succeeds('list', '--page', '1');
    assert.ok(first.stdout.includes(name) && first.stdout.includes(dlq), first.stdout);
    // This server holds only these two queues: far fewer than one page.
    const second = await succeeds('list', '--page', '2');
    assert.ok(!second.stdout.includes(name) && !second.stdout.includes(dlq), second.stdout);
  });

  test('info shows the queue', async () => {
    const run = await succeeds('info', name);
    assert.ok(run.stdout.includes(queueId), run.stdout);
  });

  test('info of a missing queue fails', async () => {
    await fails('info', 'does-not-exist');
  });

  test('update changes the settings', async () => {
    await succeeds('update', name, '--delivery-delay-secs', '1', '--message-retention-period-secs', '7200');
    const queue = await state();
    assert.equal(queue.settings.delivery_delay, 1);
    assert.equal(queue.settings.message_retention_period, 7200);
    assert.equal(queue.queue_id, queueId);
  });

  test('consumer http add / list / remove', async () => {
    await succeeds(
      'consumer', 'http', 'add', name,
      '--batch-size', '5', '--message-retries', '3', '--dead-letter-queue', dlq,
      '--visibility-timeout-secs', '30', '--retry-delay-secs', '2',
    );
    let queue = await state();
    assert.equal(queue.consumers.length, 1);
    const [consumer] = queue.consumers;
    assert.equal(consumer.type, 'http_pull');
    assert.equal(consumer.dead_letter_queue, dlq);
    assert.deepEqual(consumer.settings, { batch_size: 5, max_retries: 3, retry_delay: 2, visibility_timeout_ms: 30000 });

    const listed = parseJson(await succeeds('consumer', 'http', 'list', name, '--json'));
    assert.deepEqual(listed.map((c) => c.consumer_id), [consumer.consumer_id]);

    await fails('consumer', 'http', 'add', name);
    assert.equal((await state()).consumers.length, 1, 'a second consumer must be refused');

    await succeeds('consumer', 'http', 'remove', name);
    queue = await state();
    assert.deepEqual(queue.consumers, []);
    assert.equal(queue.consumers_total_count, 0);
  });

  test('consumer add / list / remove (worker)', async () => {
    await succeeds(
      'consumer', 'add', name, 'my-worker',
      '--batch-size', '10', '--batch-timeout', '5', '--message-retries', '3',
      '--dead-letter-queue', dlq, '--max-concurrency', '2', '--retry-delay-secs', '1',
    );
    const [consumer] = (await state()).consumers;
    assert.equal(consumer.type, 'worker');
    assert.equal(consumer.script, 'my-worker');
    assert.equal(consumer.script_name, 'my-worker');
    assert.equal(consumer.dead_letter_queue, dlq);
    assert.deepEqual(consumer.settings, { batch_size: 10, max_concurrency: 2, max_retries: 3, max_wait_time_ms: 5000, retry_delay: 1 });

    const run = await succeeds('consumer', 'list', name);
    assert.ok(run.stdout.includes('my-worker'), run.stdout);
    const listed = parseJson(await succeeds('consumer', 'list', name, '--json'));
    assert.deepEqual(listed.map((c) => [c.consumer_id, c.script]), [[consumer.consumer_id, 'my-worker']]);

    await fails('consumer', 'remove', name, 'not-a-consumer');
    assert.equal((await state()).consumers.length, 1);

    await succeeds('consumer', 'remove', name, 'my-worker');
    assert.deepEqual((await state()).consumers, []);
  });

  test('consumer worker add / list / remove', async () => {
    await succeeds('consumer', 'worker', 'add', name, 'my-worker2', '--batch-size', '3');
    const [consumer] = (await state()).consumers;
    assert.equal(consumer.type, 'worker');
    assert.equal(consumer.script, 'my-worker2');
    assert.equal(consumer.settings.batch_size, 3);

    const listed = parseJson(await succeeds('consumer', 'worker', 'list', name, '--json'));
    assert.deepEqual(listed.map((c) => c.consumer_id), [consumer.consumer_id]);

    await succeeds('consumer', 'worker', 'remove', name, 'my-worker2');
    assert.deepEqual((await state()).consumers, []);
  });

  test('pause-delivery and resume-delivery keep the other settings', async () => {
    await succeeds('pause-delivery', name);
    let queue = await state();
    assert.equal(queue.settings.delivery_paused, true);
    assert.equal(queue.settings.delivery_delay, 1);
    assert.equal(queue.settings.message_retention_period, 7200);

    await succeeds('resume-delivery', name);
    queue = await state();
    assert.equal(queue.settings.delivery_paused, false);
    assert.equal(queue.settings.delivery_delay, 1);
  });

  test('purge --force deletes every message', async () => {
    await server.ok('POST', `/queues/${queueId}/messages/batch`, { messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }] });
    assert.equal((await server.metrics(queueId)).backlog_count, 3);
    await succeeds('purge', name, '--force');
    assert.equal((await server.metrics(queueId)).backlog_count, 0);
  });

});

describe('wrangler queues subscription', () => {
  let subscriptionId;

  const subscriptions = async () => server.ok('GET', `/event_subscriptions/subscriptions?queue_id=${queueId}&per_page=100`);

  test('create (kv, and workersAi.model disabled)', async () => {
    await succeeds('subscription', 'create', name, '--source', 'kv', '--events', 'namespace.created,namespace.deleted', '--name', 'sub1');
    let current = await subscriptions();
    assert.equal(current.length, 1);
    const [created] = current;
    subscriptionId = created.id;
    assert.equal(created.name, 'sub1');
    assert.equal(created.enabled, true);
    assert.deepEqual(created.source, { type: 'kv' });
    assert.deepEqual(created.destination, { type: 'queues.queue', queue_id: queueId });
    assert.deepEqual(created.events, ['namespace.created', 'namespace.deleted']);

    await succeeds(
      'subscription', 'create', name, '--source', 'workersAi.model', '--model-name', 'm1',
      '--events', 'batch.completed', '--enabled', 'false',
    );
    current = await subscriptions();
    assert.equal(current.length, 2);
    const model = current.find((s) => s.id !== subscriptionId);
    assert.equal(model.enabled, false);
    assert.deepEqual(model.source, { type: 'workersAi.model', model_name: 'm1' });
  });

  test('create without a required source option fails', async () => {
    await fails('subscription', 'create', name, '--source', 'workflows.workflow', '--events', 'x');
    assert.equal((await subscriptions()).length, 2);
  });

  test('list (table and --json, with paging)', async () => {
    const table = await succeeds('subscription', 'list', name);
    assert.ok(table.stdout.includes('sub1'), table.stdout);
    const all = parseJson(await succeeds('subscription', 'list', name, '--json'));
    assert.equal(all.length, 2);
    const first = parseJson(await succeeds('subscription', 'list', name, '--json', '--per-page', '1', '--page', '1'));
    const second = parseJson(await succeeds('subscription', 'list', name, '--json', '--per-page', '1', '--page', '2'));
    assert.equal(first.length, 1);
    assert.equal(second.length, 1);
    assert.notEqual(first[0].id, second[0].id);
  });

  test('get (table and --json)', async () => {
    const table = await succeeds('subscription', 'get', name, '--id', subscriptionId);
    assert.ok(table.stdout.includes('sub1'), table.stdout);
    const got = parseJson(await succeeds('subscription', 'get', name, '--id', subscriptionId, '--json'));
    assert.equal(got.id, subscriptionId);
    assert.equal(got.name, 'sub1');
  });

  test('get of an unknown id fails', async () => {
    await fails('subscription', 'get', name, '--id', '0'.repeat(32));
  });

  test('update', async () => {
    await succeeds('subscription', 'update', name, '--id', subscriptionId, '--name', 'sub1b', '--events', 'namespace.created', '--enabled', 'false');
    const updated = await server.ok('GET', `/event_subscriptions/subscriptions/${subscriptionId}`);
    assert.equal(updated.name, 'sub1b');
    assert.equal(updated.enabled, false);
    assert.deepEqual(updated.events, ['namespace.created']);
    assert.deepEqual(updated.source, { type: 'kv' });
  });

  test('delete --force', async () => {
    await succeeds('subscription', 'delete', name, '--id', subscriptionId, '--force');
    const reply = await server.api('GET', `/event_subscriptions/subscriptions/${subscriptionId}`);
    assert.equal(reply.status, 404);
    assert.equal((await subscriptions()).length, 1);
  });
});

describe('wrangler queues delete', () => {
  test('delete removes both queues', async () => {
    await succeeds('delete', name);
    assert.equal(await state(), undefined);
    assert.equal((await server.api('GET', `/queues/${queueId}`)).status, 404);
    await succeeds('delete', dlq);
    assert.equal(await server.queueByName(dlq), undefined);
    const run = await succeeds('list');
    assert.ok(!run.stdout.includes(name), run.stdout);
  });

  test('delete of a missing queue fails', async () => {
    await fails('delete', 'does-not-exist');
  });
});

describe('wrangler queues: account discovery and credentials', () => {
  test('without CLOUDFLARE_ACCOUNT_ID the account comes from /memberships', async () => {
    // A fresh HOME and working directory: no account id cached by earlier runs.
    const fresh = await mkdtemp(path.join(tmpdir(), 'wharf-wrangler-noaccount-'));
    try {
      const queue = uniqueName('wr-noacct');
      await server.ok('POST', '/queues', { queue_name: queue });
      const noAccountId = { home: fresh, env: { CLOUDFLARE_ACCOUNT_ID: undefined } };
      const listed = await wranglerWith(noAccountId, 'list');
      assert.equal(listed.code, 0, listed.output);
      assert.ok(listed.stdout.includes(queue), listed.stdout);
      const deleted = await wranglerWith(noAccountId, 'delete', queue);
      assert.equal(deleted.code, 0, deleted.output);
      assert.equal(await server.queueByName(queue), undefined);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  test('a wrong token fails with the API error and changes nothing', async () => {
    const queue = uniqueName('wr-badtoken');
    const run = await wranglerWith({ env: { CLOUDFLARE_API_TOKEN: 'not-a-wharf-token' } }, 'create', queue);
    assert.notEqual(run.code, 0, run.output);
    assert.match(run.output, /10000/, 'the v4 error code reaches the user');
    assert.equal(await server.queueByName(queue), undefined);
  });
});
