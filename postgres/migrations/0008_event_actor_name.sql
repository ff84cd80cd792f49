-- The name of the actor that caused an event (an API key's name beside
-- its "key:<id>"). The chain hash covers it only when it is set, so
-- every record written before keeps its hash.
ALTER TABLE events ADD COLUMN actor_name text NOT NULL DEFAULT '';
