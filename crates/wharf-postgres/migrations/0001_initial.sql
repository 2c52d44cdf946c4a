-- Wharf on PostgreSQL: the initial schema.
--
-- Identifiers are the 16 bytes of Wharf's 128-bit ids. Times are
-- milliseconds since the Unix epoch, always supplied by the Wharf node's
-- clock (never now() in SQL), so that every node and every test agrees.

-- Values every node must share, such as the lease-token key.
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE accounts (
    id            bytea PRIMARY KEY,
    email         text NOT NULL,
    created_on_ms bigint NOT NULL
);

-- Only the SHA-256 of a token secret is stored.
CREATE TABLE tokens (
    id            bytea PRIMARY KEY,
    account_id    bytea NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          text NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('read', 'write')),
    secret_hash   bytea NOT NULL UNIQUE,
    created_on_ms bigint NOT NULL
);

CREATE TABLE queues (
    id                       bytea PRIMARY KEY,
    account_id               bytea NOT NULL,
    name                     text NOT NULL,
    created_on_ms            bigint NOT NULL,
    modified_on_ms           bigint NOT NULL,
    delivery_delay           integer NOT NULL,
    delivery_paused          boolean NOT NULL,
    message_retention_period integer NOT NULL,
    last_purge_ms            bigint,
    UNIQUE (account_id, name)
);

-- At most one consumer per queue (decision 1 of the architecture brief).
-- Consumer ids are only unique within their queue, as in the engine.
CREATE TABLE consumers (
    queue_id              bytea PRIMARY KEY REFERENCES queues (id) ON DELETE CASCADE,
    id                    bytea NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('worker', 'http_pull')),
    script_name           text,
    environment_name      text,
    dead_letter_queue     text,
    batch_size            integer NOT NULL,
    max_retries           integer NOT NULL,
    retry_delay           integer NOT NULL,
    max_wait_time_ms      integer NOT NULL,
    max_concurrency       integer,
    visibility_timeout_ms bigint NOT NULL,
    created_on_ms         bigint NOT NULL
);

-- Arrival order of messages across all queues; a requeued message keeps its
-- place, a dead-lettered one takes a new one in its new queue.
CREATE SEQUENCE message_seq;

-- A message is leased while lease_expiry_ms > 0; otherwise it is delayed
-- while `delayed` (set when visible_at_ms was in the future, cleared by
-- housekeeping once visible_at_ms has come), else ready. Keeping delayed
-- messages out of the ready index means a pull never walks past them.
CREATE TABLE messages (
    id              bytea PRIMARY KEY,
    queue_id        bytea NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    seq             bigint NOT NULL DEFAULT nextval('message_seq'),
    timestamp_ms    bigint NOT NULL,
    visible_at_ms   bigint NOT NULL,
    delayed         boolean NOT NULL,
    lease_expiry_ms bigint NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    content_type    smallint NOT NULL,
    body_len        integer NOT NULL,
    body            bytea NOT NULL
);

-- Pull, preview and peek: ready messages of a queue in arrival order.
CREATE INDEX messages_ready ON messages (queue_id, seq) WHERE lease_expiry_ms = 0 AND NOT delayed;
-- Promotion of delayed messages whose time has come.
CREATE INDEX messages_delayed ON messages (queue_id, visible_at_ms) WHERE delayed;
-- Lease expiry: leased messages by the end of their lease.
CREATE INDEX messages_leased ON messages (queue_id, lease_expiry_ms) WHERE lease_expiry_ms > 0;
-- Retention and metrics (count, bytes, oldest) without reading bodies.
CREATE INDEX messages_age ON messages (queue_id, timestamp_ms) INCLUDE (body_len);

-- Backlog count and bytes of each queue, kept in the transactions that add
-- and remove messages, so metrics cost the same with a deep backlog. Spread
-- over a few slots per queue so concurrent writers rarely wait for each other.
CREATE TABLE queue_counters (
    queue_id bytea NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    slot     smallint NOT NULL,
    count    bigint NOT NULL,
    bytes    bigint NOT NULL,
    PRIMARY KEY (queue_id, slot)
);

CREATE TABLE subscriptions (
    id                bytea PRIMARY KEY,
    account_id        bytea NOT NULL,
    name              text NOT NULL,
    enabled           boolean NOT NULL,
    source            jsonb NOT NULL,
    destination_queue bytea NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    events            text[] NOT NULL,
    created_at_ms     bigint NOT NULL,
    modified_at_ms    bigint NOT NULL
);
