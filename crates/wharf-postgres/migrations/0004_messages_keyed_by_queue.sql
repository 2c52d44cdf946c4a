-- Messages are keyed by (queue, id), and a message id begins with its
-- timestamp: the first 6 bytes are `timestamp_ms` (big-endian), the other 10
-- random. The key's index then also serves what `messages_age` did — the
-- queue's oldest message is its first key, retention deletes a key range —
-- so that index goes, and every push and every lease writes one index entry
-- fewer per message.
--
-- Stored messages are given ids of that shape here, keeping 10 of their
-- random bytes. Leases handed out before this migration name the old ids:
-- acking one answers that the message is gone, and the message is
-- delivered again once its lease has expired. Nothing is lost.
UPDATE messages SET id = substring(int8send(timestamp_ms) FROM 3 FOR 6) || substring(id FROM 7 FOR 10);
ALTER TABLE messages DROP CONSTRAINT messages_pkey;
ALTER TABLE messages ADD PRIMARY KEY (queue_id, id);
DROP INDEX messages_age;
