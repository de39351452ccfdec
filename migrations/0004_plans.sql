-- 0004_plans.sql -- release plans and the alerts that stop them
-- (docs/api.md "Release plans", docs/decisions.md "Release plans").
--
-- A plan moves one flag's state in one environment through rising
-- percentages.  It is one row per flag and environment: a new plan replaces
-- one that has ended (done, aborted, halted); while one is running or
-- paused a new one is refused.  Deleting the flag or the environment
-- deletes its plan with its state.
--
-- The scheduler of every instance looks for due steps (status running,
-- next_at passed) with SELECT ... FOR UPDATE SKIP LOCKED and takes each in
-- the same transaction as the flag write it makes, so each step is taken
-- exactly once whichever instance gets there first, and a step that fell
-- due while every instance was down is taken at the next start.
CREATE TABLE plans (
    flag text NOT NULL,
    environment text NOT NULL,
    -- [{"percentage": 5, "hold_seconds": 3600}, ..., {"percentage": 100}]
    steps jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    on_alert text NOT NULL CHECK (on_alert IN ('disable', 'pause')),
    status text NOT NULL CHECK (status IN ('running', 'paused', 'halted', 'done', 'aborted')),
    step integer NOT NULL CHECK (step >= 0),
    started_at timestamptz NOT NULL,
    started_by text NOT NULL,
    next_at timestamptz NULL,
    reason text NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (flag, environment),
    FOREIGN KEY (flag, environment) REFERENCES flag_states (flag, environment) ON DELETE CASCADE,
    CHECK ((status = 'running') = (next_at IS NOT NULL))
);
CREATE INDEX plans_due ON plans (next_at) WHERE status = 'running';

-- History: an alert that turns a flag off is recorded as its own action.
ALTER TABLE flag_events DROP CONSTRAINT flag_events_action_check;
ALTER TABLE flag_events
    ADD CONSTRAINT flag_events_action_check
    CHECK (action IN ('create', 'update', 'delete', 'revert', 'plan', 'alert'));
