-- The history of every upload and submission: one row per state change, written in
-- the transaction that makes the change, and one per operator action (retry,
-- requeue, redelivery, quarantine decision), even when the state stays.
-- Append-only: rows are never updated or deleted (a trigger refuses it).
-- Ops read it with SQL, e.g.
--   SELECT at, from_state, to_state, cause, attempt, actor, detail
--   FROM upload_events WHERE upload_id = '...' ORDER BY id;

CREATE TABLE upload_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upload_id   uuid        NOT NULL REFERENCES uploads (id),
    -- NULL for the row that records the upload's creation.
    from_state  text,
    to_state    text        NOT NULL,
    -- Why: the event (part_signed, scanned, failed, ...) or the operator's action.
    cause       text        NOT NULL,
    -- The job's attempt (1 for the first) when a job made the change.
    attempt     integer     CHECK (attempt IS NULL OR attempt > 0),
    -- Who: seller:s-1, service:orders for s-1, job:scan, sweeper, operator:ana.
    actor       text        NOT NULL,
    -- The failure's code and message, or what an operator's action did.
    detail      text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX upload_events_by_upload ON upload_events (upload_id, id);
CREATE INDEX upload_events_by_time ON upload_events (at);

CREATE TABLE submission_events (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id uuid        NOT NULL REFERENCES item_submissions (id),
    from_state    text,
    to_state      text        NOT NULL,
    cause         text        NOT NULL,
    attempt       integer     CHECK (attempt IS NULL OR attempt > 0),
    actor         text        NOT NULL,
    detail        text,
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX submission_events_by_submission ON submission_events (submission_id, id);
CREATE INDEX submission_events_by_time ON submission_events (at);

CREATE FUNCTION history_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: its rows are never changed or removed', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER upload_events_append_only BEFORE UPDATE OR DELETE ON upload_events
    FOR EACH ROW EXECUTE FUNCTION history_is_append_only();
CREATE TRIGGER submission_events_append_only BEFORE UPDATE OR DELETE ON submission_events
    FOR EACH ROW EXECUTE FUNCTION history_is_append_only();
