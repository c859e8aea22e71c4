-- Uploads: one row per multipart upload, owned by a seller.
CREATE TABLE uploads (
    id                    uuid PRIMARY KEY,
    owner_id              text        NOT NULL,
    owner_group           text        NOT NULL CHECK (owner_group IN ('standard', 'premium')),
    file_name             text        NOT NULL,
    declared_size         bigint      NOT NULL CHECK (declared_size > 0),
    declared_content_type text        NOT NULL,
    temp_key              text        NOT NULL UNIQUE,
    store_upload_id       text        NOT NULL,
    part_size             bigint      NOT NULL CHECK (part_size > 0),
    part_count            integer     NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
    state                 text        NOT NULL CHECK (state IN (
        'created', 'uploading', 'uploaded', 'scanning', 'processing', 'ready', 'submitted',
        'stored', 'quarantined', 'rejected', 'failed', 'aborted', 'expired')),
    failure_code          text,
    failure_message       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    completed_at          timestamptz
);

CREATE INDEX uploads_owner_created_idx ON uploads (owner_id, created_at DESC);
-- The sweeper looks for uploads stuck in a state past a deadline.
CREATE INDEX uploads_state_updated_idx ON uploads (state, updated_at);

-- The parts as signed: what the client promised to send for each part number.
CREATE TABLE upload_parts (
    upload_id   uuid        NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    part_number integer     NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    content_md5 bytea       NOT NULL CHECK (length(content_md5) = 16),
    size_bytes  bigint      NOT NULL CHECK (size_bytes > 0),
    signed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, part_number)
);

-- Progress of each stage of an upload, written by server and workers.
CREATE TABLE upload_progress (
    upload_id   uuid        NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    stage       text        NOT NULL CHECK (stage IN ('upload', 'scan', 'hash', 'metadata', 'preview')),
    status      text        NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
    bytes_done  bigint      NOT NULL DEFAULT 0,
    bytes_total bigint      NOT NULL DEFAULT 0,
    detail      text        NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, stage)
);

-- What the workers read from the stored file itself.
CREATE TABLE upload_metadata (
    upload_id            uuid        PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    size_bytes           bigint      NOT NULL,
    md5_hex              text        NOT NULL CHECK (md5_hex ~ '^[0-9a-f]{32}$'),
    sha256_hex           text        NOT NULL CHECK (sha256_hex ~ '^[0-9a-f]{64}$'),
    sniffed_content_type text        NOT NULL,
    computed_at          timestamptz NOT NULL DEFAULT now()
);

-- Any change a watcher should see is announced on one channel, with the upload id as
-- payload; NOTIFY is delivered at commit, so watchers never read uncommitted state.
CREATE FUNCTION notify_upload_event() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'uploads' THEN
        PERFORM pg_notify('upload_events', NEW.id::text);
    ELSE
        PERFORM pg_notify('upload_events', NEW.upload_id::text);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER uploads_notify AFTER UPDATE ON uploads
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION notify_upload_event();

CREATE TRIGGER upload_progress_notify AFTER INSERT OR UPDATE ON upload_progress
    FOR EACH ROW EXECUTE FUNCTION notify_upload_event();
