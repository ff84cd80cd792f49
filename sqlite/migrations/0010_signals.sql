-- Signs of suspicious activity (docs/signals.md): the settings of the
-- session's tier that judge it, kept with it like its timeouts, so that a
-- later change of the configuration does not loosen a session already
-- issued. '' and 0 are the defaults (allow, /24, /48, record, off).
ALTER TABLE sessions ADD COLUMN client_drift      TEXT    NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN drift_prefix_v4   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN drift_prefix_v6   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN on_token_reuse    TEXT    NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN new_device_window INTEGER NOT NULL DEFAULT 0;
