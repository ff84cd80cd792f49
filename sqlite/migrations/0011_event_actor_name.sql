-- The name of the actor that caused an event (an API key's name beside
-- its "key:<id>"). Records written before it keep '' and their chain
-- hashes: the hash covers the name only when it is set.
ALTER TABLE events ADD COLUMN actor_name TEXT NOT NULL DEFAULT '';
