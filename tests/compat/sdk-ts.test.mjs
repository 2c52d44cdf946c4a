// The official TypeScript SDK (npm `cloudflare`, pinned in package.json)
// against the real wharf binary: every queues, consumers and messages call it
// has, asserting on the fields it returns and, where a call changes state, on
// what the server reports afterwards through plain HTTP.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import Cloudflare from 'cloudflare';

import { startWharf, tracingFetch, uniqueName } from './lib/wharf.mjs';

const HEX32 = /^[0-9a-f]{32}$/;

let server;
let client;
let account;
const traffic = [];

before(async () => {
  server = await startWharf();
  account = { account_id: server.accountId };
  // maxRetries 0: a failure must show up as a failure, not be retried away.
  client = new Cloudflare({ apiToken: server.token, baseURL: server.apiBase, maxRetries: 0, fetch: tracingFetch(traffic) });
});

after(async () => {
  const status = await server?.stop();
  assert.deepEqual(status, { code: 0, signal: null }, 'wharf must exit 0 on SIGTERM');
});

/** Awaits a promise that must reject with an APIError of this status (and v4 code). */
async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof Cloudflare.APIError, `expected an APIError, got ${error}`);
    assert.equal(error.status, status, `status of ${error.message}`);
    if (code !== undefined) assert.equal(error.errors?.[0]?.code, code, `code of ${error.message}`);
    return true;
  });
}

async function newQueue(prefix) {
  return client.queues.create({ ...account, queue_name: uniqueName(prefix) });
}

/** Base64 decoding of a pulled `json` body back into the value sent. */
function decodeJsonBody(body) {
  return JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
}

describe('queues', () => {
  test('create returns the full queue with default settings', async () => {
    const name = uniqueName('ts-create');
    const before = Date.now();
    const queue = await client.queues.create({ ...account, queue_name: name });
    assert.match(queue.queue_id, HEX32);
    assert.equal(queue.queue_name, name);
    assert.ok(Date.parse(queue.created_on) >= before - 5_000, `created_on ${queue.created_on}`);
    assert.ok(!Number.isNaN(Date.parse(queue.modified_on)), `modified_on ${queue.modified_on}`);
    assert.deepEqual(queue.settings, { delivery_delay: 0, delivery_paused: false, message_retention_period: 345600 });
    assert.deepEqual(queue.consumers, []);
    assert.equal(queue.consumers_total_count, 0);
    assert.deepEqual(queue.producers, []);
    assert.equal(queue.producers_total_count, 0);
  });

  test('create rejects an invalid name (11003) and a taken name (409)', async () => {
    await rejectsWith(client.queues.create({ ...account, queue_name: 'Not_Valid' }), 400, 11003);
    const queue = await newQueue('ts-dup');
    await rejectsWith(client.queues.create({ ...account, queue_name: queue.queue_name }), 409);
  });

  test('get, update (PUT), edit (PATCH merge), list, delete', async () => {
    const queue = await newQueue('ts-crud');
    const id = queue.queue_id;

    const fetched = await client.queues.get(id, account);
    assert.equal(fetched.queue_id, id);
    assert.equal(fetched.queue_name, queue.queue_name);

    const replaced = await client.queues.update(id, {
      ...account,
      queue_name: queue.queue_name,
      settings: { delivery_delay: 5, message_retention_period: 3600 },
    });
    assert.equal(replaced.settings.delivery_delay, 5);
    assert.equal(replaced.settings.message_retention_period, 3600);
    assert.equal(replaced.settings.delivery_paused, false);

    const paused = await client.queues.edit(id, { ...account, settings: { delivery_paused: true } });
    assert.deepEqual(paused.settings, { delivery_delay: 5, delivery_paused: true, message_retention_period: 3600 });
    const state = await server.ok('GET', `/queues/${id}`);
    assert.equal(state.settings.delivery_paused, true, 'PATCH must be stored');
    assert.equal(state.settings.delivery_delay, 5, 'PATCH must keep the settings it does not name');

    const resumed = await client.queues.edit(id, { ...account, settings: { delivery_paused: false } });
    assert.equal(resumed.settings.delivery_paused, false);

    const names = [];
    for await (const listed of client.queues.list(account)) names.push(listed.queue_name);
    assert.ok(names.includes(queue.queue_name), `list ${names}`);

    const deleted = await client.queues.delete(id, account);
    assert.equal(deleted.success, true);
    assert.deepEqual(deleted.errors, []);
    await rejectsWith(client.queues.get(id, account), 404, 10104);
    assert.equal(await server.queueByName(queue.queue_name), undefined);
  });

  test('list honours page and per_page passed as query options', async () => {
    const prefix = uniqueName('ts-page');
    for (let i = 0; i < 3; i += 1) await client.queues.create({ ...account, queue_name: `${prefix}-${i}` });
    const total = (await server.ok('GET', '/queues?per_page=1000')).length;
    const seen = [];
    for (let page = 1; page <= total + 1; page += 1) {
      const response = await client.queues.list(account, { query: { page, per_page: 2 } });
      const items = response.getPaginatedItems();
      assert.ok(items.length <= 2, `page ${page} has ${items.length} items`);
      if (items.length === 0) break;
      seen.push(...items.map((q) => q.queue_id));
    }
    assert.equal(seen.length, total, 'paging by 2 must visit every queue once');
    assert.equal(new Set(seen).size, total, 'no queue may appear on two pages');
  });

  test('metrics of an empty queue are zero', async () => {
    const queue = await newQueue('ts-metrics');
    const metrics = await client.queues.getMetrics(queue.queue_id, account);
    assert.deepEqual(metrics, { backlog_count: 0, backlog_bytes: 0, oldest_message_timestamp_ms: 0 });
  });

  test('a wrong token is refused', async () => {
    const stranger = new Cloudflare({ apiToken: 'not-a-real-token', baseURL: server.apiBase, maxRetries: 0 });
    await rejectsWith(stranger.queues.list(account), 403, 10000);
  });
});

