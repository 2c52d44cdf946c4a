// The Wharf dashboard: a client of the same v4 API as every other client,
// run in the browser with the token the user pasted. No framework and no
// build step: the server embeds this file as it is. Everything the server
// returns is put on the page as text (textContent), never as markup.
"use strict";

const REFRESH_MS = 3000;
const PEEK_BATCH = 10;
// Queues shown (and their metrics fetched) per page: each refresh costs one
// metrics call per shown queue, so an account of thousands stays cheap.
const PAGE_SIZE = 50;
const LIST_PAGE = 1000;
const SHOWN_BODY_CHARS = 500;

// `queues`: every queue of the account, each with its metrics when it is
// on the shown page or selected (else null).
// `formFor`: the queue whose settings the settings form was filled from; it
// is refilled only when another queue is shown, not under the user's typing.
// `consumerFormFor`: the same for the consumer form, per queue and consumer.
const signedOut = () => ({
  token: null,
  account: null,
  queues: [],
  selected: null,
  timer: null,
  page: 1,
  formFor: null,
  consumerFormFor: null,
});
const state = signedOut();
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, error) {
    const code = error && error.code ? error.code : status;
    super(`${code}: ${error && error.message ? error.message : `HTTP ${status}`}`);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const options = { method, headers: { Authorization: `Bearer ${state.token}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`/client/v4${path}`, options);
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // Not JSON (a proxy's error page): reported as the HTTP status below.
  }
  if (!envelope || envelope.success !== true) {
    throw new ApiError(response.status, envelope && envelope.errors && envelope.errors[0]);
  }
  return envelope;
}

const accountPath = (tail) => `/accounts/${state.account}${tail}`;

function say(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "ok";
}

function failed(error) {
  say(error instanceof ApiError ? `Error ${error.message}` : `Error: ${error.message}`, true);
}

/** Wraps an async event handler so that its failure is shown, not lost. */
const guarded = (handler) => (...args) => handler(...args).catch(failed);

// ---- formatting -------------------------------------------------------------

function bytes(count) {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

function age(timestampMs) {
  if (!timestampMs) return "–";
  const seconds = Math.max(0, Math.round((Date.now() - timestampMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A message body as text: pull and peek send JSON, bytes and v8 bodies in base64. */
function bodyText(message) {
  const type = message.metadata && message.metadata["CF-Content-Type"];
  if (type === "text" || typeof message.body !== "string") {
    return typeof message.body === "string" ? message.body : JSON.stringify(message.body);
  }
  try {
    const raw = Uint8Array.from(atob(message.body), (char) => char.charCodeAt(0));
    const decoded = new TextDecoder("utf-8", { fatal: true }).decode(raw);
    return type === "json" ? decoded : `(${type}) ${decoded}`;
  } catch {
    return `(${type}, base64) ${message.body}`;
  }
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function badge(text, className = "") {
  const span = document.createElement("span");
  span.className = `badge ${className}`.trim();
  span.textContent = text;
  return span;
}

// ---- what the queue list knows ------------------------------------------------

const consumerOf = (queue) => (queue.consumers || [])[0];

function consumerText(queue) {
  const consumer = consumerOf(queue);
  if (!consumer) return "none";
  return consumer.dead_letter_queue ? `${consumer.type}, dead letters to ${consumer.dead_letter_queue}` : consumer.type;
}

/** Names of the queues whose consumer dead-letters into the queue `name`. */
function deadLetterSources(name) {
  return state.queues
    .filter(({ queue }) => (queue.consumers || []).some((consumer) => consumer.dead_letter_queue === name))
    .map(({ queue }) => queue.queue_name);
}

const current = () => state.queues.find(({ queue }) => queue.queue_id === state.selected);

// ---- rendering -------------------------------------------------------------------

function renderQueues() {
  const rows = $("queue-rows");
  rows.replaceChildren();
  for (const { queue, metrics } of shownQueues()) {
    const row = document.createElement("tr");
    row.dataset.queue = queue.queue_name;
    if (queue.queue_id === state.selected) row.className = "selected";
    const nameCell = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = queue.queue_name;
    open.addEventListener("click", () => select(queue.queue_id));
    nameCell.appendChild(open);
    const sources = deadLetterSources(queue.queue_name);
    if (sources.length > 0) nameCell.append(" ", badge(`dead letters of ${sources.join(", ")}`));
    row.appendChild(nameCell);
    cell(row, metrics ? String(metrics.backlog_count) : "–", "number").dataset.testid = "backlog";
    cell(row, metrics ? bytes(metrics.backlog_bytes) : "–", "number");
    cell(row, metrics ? age(metrics.oldest_message_timestamp_ms) : "–");
    cell(row, consumerText(queue));
    const paused = Boolean(queue.settings && queue.settings.delivery_paused);
    const delivery = cell(row, "");
    delivery.dataset.testid = "delivery";
    delivery.appendChild(badge(paused ? "paused" : "active", paused ? "paused" : ""));
    rows.appendChild(row);
  }
  $("no-queues").hidden = state.queues.length > 0;
  const pages = pageCount();
  $("pager").hidden = pages <= 1;
  $("page-info").textContent = `page ${state.page} of ${pages} (${state.queues.length} queues)`;
  $("page-prev").disabled = state.page <= 1;
  $("page-next").disabled = state.page >= pages;
}

const pageCount = () => Math.max(1, Math.ceil(state.queues.length / PAGE_SIZE));
const shownQueues = () => state.queues.slice((state.page - 1) * PAGE_SIZE, state.page * PAGE_SIZE);

function renderDetail({ queue, metrics }) {
  $("detail").hidden = false;
  $("detail-name").textContent = queue.queue_name;
  const facts = $("detail-facts");
  facts.replaceChildren();
  const fact = (name, value) => {
    const term = document.createElement("dt");
    term.textContent = name;
    const description = document.createElement("dd");
    description.textContent = value;
    facts.append(term, description);
  };
  const settings = queue.settings || {};
  const consumer = consumerOf(queue);
  const paused = Boolean(settings.delivery_paused);
  fact("Queue id", queue.queue_id);
  fact("Created", queue.created_on || "–");
  fact("Backlog", metrics ? `${metrics.backlog_count} messages, ${bytes(metrics.backlog_bytes)}` : "–");
  fact("Oldest message", metrics ? age(metrics.oldest_message_timestamp_ms) : "–");
  fact("Delivery", paused ? "paused (pushes are kept, pulls are refused)" : "active");
  fact("Delivery delay", `${settings.delivery_delay ?? 0} s`);
  fact("Retention", `${settings.message_retention_period ?? "–"} s`);
  fact("Consumer", consumerText(queue));
  if (consumer && consumer.settings) {
    fact("Consumer settings", Object.entries(consumer.settings).map(([key, value]) => `${key} ${value}`).join(", "));
  }
  if (state.formFor !== queue.queue_id) {
    state.formFor = queue.queue_id;
    $("set-delay").value = String(settings.delivery_delay ?? 0);
    $("set-retention").value = String(settings.message_retention_period ?? "");
  }
  // A pull consumer is added or edited here; a worker consumer (run by
  // Cloudflare Workers, not by Wharf) is only shown and can be removed.
  const pull = !consumer || consumer.type === "http_pull";
  $("consumer-form").hidden = !pull;
  $("consumer-submit").textContent = consumer ? "Save consumer" : "Add pull consumer";
  const consumerKey = `${queue.queue_id}/${consumer ? consumer.consumer_id : "none"}`;
  if (pull && state.consumerFormFor !== consumerKey) {
    // Refilled only when another queue or consumer is shown, never under
    // the user's typing (the page refreshes every few seconds).
    state.consumerFormFor = consumerKey;
    fillConsumerForm(consumer);
  }
  document.querySelector('[data-action="remove-consumer"]').hidden = !consumer;
  document.querySelector('[data-action="pause"]').hidden = paused;
  document.querySelector('[data-action="resume"]').hidden = !paused;
  const sources = deadLetterSources(queue.queue_name);
  const redrive = document.querySelector('[data-action="redrive"]');
  redrive.disabled = sources.length !== 1;
  redrive.title =
    sources.length === 1
      ? `Move the ready messages back to ${sources[0]}`
      : "Redrive moves a dead letter queue's messages back to the one queue that dead-letters into it";
}

function renderPeeked(messages) {
  const rows = $("peeked-rows");
  rows.replaceChildren();
  for (const message of messages) {
    const row = document.createElement("tr");
    cell(row, message.id);
    cell(row, new Date(message.timestamp_ms).toLocaleString());
    cell(row, String(message.attempts), "number");
    const text = bodyText(message);
    cell(row, text.length > SHOWN_BODY_CHARS ? `${text.slice(0, SHOWN_BODY_CHARS)}…` : text, "body-cell");
    rows.appendChild(row);
  }
  $("peeked").hidden = false;
}

// ---- loading -------------------------------------------------------------------

async function refresh() {
  // Names and consumers of every queue (dead-letter links need them all),
  // one list call per thousand queues.
  const queues = [];
  for (let page = 1; ; page += 1) {
    const listed = await call("GET", accountPath(`/queues?page=${page}&per_page=${LIST_PAGE}`));
    queues.push(...(listed.result || []));
    const info = listed.result_info || {};
    if (!info.total_pages || page >= info.total_pages) break;
  }
  state.queues = queues.map((queue) => ({ queue, metrics: null }));
  state.page = Math.min(state.page, pageCount());
  // Metrics of the shown page and of the selected queue only. A queue
  // deleted between the list and its metrics shows "–" until the next refresh.
  const wanted = new Set([...shownQueues(), current()].filter(Boolean));
  await Promise.all(
    [...wanted].map((entry) =>
      call("GET", accountPath(`/queues/${entry.queue.queue_id}/metrics`)).then(
        (envelope) => {
          entry.metrics = envelope.result;
        },
        () => {},
      ),
    ),
  );
  renderQueues();
  const selected = current();
  if (selected) {
    renderDetail(selected);
  } else {
    state.selected = null;
    $("detail").hidden = true;
  }
  $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function turnPage(step) {
  state.page = Math.min(Math.max(1, state.page + step), pageCount());
  return refresh();
}

function select(queueId) {
  state.selected = queueId;
  $("peeked").hidden = true;
  renderQueues();
  const selected = current();
  if (selected) renderDetail(selected);
}

// ---- actions -------------------------------------------------------------------

async function act(action) {
  const selected = current();
  if (!selected) return;
  const { queue } = selected;
  const path = accountPath(`/queues/${queue.queue_id}`);
  if (action === "pause" || action === "resume") {
    await call("PATCH", path, { settings: { delivery_paused: action === "pause" } });
    say(`${action === "pause" ? "Paused" : "Resumed"} delivery of ${queue.queue_name}`);
  } else if (action === "peek") {
    const peeked = await call("POST", `${path}/messages/peek`, { batch_size: PEEK_BATCH });
    const messages = peeked.result.messages || [];
    renderPeeked(messages);
    say(`${messages.length} message(s) of ${queue.queue_name} shown; none was leased`);
    return;
  } else if (action === "redrive") {
    const moved = (await call("POST", `${path}/messages/redrive`, {})).result;
    const to = state.queues.find((entry) => entry.queue.queue_id === moved.destination_queue_id);
    say(`Moved ${moved.moved} message(s) from ${queue.queue_name} to ${to ? to.queue.queue_name : moved.destination_queue_id}`);
  } else if (action === "purge") {
    if (!window.confirm(`Delete every message of ${queue.queue_name}? This cannot be undone.`)) return;
    await call("POST", `${path}/purge`, { delete_messages_permanently: true });
    say(`Purged ${queue.queue_name}`);
  } else if (action === "remove-consumer") {
    const consumer = consumerOf(queue);
    if (!consumer || !window.confirm(`Remove the consumer of ${queue.queue_name}?`)) return;
    await call("DELETE", `${path}/consumers/${consumer.consumer_id}`);
    say(`Removed the consumer of ${queue.queue_name}`);
  } else if (action === "delete") {
    if (!window.confirm(`Delete the queue ${queue.queue_name} and every message in it?`)) return;
    await call("DELETE", path);
    state.selected = null;
    say(`Deleted the queue ${queue.queue_name}`);
  }
  await refresh();
}

async function send(event) {
  event.preventDefault();
  const selected = current();
  if (!selected) return;
  const contentType = $("send-type").value;
  let body = $("send-body").value;
  if (contentType === "json") {
    try {
      body = JSON.parse(body);
    } catch {
      say("Error: the message is not valid JSON; choose text to send it as it is", true);
      return;
    }
  }
  await call("POST", accountPath(`/queues/${selected.queue.queue_id}/messages`), { body, content_type: contentType });
  $("send-body").value = "";
  say(`Sent a message to ${selected.queue.queue_name}`);
  await refresh();
}

async function saveSettings(event) {
  event.preventDefault();
  const selected = current();
  if (!selected) return;
  const settings = {
    delivery_delay: Number($("set-delay").value),
    message_retention_period: Number($("set-retention").value),
  };
  await call("PATCH", accountPath(`/queues/${selected.queue.queue_id}`), { settings });
  state.formFor = null;
  say(`Saved the settings of ${selected.queue.queue_name}`);
  await refresh();
}

/** The pull consumer form shows `consumer`'s settings, or the defaults a new one gets. */
function fillConsumerForm(consumer) {
  const settings = (consumer && consumer.settings) || {};
  $("con-dlq").value = (consumer && consumer.dead_letter_queue) || "";
  $("con-batch").value = String(settings.batch_size ?? 5);
  $("con-retries").value = String(settings.max_retries ?? 3);
  $("con-retry-delay").value = String(settings.retry_delay ?? 0);
  $("con-visibility").value = String(settings.visibility_timeout_ms ?? 30000);
}

/** Adds a pull consumer, or replaces the settings of the one the queue has. */
async function saveConsumer(event) {
  event.preventDefault();
  const selected = current();
  if (!selected) return;
  const body = {
    type: "http_pull",
    settings: {
      batch_size: Number($("con-batch").value),
      max_retries: Number($("con-retries").value),
      retry_delay: Number($("con-retry-delay").value),
      visibility_timeout_ms: Number($("con-visibility").value),
    },
  };
  const deadLetterQueue = $("con-dlq").value.trim();
  if (deadLetterQueue) body.dead_letter_queue = deadLetterQueue;
  const consumer = consumerOf(selected.queue);
  const consumers = accountPath(`/queues/${selected.queue.queue_id}/consumers`);
  if (consumer) {
    await call("PUT", `${consumers}/${consumer.consumer_id}`, body);
    say(`Saved the consumer of ${selected.queue.queue_name}`);
  } else {
    await call("POST", consumers, body);
    say(`Added a pull consumer to ${selected.queue.queue_name}`);
  }
  state.consumerFormFor = null;
  await refresh();
}

async function create(event) {
  event.preventDefault();
  const name = $("new-queue").value.trim();
  const created = await call("POST", accountPath("/queues"), { queue_name: name });
  $("new-queue").value = "";
  say(`Created the queue ${name}`);
  state.selected = created.result.queue_id;
  await refresh();
}

// ---- signing in ------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    // The token's own account: the same call wrangler makes to find it.
    const accounts = await call("GET", "/accounts");
    const account = accounts.result && accounts.result[0];
    if (!account) throw new Error("the token names no account");
    state.account = account.id;
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem("wharf-token");
    throw error;
  }
  sessionStorage.setItem("wharf-token", token);
  $("who").textContent = `account ${state.account}`;
  $("signin").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  say("");
  await refresh();
  state.timer = setInterval(() => {
    if (!document.hidden) refresh().catch(failed);
  }, REFRESH_MS);
}

function signOut() {
  clearInterval(state.timer);
  sessionStorage.removeItem("wharf-token");
  Object.assign(state, signedOut());
  $("console").hidden = true;
  $("detail").hidden = true;
  $("signin").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("token").value = "";
  say("Signed out");
}

$("signin-form").addEventListener(
  "submit",
  guarded(async (event) => {
    event.preventDefault();
    await signIn($("token").value.trim());
  }),
);
$("sign-out").addEventListener("click", signOut);
$("create-form").addEventListener("submit", guarded(create));
$("settings-form").addEventListener("submit", guarded(saveSettings));
$("consumer-form").addEventListener("submit", guarded(saveConsumer));
$("page-prev").addEventListener("click", guarded(() => turnPage(-1)));
$("page-next").addEventListener("click", guarded(() => turnPage(1)));
$("send-form").addEventListener("submit", guarded(send));
for (const button of document.querySelectorAll("[data-action]")) {
  button.addEventListener(
    "click",
    guarded(() => act(button.dataset.action)),
  );
}
const remembered = sessionStorage.getItem("wharf-token");
if (remembered) signIn(remembered).catch(failed);
