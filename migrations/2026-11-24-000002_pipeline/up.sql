-- The processing pipeline's results: the scan verdict, media facts, previews, and the
-- notifications sent to sellers.

-- One scan per upload: what clamd said about the stored file.
CREATE TABLE upload_scans (
    upload_id      uuid        PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    verdict        text        NOT NULL CHECK (verdict IN ('clean', 'infected')),
    -- The signature clamd named; set exactly when the file is infected.
    signature      text,
    bytes_scanned  bigint      NOT NULL,
    -- Where the infected file was moved (quarantine bucket).
    quarantine_key text,
    scanned_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((verdict = 'infected') = (signature IS NOT NULL)),
    CHECK ((verdict = 'infected') = (quarantine_key IS NOT NULL))
);

-- Media facts from ffprobe, for audio, video and image files.
CREATE TABLE upload_media (
    upload_id    uuid             PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    container    text             NOT NULL,
    duration_ms  bigint,
    bit_rate     bigint,
    width        integer,
    height       integer,
    video_codec  text,
    audio_codec  text,
    frame_rate   double precision,
    probed_at    timestamptz      NOT NULL DEFAULT now()
);

-- Previews made from the file: thumbnails and a short clip, each its own object.
CREATE TABLE upload_previews (
    upload_id    uuid        NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('thumbnail', 'clip')),
    content_type text        NOT NULL,
    object_key   text        NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    size_bytes   bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, name)
);

-- What a seller was told, and whether the webhook (when configured) delivered it.
-- One notification of a kind per upload: a job that runs twice tells the seller once.
CREATE TABLE notifications (
    id                uuid        PRIMARY KEY,
    seller_id         text        NOT NULL,
    upload_id         uuid        REFERENCES uploads (id) ON DELETE CASCADE,
    kind              text        NOT NULL,
    message           text        NOT NULL,
    details           jsonb       NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    delivery_attempts integer     NOT NULL DEFAULT 0,
    last_error        text,
    UNIQUE (upload_id, kind)
);

CREATE INDEX notifications_seller_created_idx ON notifications (seller_id, created_at DESC);
