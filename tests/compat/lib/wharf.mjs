// Starts the real `wharf` binary on an ephemeral port for one test file, and
// talks to it with plain HTTP so tests can check the state a client left behind
// without trusting that client.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const STARTUP_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const LISTENING = /^wharf listening on (http:\/\/\S+)$/;

/** The binary under test: $WHARF_BIN, else target/release/wharf. */
export function wharfBinary() {
  return process.env.WHARF_BIN ?? path.join(repoRoot, 'target', 'release', 'wharf');
}

/** A unique queue name (lowercase, digits and dashes) for one test. */
export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/**
 * Spawns `wharf serve --listen 127.0.0.1:0 --data-dir <tmp>` with a fixed
 * account and admin token and waits for its `wharf listening on …` line.
 */
export async function startWharf() {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-compat-'));
  const accountId = randomBytes(16).toString('hex');
  const token = randomBytes(20).toString('hex');
  const child = spawn(wharfBinary(), ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, WHARF_ACCOUNT_ID: accountId, WHARF_API_TOKEN: token, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (process.env.WHARF_COMPAT_TRACE) process.stderr.write(chunk);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wharf did not print its listening line within ${STARTUP_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, STARTUP_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const match = LISTENING.exec(line.trim());
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${wharfBinary()}: ${error.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`wharf exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr}`));
    });
  });

  const apiBase = `${base}/client/v4`;
  const server = {
    base,
    apiBase,
    accountId,
    token,
    dataDir,
    stderr: () => stderr,

    /** A request to `/accounts/{id}{subpath}` with the admin token; returns {status, body}. */
    async api(method, subpath, body) {
      return request(`${apiBase}/accounts/${accountId}${subpath}`, method, token, body);
    },

    /** `result` of a request that must succeed. */
    async ok(method, subpath, body) {
      const reply = await server.api(method, subpath, body);
      if (reply.status !== 200 || reply.body?.success !== true) {
        throw new Error(`${method} ${subpath} failed: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
      return reply.body.result;
    },

    /** The queue with this name, or undefined (found through the list, not a client). */
    async queueByName(name) {
      const result = await server.ok('GET', `/queues?name=${encodeURIComponent(name)}`);
      return result.find((queue) => queue.queue_name === name);
    },

    async metrics(queueId) {
      return server.ok('GET', `/queues/${queueId}/metrics`);
    },

    /** SIGTERM, wait for exit, remove the data dir; returns the exit status. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS);
      const status = await exited;
      clearTimeout(timer);
      await rm(dataDir, { recursive: true, force: true });
      return status;
    },
  };
  return server;
}

async function request(url, method, token, body) {
  const init = { method, headers: { authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed };
}

/**
 * A fetch that records every exchange, so a failing assertion can show the
 * HTTP traffic that led to it (printed when WHARF_COMPAT_TRACE is set).
 */
export function tracingFetch(log) {
  return async (url, init = {}) => {
    const response = await fetch(url, init);
    const clone = response.clone();
    const text = await clone.text();
    const entry = { method: init.method ?? 'GET', url: String(url), request: init.body ?? null, status: response.status, response: text };
    log.push(entry);
    if (process.env.WHARF_COMPAT_TRACE) console.error(JSON.stringify(entry));
    return response;
  };
}