describe('consumers', () => {
  test('http_pull consumer: create, list, get, update, delete', async () => {
    const queue = await newQueue('ts-cons');
    const dlq = `${queue.queue_name}-dlq`;
    const created = await client.queues.consumers.create(queue.queue_id, {
      ...account,
      type: 'http_pull',
      dead_letter_queue: dlq,
      settings: { batch_size: 10, max_retries: 3, retry_delay: 1, visibility_timeout_ms: 30000 },
    });
    assert.match(created.consumer_id, HEX32);
    assert.equal(created.type, 'http_pull');
    assert.equal(created.queue_name, queue.queue_name);
    assert.equal(created.dead_letter_queue, dlq);
    assert.deepEqual(created.settings, { batch_size: 10, max_retries: 3, retry_delay: 1, visibility_timeout_ms: 30000 });
    assert.ok(!Number.isNaN(Date.parse(created.created_on)));

    const listed = [];
    for await (const consumer of client.queues.consumers.list(queue.queue_id, account)) listed.push(consumer);
    assert.deepEqual(listed.map((c) => c.consumer_id), [created.consumer_id]);

    const got = await client.queues.consumers.get(created.consumer_id, { ...account, queue_id: queue.queue_id });
    assert.equal(got.consumer_id, created.consumer_id);
    assert.equal(got.settings.visibility_timeout_ms, 30000);

    const updated = await client.queues.consumers.update(created.consumer_id, {
      ...account,
      queue_id: queue.queue_id,
      type: 'http_pull',
      dead_letter_queue: dlq,
      settings: { batch_size: 5, max_retries: 4 },
    });
    assert.equal(updated.consumer_id, created.consumer_id);
    assert.equal(updated.settings.batch_size, 5);
    assert.equal(updated.settings.max_retries, 4);

    const state = await server.ok('GET', `/queues/${queue.queue_id}`);
    assert.equal(state.consumers_total_count, 1);
    assert.equal(state.consumers[0].consumer_id, created.consumer_id);
    assert.equal(state.consumers[0].type, 'http_pull');

    const deleted = await client.queues.consumers.delete(created.consumer_id, { ...account, queue_id: queue.queue_id });
    assert.equal(deleted.success, true);
    assert.deepEqual(await server.ok('GET', `/queues/${queue.queue_id}/consumers`), []);
    await rejectsWith(client.queues.consumers.get(created.consumer_id, { ...account, queue_id: queue.queue_id }), 404);
  });

  test('worker consumer fields, and a second consumer is refused with 11004', async () => {
    const queue = await newQueue('ts-worker');
    const worker = await client.queues.consumers.create(queue.queue_id, {
      ...account,
      type: 'worker',
      script_name: 'my-worker',
      settings: { batch_size: 10, max_concurrency: 2, max_wait_time_ms: 5000 },
    });
    assert.equal(worker.type, 'worker');
    assert.equal(worker.script_name, 'my-worker');
    assert.equal(worker.settings.batch_size, 10);
    assert.equal(worker.settings.max_concurrency, 2);
    assert.equal(worker.settings.max_wait_time_ms, 5000);
    assert.equal(worker.dead_letter_queue, '');

    await rejectsWith(client.queues.consumers.create(queue.queue_id, { ...account, type: 'http_pull' }), 409, 11004);
    const consumers = await server.ok('GET', `/queues/${queue.queue_id}/consumers`);
    assert.equal(consumers.length, 1);
  });
});

