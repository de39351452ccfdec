-- 0006_webhooks.sql -- change webhooks with a durable outbox
-- (docs/api.md "Webhooks", docs/decisions.md "Webhooks").
--
-- Every change writes an event into webhook_outbox in the transaction that
-- makes it: the flag and segment histories through the triggers below, the
-- environments and plan halts from the server's own statements.  A second
-- trigger fans each event out into one delivery per webhook that wants it,
-- still in that transaction.  So an event exists if and only if its change
-- was committed, whatever happens to the instance afterwards, and a webhook
-- registered later never receives what came before it.
--
-- Event ids follow the commit order: whatever writes an event first locks
-- vexil_state's row (every change takes that lock anyway, to bump the
-- sequence), so two changes cannot interleave their events and commit in
-- the other order; the sender, which sees only committed events, never
-- delivers an id before a smaller one that is still to commit.
--
-- One instance at a time delivers (it holds a session advisory lock; see
-- webhooks.c), oldest first per webhook, and records every attempt.
CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    url text NOT NULL CHECK (url ~ '^https?://'),
    secret text NOT NULL CHECK (octet_length(secret) >= 16),
    events text[] NOT NULL DEFAULT '{}', -- empty: every event
    format text NOT NULL CHECK (format IN ('json', 'slack')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_outbox (
    id bigserial PRIMARY KEY,
    event text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('flag', 'segment', 'environment')),
    subject text NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    environments text[] NOT NULL DEFAULT '{}',
    before jsonb NULL,
    after jsonb NULL
);

CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    outbox bigint NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz NULL,
    UNIQUE (webhook, outbox)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook, outbox) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id bigserial PRIMARY KEY,
    delivery uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    status_code integer NULL, -- the receiver's HTTP status; NULL when none came
    error text NULL,          -- why it failed, when it did
    duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery, id);

-- Fan an event out to every webhook that wants it.
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook, outbox)
    SELECT w.id, NEW.id FROM webhooks w
    WHERE cardinality(w.events) = 0 OR NEW.event = ANY (w.events);
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_outbox_fan_out AFTER INSERT ON webhook_outbox
    FOR EACH ROW EXECUTE FUNCTION webhook_fan_out();

-- The flag and segment histories are the changes: each event recorded
-- there is also an outbox event.
CREATE FUNCTION webhook_flag_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM vexil_state FOR UPDATE; -- ids in commit order (above)
    INSERT INTO webhook_outbox (event, kind, subject, at, actor, environments, before, after)
    VALUES (CASE NEW.action
                WHEN 'create' THEN 'flag.created'
                WHEN 'delete' THEN 'flag.deleted'
                WHEN 'revert' THEN 'flag.reverted'
                WHEN 'plan' THEN 'flag.plan_step'
                ELSE 'flag.updated' END,
            'flag', NEW.flag_name, NEW.at, NEW.actor, NEW.environments, NEW.before, NEW.after);
    RETURN NULL;
END
$$;
CREATE TRIGGER flag_events_webhook AFTER INSERT ON flag_events
    FOR EACH ROW EXECUTE FUNCTION webhook_flag_event();

CREATE FUNCTION webhook_segment_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM vexil_state FOR UPDATE; -- ids in commit order (above)
    INSERT INTO webhook_outbox (event, kind, subject, at, actor, before, after)
    VALUES ('segment.' || NEW.action || 'd', 'segment', NEW.segment_name, NEW.at, NEW.actor,
            NEW.before, NEW.after);
    RETURN NULL;
END
$$;
CREATE TRIGGER segment_events_webhook AFTER INSERT ON segment_events
    FOR EACH ROW EXECUTE FUNCTION webhook_segment_event();
