-- Items: what a seller sells. Each SubmitItem call is a submission, saved by the
-- persist job; each file of an item keeps every version the mover stored.

-- An item: its text fields as last saved by the persist job.
CREATE TABLE items (
    id          uuid        PRIMARY KEY,
    owner_id    text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('digital_file', 'video')),
    title       text        NOT NULL DEFAULT '',
    description text        NOT NULL DEFAULT '',
    -- The submission whose fields these are; a later submission's fields win, even
    -- when an earlier one is persisted after it.
    fields_seq  bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX items_owner_created_idx ON items (owner_id, created_at DESC);

-- One SubmitItem call: the fields asked for and the uploads it brings, and how far
-- the background work on it has come (queued → persisted → stored, or failed).
CREATE TABLE item_submissions (
    id              uuid        PRIMARY KEY,
    seq             bigserial   NOT NULL UNIQUE,
    item_id         uuid        NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    owner_id        text        NOT NULL,
    -- Chosen by the client: the same key twice is the same submission.
    idempotency_key text        NOT NULL,
    -- SHA-256 of the request, to refuse a key reused for a different request.
    request_digest  text        NOT NULL,
    title           text        NOT NULL,
    description     text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('queued', 'persisted', 'stored', 'failed')),
    failure_code    text,
    failure_message text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, idempotency_key),
    CHECK ((state = 'failed') = (failure_code IS NOT NULL))
);

CREATE INDEX item_submissions_item_idx ON item_submissions (item_id, seq DESC);
CREATE INDEX item_submissions_state_idx ON item_submissions (state, updated_at);

-- A file of an item: the line its versions form.
CREATE TABLE item_files (
    id              uuid        PRIMARY KEY,
    item_id         uuid        NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    -- The version buyers get; the newest unless the seller chose an older one.
    current_version integer,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX item_files_item_idx ON item_files (item_id);

-- The uploads a submission brings, each becoming the next version of one file
-- (a file the persist job creates when the submission names a new one).
CREATE TABLE submission_files (
    submission_id uuid    NOT NULL REFERENCES item_submissions (id) ON DELETE CASCADE,
    upload_id     uuid    NOT NULL REFERENCES uploads (id),
    file_id       uuid    NOT NULL,
    position      integer NOT NULL,
    PRIMARY KEY (submission_id, upload_id)
);

-- The regular bucket's content: one object per MD5, with the SHA-256 that must match
-- before the object is shared by another version.
CREATE TABLE stored_objects (
    md5_hex    text        PRIMARY KEY CHECK (md5_hex ~ '^[0-9a-f]{32}$'),
    sha256_hex text        NOT NULL CHECK (sha256_hex ~ '^[0-9a-f]{64}$'),
    size_bytes bigint      NOT NULL,
    object_key text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every version of every file: never updated, never overwritten.
CREATE TABLE file_versions (
    file_id       uuid        NOT NULL REFERENCES item_files (id) ON DELETE CASCADE,
    version       integer     NOT NULL CHECK (version >= 1),
    -- One version per upload, however often the move job runs.
    upload_id     uuid        NOT NULL UNIQUE REFERENCES uploads (id),
    submission_id uuid        NOT NULL REFERENCES item_submissions (id),
    md5_hex       text        NOT NULL REFERENCES stored_objects (md5_hex),
    sha256_hex    text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    file_name     text        NOT NULL,
    content_type  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, version)
);

CREATE INDEX file_versions_md5_idx ON file_versions (md5_hex);

-- Users other than the owner who may list and download an item's files.
CREATE TABLE item_grants (
    item_id    uuid        NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    user_id    text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, user_id)
);

-- Item notifications (stored, failed) belong to a submission: one of a kind each.
ALTER TABLE notifications
    ADD COLUMN submission_id uuid REFERENCES item_submissions (id) ON DELETE CASCADE,
    ADD CONSTRAINT notifications_submission_kind_key UNIQUE (submission_id, kind);

-- Previews move to the regular bucket with their file.
ALTER TABLE upload_previews
    ADD COLUMN bucket text NOT NULL DEFAULT 'temp' CHECK (bucket IN ('temp', 'regular'));

-- Item changes are announced on the same channel as upload changes, with the item's
-- id as payload (ids are UUIDs: they never collide with an upload's).
CREATE FUNCTION notify_item_event() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('upload_events', NEW.item_id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER item_submissions_notify AFTER INSERT OR UPDATE ON item_submissions
    FOR EACH ROW EXECUTE FUNCTION notify_item_event();

CREATE TRIGGER item_files_notify AFTER INSERT OR UPDATE ON item_files
    FOR EACH ROW EXECUTE FUNCTION notify_item_event();
