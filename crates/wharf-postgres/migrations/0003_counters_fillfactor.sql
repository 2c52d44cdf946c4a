-- Counter rows are updated by nearly every push and ack. With the default
-- fillfactor a page fills with old versions, the next update cannot stay on
-- the page (no HOT update), and every such update leaves one more entry in
-- the primary key's index; reading a queue's counters then visits every old
-- version until vacuum comes. Leaving 90 % of each page free keeps updates
-- on their page, where each update prunes the versions nobody needs.
ALTER TABLE queue_counters SET (fillfactor = 10);
