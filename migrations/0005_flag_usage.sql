-- 0005_flag_usage.sql -- when each flag was last evaluated in each
-- environment (docs/operations.md "Last evaluated").
--
-- Kept apart from flag_states: every instance writes here every few
-- seconds, and a row of flag_states (with its lists of users) should not be
-- rewritten, nor its lock taken, for that.  A flag's or an environment's
-- deletion deletes its rows.  Writes keep the later of the stored and the
-- new time, so a batch written twice or out of order changes nothing.
CREATE TABLE flag_usage (
    flag text NOT NULL,
    environment text NOT NULL,
    last_evaluated_at timestamptz NOT NULL,
    PRIMARY KEY (flag, environment),
    FOREIGN KEY (flag, environment) REFERENCES flag_states (flag, environment) ON DELETE CASCADE
);
