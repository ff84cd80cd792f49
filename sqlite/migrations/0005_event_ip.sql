-- The client address of the request that caused an event, where lapse
-- records one (security.key_rejected). Records written before it keep ''
-- and their chain hashes: the hash covers the address only when it is set.
ALTER TABLE events ADD COLUMN ip TEXT NOT NULL DEFAULT '';
