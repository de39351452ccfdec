-- 0005_flag_usage.sql -- when each flag was last evaluated in each
-- environment (docs/operations.md "Last evaluated").
--
-- Kept apart from flag_states: every instance writes here every few
-- seconds, and a row of flag_states (with its lists of users) should not be
-- rewritten, nor locked, for that.  For the same reason there is no foreign
-- key: checking one would take a lock on the state row that a flag write
-- holds, and a batch and a flag delete could wait on each other.  The
-- server deletes a flag's or an environment's rows when it deletes them,
-- and reads only rows whose state exists.  Writes keep the later of the
-- stored and the new time, so a batch written twice or out of order
-- changes nothing.
CREATE TABLE flag_usage (
    flag text NOT NULL,
    environment text NOT NULL,
    last_evaluated_at timestamptz NOT NULL,
    PRIMARY KEY (flag, environment)
);
