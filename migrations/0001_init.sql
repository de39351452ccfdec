-- 0001_init.sql -- vexil's first schema.
--
-- Applied once by `vexil migrate` (or `vexil serve`) inside one transaction;
-- migrate.c records it in schema_migrations.  Files in this folder must not
-- contain BEGIN/COMMIT of their own.
--
-- Timestamps are timestamptz (microsecond resolution); the server reads and
-- writes them as integer microseconds since the Unix epoch.

-- The global version of the flag set (docs/propagation.md).  Exactly one row: every
-- write that changes flags increments it in the same transaction and sends
-- NOTIFY vexil, '<version>'.  The row lock also orders concurrent writers.
CREATE TABLE vexil_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL DEFAULT 0 CHECK (version >= 0)
);
INSERT INTO vexil_state (singleton, version) VALUES (true, 0);

-- The flags (docs/api.md, section 1).  Field rules are enforced by the server; the
-- checks here are a last line of defence.  users is kept sorted and distinct.
CREATE TABLE flags (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    description text NOT NULL DEFAULT '',
    owner text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT false,
    percentage integer NOT NULL DEFAULT 0 CHECK (percentage BETWEEN 0 AND 100),
    users text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    rolled_out_at timestamptz NULL,
    revision bigint NOT NULL CHECK (revision >= 1)
);

-- History of every change, kept by name (also after the flag is deleted).
-- before/after are whole flag objects as the API shows them; null where the
-- flag did not exist (before a create, after a delete).
CREATE TABLE flag_events (
    id bigserial PRIMARY KEY,
    flag_name text NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL CHECK (action IN ('create', 'update', 'delete', 'revert')),
    before jsonb NULL,
    after jsonb NULL,
    CHECK (before IS NOT NULL OR after IS NOT NULL)
);
CREATE INDEX flag_events_flag_name_id ON flag_events (flag_name, id DESC);

-- API tokens.  Only the SHA-256 of a secret is stored; a revoked token is
-- kept (revoked_at set) so that its id stays known.
CREATE TABLE tokens (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (name <> ''),
    role text NOT NULL CHECK (role IN ('admin', 'client')),
    secret_hash bytea NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NULL,
    revoked_at timestamptz NULL
);
