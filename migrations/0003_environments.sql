-- 0003_environments.sql -- environments, segments and the frontend token role
-- (docs/api.md, docs/decisions.md "Environments").
--
-- A flag keeps its definition (name, description, owner, times, revision) in
-- flags and has one state per environment in flag_states.  Every flag has a
-- state in every environment: a new flag gets one everywhere, a new
-- environment gets one for every flag (disabled).  Each environment has its
-- own version, which is what clients see (ETag, "version"); vexil_state's
-- version goes on as the sequence number of all changes, which the change
-- log and the listeners use (docs/propagation.md).
--
-- A v1 database keeps every answer: its flags' state becomes the state in
-- `production`, the default environment, whose version starts at the v1
-- version; its client tokens belong to production; its history gains the
-- environment objects it would have had.

CREATE TABLE environments (
    id bigserial UNIQUE,
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    description text NOT NULL DEFAULT '',
    is_default boolean NOT NULL DEFAULT false,
    version bigint NOT NULL DEFAULT 1 CHECK (version >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- At most one default; the server keeps exactly one.
CREATE UNIQUE INDEX environments_one_default ON environments (is_default) WHERE is_default;
INSERT INTO environments (name, is_default, version)
SELECT 'production', true, version FROM vexil_state;

-- Named user lists used by flags in any environment.  users is kept sorted
-- and distinct.
CREATE TABLE segments (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    description text NOT NULL DEFAULT '',
    users text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    revision bigint NOT NULL CHECK (revision >= 1)
);

CREATE TABLE segment_events (
    id bigserial PRIMARY KEY,
    segment_name text NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    before jsonb NULL,
    after jsonb NULL,
    CHECK (before IS NOT NULL OR after IS NOT NULL)
);
CREATE INDEX segment_events_name_id ON segment_events (segment_name, id DESC);

-- A flag's state in one environment.  segments names segments (checked by
-- the server, which locks them while it writes; a segment in use cannot be
-- deleted).
CREATE TABLE flag_states (
    flag text NOT NULL REFERENCES flags (name) ON DELETE CASCADE,
    environment text NOT NULL REFERENCES environments (name) ON DELETE CASCADE,
    enabled boolean NOT NULL DEFAULT false,
    percentage integer NOT NULL DEFAULT 0 CHECK (percentage BETWEEN 0 AND 100),
    users text[] NOT NULL DEFAULT '{}',
    segments text[] NOT NULL DEFAULT '{}',
    rolled_out_at timestamptz NULL,
    PRIMARY KEY (flag, environment)
);
CREATE INDEX flag_states_environment ON flag_states (environment);
CREATE INDEX flag_states_segments ON flag_states USING gin (segments);

INSERT INTO flag_states (flag, environment, enabled, percentage, users, rolled_out_at)
SELECT name, 'production', enabled, percentage, users, rolled_out_at FROM flags;
ALTER TABLE flags
    DROP COLUMN enabled,
    DROP COLUMN percentage,
    DROP COLUMN users,
    DROP COLUMN rolled_out_at;

-- The change log names what each change touched: a flag, a segment, or an
-- environment (the last makes listeners load in full).
ALTER TABLE flag_changes
    ADD COLUMN kind text NOT NULL DEFAULT 'flag' CHECK (kind IN ('flag', 'segment', 'environment'));

-- History: the environments whose state an event changed, and the action of
-- release plans (a later release).
ALTER TABLE flag_events ADD COLUMN environments text[] NOT NULL DEFAULT '{}';
ALTER TABLE flag_events DROP CONSTRAINT flag_events_action_check;
ALTER TABLE flag_events
    ADD CONSTRAINT flag_events_action_check
    CHECK (action IN ('create', 'update', 'delete', 'revert', 'plan'));

-- v1 events: the flag objects gain segments and the environments map, and
-- the event names production when the state changed there.
CREATE FUNCTION pg_temp.v2_flag(o jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN o IS NULL THEN NULL ELSE
        o || jsonb_build_object(
            'segments', '[]'::jsonb,
            'environments', jsonb_build_object('production', jsonb_build_object(
                'enabled', o -> 'enabled',
                'percentage', o -> 'percentage',
                'users', o -> 'users',
                'segments', '[]'::jsonb,
                'rolled_out_at', o -> 'rolled_out_at')))
    END
$$;
UPDATE flag_events
SET environments = CASE
        WHEN before IS NULL OR after IS NULL
          OR (before -> 'enabled', before -> 'percentage', before -> 'users', before -> 'rolled_out_at')
             IS DISTINCT FROM
             (after -> 'enabled', after -> 'percentage', after -> 'users', after -> 'rolled_out_at')
        THEN '{production}'::text[] ELSE '{}'::text[] END,
    before = pg_temp.v2_flag(before),
    after = pg_temp.v2_flag(after);

-- Tokens: the frontend role, and the environment of client and frontend
-- tokens (admin tokens have none).  Kept as text, not a foreign key:
-- deleting an environment revokes its tokens and keeps them known.
ALTER TABLE tokens ADD COLUMN environment text NULL;
UPDATE tokens SET environment = 'production' WHERE role = 'client';
ALTER TABLE tokens DROP CONSTRAINT tokens_role_check;
ALTER TABLE tokens
    ADD CONSTRAINT tokens_role_check CHECK (role IN ('admin', 'client', 'frontend')),
    ADD CONSTRAINT tokens_environment_check CHECK ((role = 'admin') = (environment IS NULL));