describe('messages', () => {
  let queue;

  before(async () => {
    queue = await newQueue('ts-msg');
  });

  test('push, bulkPush and metrics count what was sent', async () => {
    const sentAt = Date.now();
    const text = await client.queues.messages.push(queue.queue_id, { ...account, body: 'hello', content_type: 'text' });
    assert.equal(text.metadata?.metrics?.backlog_count, 1, JSON.stringify(text));
    await client.queues.messages.push(queue.queue_id, { ...account, body: { k: [1, 2] }, content_type: 'json', delay_seconds: 0 });
    const batch = await client.queues.messages.bulkPush(queue.queue_id, {
      ...account,
      delay_seconds: 0,
      messages: [
        { body: 't1', content_type: 'text' },
        { body: { n: 2 }, content_type: 'json', delay_seconds: 0 },
      ],
    });
    assert.equal(batch.metadata?.metrics?.backlog_count, 4, JSON.stringify(batch));

    const metrics = await client.queues.getMetrics(queue.queue_id, account);
    assert.equal(metrics.backlog_count, 4);
    assert.ok(metrics.backlog_bytes > 0);
    assert.ok(metrics.oldest_message_timestamp_ms >= sentAt - 5_000 && metrics.oldest_message_timestamp_ms <= Date.now() + 5_000);
  });

  test('pull without an http_pull consumer is a clear 4xx', async () => {
    await assert.rejects(client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 1 }), (error) => {
      assert.ok(error instanceof Cloudflare.APIError);
      assert.ok(error.status >= 400 && error.status < 500, `status ${error.status}`);
      assert.match(error.errors?.[0]?.message ?? '', /consumer/i);
      return true;
    });
  });

  test('peek shows messages without leasing them', async () => {
    await client.queues.consumers.create(queue.queue_id, {
      ...account,
      type: 'http_pull',
      settings: { batch_size: 10, max_retries: 3, visibility_timeout_ms: 30000 },
    });
    const peeked = await client.queues.messages.peek(queue.queue_id, { ...account, batch_size: 2 });
    assert.equal(peeked.messages.length, 2);
    for (const message of peeked.messages) {
      assert.match(message.id, HEX32);
      assert.equal(typeof message.ref, 'string');
      assert.equal(message.lease_id, undefined, 'peek must not lease');
    }
    const metrics = await client.queues.getMetrics(queue.queue_id, account);
    assert.equal(metrics.backlog_count, 4);
  });

  test('pull leases every message once, decodes bodies; ack and retry', async () => {
    const pulled = await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 10, visibility_timeout_ms: 5000 });
    assert.equal(pulled.messages.length, 4);
    assert.equal(pulled.message_backlog_count, 4);
    const bodies = [];
    for (const message of pulled.messages) {
      assert.match(message.id, HEX32);
      assert.equal(message.attempts, 1);
      assert.equal(typeof message.lease_id, 'string');
      assert.ok(message.timestamp_ms > 0);
      const contentType = message.metadata['CF-Content-Type'];
      bodies.push(contentType === 'text' ? message.body : decodeJsonBody(message.body));
    }
    assert.deepEqual(
      bodies.map((b) => JSON.stringify(b)).sort(),
      ['hello', 't1', { k: [1, 2] }, { n: 2 }].map((b) => JSON.stringify(b)).sort(),
    );

    const again = await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 10 });
    assert.equal(again.messages.length, 0, 'leased messages must not be pulled twice');

    const [a, b, c, d] = pulled.messages;
    const acked = await client.queues.messages.ack(queue.queue_id, {
      ...account,
      acks: [{ lease_id: a.lease_id }, { lease_id: b.lease_id }],
      retries: [{ lease_id: c.lease_id, delay_seconds: 0 }, { lease_id: d.lease_id, delay_seconds: 0 }],
    });
    assert.equal(acked.ackCount, 2);
    assert.equal(acked.retryCount, 2);
    assert.equal(Object.keys(acked.warnings ?? {}).length, 0, JSON.stringify(acked));

    const redelivered = await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 10 });
    assert.deepEqual(redelivered.messages.map((m) => m.id).sort(), [c.id, d.id].sort());
    for (const message of redelivered.messages) assert.equal(message.attempts, 2);
    const final = await client.queues.messages.ack(queue.queue_id, {
      ...account,
      acks: redelivered.messages.map((m) => ({ lease_id: m.lease_id })),
    });
    assert.equal(final.ackCount, 2);

    const metrics = await client.queues.getMetrics(queue.queue_id, account);
    assert.deepEqual(metrics, { backlog_count: 0, backlog_bytes: 0, oldest_message_timestamp_ms: 0 });
  });

  test('an unknown lease is a warning, not a failure', async () => {
    const result = await client.queues.messages.ack(queue.queue_id, { ...account, acks: [{ lease_id: 'bogus-lease' }] });
    assert.equal(result.ackCount, 0);
    assert.equal(typeof result.warnings?.['bogus-lease'], 'string', JSON.stringify(result));
  });

  test('a retry with delay_seconds hides the message until the delay passes', async () => {
    await client.queues.messages.push(queue.queue_id, { ...account, body: 'later', content_type: 'text' });
    const [message] = (await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 1 })).messages;
    await client.queues.messages.ack(queue.queue_id, { ...account, retries: [{ lease_id: message.lease_id, delay_seconds: 1 }] });
    const early = await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 1 });
    assert.equal(early.messages.length, 0, 'a delayed retry must not be visible at once');
    assert.equal((await client.queues.getMetrics(queue.queue_id, account)).backlog_count, 1, 'a delayed message is backlog');
    await sleep(1_500);
    const late = await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 1 });
    assert.equal(late.messages.length, 1);
    assert.equal(late.messages[0].id, message.id);
    assert.equal(late.messages[0].attempts, 2);
    await client.queues.messages.ack(queue.queue_id, { ...account, acks: [{ lease_id: late.messages[0].lease_id }] });
  });

  test('peek refs purge exactly the peeked messages', async () => {
    await client.queues.messages.bulkPush(queue.queue_id, {
      ...account,
      messages: [
        { body: 'p1', content_type: 'text' },
        { body: 'p2', content_type: 'text' },
      ],
    });
    const peeked = await client.queues.messages.peek(queue.queue_id, { ...account, batch_size: 1 });
    assert.equal(peeked.messages.length, 1);
    const purged = await client.queues.messages.purge(queue.queue_id, { ...account, refs: [{ ref: peeked.messages[0].ref }] });
    assert.equal(Object.keys(purged?.warnings ?? {}).length, 0, JSON.stringify(purged));
    const rest = await client.queues.messages.pull(queue.queue_id, { ...account, batch_size: 10 });
    assert.equal(rest.messages.length, 1);
    assert.notEqual(rest.messages[0].id, peeked.messages[0].id);
    await client.queues.messages.ack(queue.queue_id, { ...account, acks: [{ lease_id: rest.messages[0].lease_id }] });
  });

  test('max_retries exhausted sends the message to the dead letter queue', async () => {
    const source = await newQueue('ts-dlq-src');
    const dlqName = `${source.queue_name}-dlq`;
    await client.queues.consumers.create(source.queue_id, {
      ...account,
      type: 'http_pull',
      dead_letter_queue: dlqName,
      settings: { max_retries: 1 },
    });
    await client.queues.messages.push(source.queue_id, { ...account, body: 'doomed', content_type: 'text' });
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      const [message] = (await client.queues.messages.pull(source.queue_id, { ...account, batch_size: 1 })).messages;
      assert.equal(message?.attempts, attempt);
      await client.queues.messages.ack(source.queue_id, { ...account, retries: [{ lease_id: message.lease_id, delay_seconds: 0 }] });
    }
    assert.equal((await client.queues.messages.pull(source.queue_id, { ...account, batch_size: 1 })).messages.length, 0);
    assert.equal((await client.queues.getMetrics(source.queue_id, account)).backlog_count, 0);
    const dlq = await server.queueByName(dlqName);
    assert.ok(dlq, 'the dead letter queue is created when missing');
    assert.equal((await server.metrics(dlq.queue_id)).backlog_count, 1);
    const peeked = await client.queues.messages.peek(dlq.queue_id, { ...account, batch_size: 1 });
    assert.equal(peeked.messages[0].body, 'doomed');
  });

  test('pull from a paused queue is 409; push still works', async () => {
    const paused = await newQueue('ts-paused');
    await client.queues.consumers.create(paused.queue_id, { ...account, type: 'http_pull' });
    await client.queues.edit(paused.queue_id, { ...account, settings: { delivery_paused: true } });
    await client.queues.messages.push(paused.queue_id, { ...account, body: 'waiting', content_type: 'text' });
    await rejectsWith(client.queues.messages.pull(paused.queue_id, { ...account, batch_size: 1 }), 409);
    await client.queues.edit(paused.queue_id, { ...account, settings: { delivery_paused: false } });
    const pulled = await client.queues.messages.pull(paused.queue_id, { ...account, batch_size: 1 });
    assert.equal(pulled.messages[0]?.body, 'waiting');
  });

  test('purge empties the queue and reports its status', async () => {
    const target = await newQueue('ts-purge');
    await client.queues.messages.bulkPush(target.queue_id, {
      ...account,
      messages: [{ body: 1 }, { body: 2 }, { body: 3, delay_seconds: 600 }],
    });
    assert.equal((await server.metrics(target.queue_id)).backlog_count, 3);
    const started = await client.queues.purge.start(target.queue_id, { ...account, delete_messages_permanently: true });
    assert.equal(started.queue_id, target.queue_id, JSON.stringify(started));
    const status = await client.queues.purge.status(target.queue_id, account);
    assert.ok(!Number.isNaN(Date.parse(status.started_at)), JSON.stringify(status));
    assert.ok(['true', 'false', true, false].includes(status.completed), JSON.stringify(status));
    assert.deepEqual(await server.metrics(target.queue_id), { backlog_count: 0, backlog_bytes: 0, oldest_message_timestamp_ms: 0 });
  });
});

