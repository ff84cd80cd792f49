-- Events that change no session (a rejected API key) carry the client
-- address of the request that caused them. The chain hash covers it only
-- when it is set, so every record written before keeps its hash.
ALTER TABLE events ADD COLUMN ip text NOT NULL DEFAULT '';
