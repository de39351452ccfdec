-- 0002_flag_changes.sql -- the change log that lets an instance apply a
-- change by reading only what changed (docs/propagation.md, "Incremental
-- updates").
--
-- One row per version: every flag write inserts (new version, flag name) in
-- the statement that increments vexil_state.version, so versions and rows
-- match one for one.  A listener that serves version V reads the names
-- logged after V and loads only those flags; a name logged but absent from
-- flags was deleted.  If the log does not hold exactly one row for each
-- version after V (a version moved by hand, or V older than the rows kept),
-- the listener loads everything instead.  Writers keep the last 10 000
-- versions (store_version.c).
CREATE TABLE flag_changes (
    version bigint PRIMARY KEY CHECK (version >= 1),
    name text NOT NULL
);