describe('event subscriptions', () => {
  let queue;

  before(async () => {
    queue = await newQueue('ts-subs');
  });

  const destination = () => ({ type: 'queues.queue', queue_id: queue.queue_id });

  test('create, get, update, delete', async () => {
    const created = await client.queues.subscriptions.create({
      ...account,
      name: 'sub1',
      enabled: true,
      source: { type: 'r2' },
      destination: destination(),
      events: ['object-create'],
    });
    assert.match(created.id, HEX32);
    assert.equal(created.name, 'sub1');
    assert.equal(created.enabled, true);
    assert.deepEqual(created.source, { type: 'r2' });
    assert.deepEqual(created.destination, destination());
    assert.deepEqual(created.events, ['object-create']);
    assert.ok(!Number.isNaN(Date.parse(created.created_at)));
    assert.ok(!Number.isNaN(Date.parse(created.modified_at)));

    const got = await client.queues.subscriptions.get(created.id, account);
    assert.equal(got.id, created.id);

    const updated = await client.queues.subscriptions.update(created.id, { ...account, enabled: false, name: 'sub2' });
    assert.equal(updated.name, 'sub2');
    assert.equal(updated.enabled, false);
    assert.deepEqual(updated.events, ['object-create'], 'PATCH keeps fields it does not name');
    assert.deepEqual(updated.source, { type: 'r2' });

    const deleted = await client.queues.subscriptions.delete(created.id, account);
    assert.equal(deleted.id, created.id);
    await rejectsWith(client.queues.subscriptions.get(created.id, account), 404);
  });

  test('a second subscription on the same source and queue is 405', async () => {
    const body = { ...account, name: 'once', enabled: true, source: { type: 'vectorize' }, destination: destination(), events: ['e'] };
    const first = await client.queues.subscriptions.create(body);
    await rejectsWith(client.queues.subscriptions.create({ ...body, name: 'twice' }), 405);
    await client.queues.subscriptions.delete(first.id, account);
  });

  test('create for a queue that does not exist is 404', async () => {
    await rejectsWith(
      client.queues.subscriptions.create({
        ...account,
        name: 'orphan',
        enabled: true,
        source: { type: 'kv' },
        destination: { type: 'queues.queue', queue_id: '0'.repeat(32) },
        events: ['namespace.created'],
      }),
      404,
    );
  });

  test('auto-pagination visits every subscription once and terminates', async () => {
    const sources = ['kv', 'r2', 'superSlurper', 'vectorize', 'images'];
    const names = new Set();
    for (let i = 0; i < 23; i += 1) {
      const name = `page-${String(i).padStart(2, '0')}`;
      names.add(name);
      const source = i < sources.length ? { type: sources[i] } : { type: 'workersAi.model', model_name: `model-${i}` };
      await client.queues.subscriptions.create({ ...account, name, enabled: true, source, destination: destination(), events: ['e'] });
    }
    const seen = [];
    const requestsBefore = traffic.length;
    for await (const subscription of client.queues.subscriptions.list({ ...account, per_page: 10 })) seen.push(subscription.name);
    const pageRequests = traffic.slice(requestsBefore).filter((e) => e.url.includes('/event_subscriptions/subscriptions'));
    assert.ok(pageRequests.length <= 4, `${pageRequests.length} page requests for 23 items at 10 a page`);
    const ours = seen.filter((name) => names.has(name));
    assert.equal(ours.length, names.size, `seen ${seen}`);
    assert.equal(new Set(seen).size, seen.length, 'no duplicates across pages');

    const firstPage = await client.queues.subscriptions.list({ ...account, per_page: 10, page: 1 });
    assert.equal(firstPage.result.length, 10);
    assert.equal(firstPage.result_info.per_page, 10);
    assert.equal(firstPage.result_info.total_count, seen.length);
  });
});

describe('README', () => {
  test('the TypeScript snippet runs as written', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const match = readme.match(/\*\*TypeScript SDK\*\* \(npm `cloudflare`\):\n+```js\n([\s\S]*?)```/);
    assert.ok(match, 'README has no TypeScript SDK snippet');
    const [importLine, ...rest] = match[1].trimEnd().split('\n');
    assert.equal(importLine, "import Cloudflare from 'cloudflare';");
    const name = uniqueName('ts-readme');
    const code = rest.join('\n').replace("'http://127.0.0.1:8787/client/v4'", JSON.stringify(server.apiBase)).replace("'orders'", JSON.stringify(name));
    assert.ok(code.includes(server.apiBase) && code.includes(name), code);
    const AsyncFunction = (async () => {}).constructor;
    await new AsyncFunction('Cloudflare', 'TOKEN', 'ACCOUNT', code)(Cloudflare, server.token, server.accountId);
    const queue = await server.queueByName(name);
    assert.ok(queue, 'the snippet created its queue');
    assert.equal((await server.metrics(queue.queue_id)).backlog_count, 1);
    await server.ok('DELETE', `/queues/${queue.queue_id}`);
  });
});
