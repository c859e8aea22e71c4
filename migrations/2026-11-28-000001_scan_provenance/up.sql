-- Honest scans: a third verdict (the scanner could not inspect the whole file), the
-- scanner and signature database every verdict was made with, stored objects that a
-- later scan found infected, and re-scans of the catalogue when signatures change.

ALTER TABLE upload_scans DROP CONSTRAINT upload_scans_verdict_check;
ALTER TABLE upload_scans DROP CONSTRAINT upload_scans_check;
ALTER TABLE upload_scans
    ADD CONSTRAINT upload_scans_verdict_check
        CHECK (verdict IN ('clean', 'infected', 'unscannable')),
    -- What the scanner did not look inside: the reason for an unscannable verdict,
    -- or (where encrypted archives are allowed) what a clean verdict left unread.
    ADD COLUMN uninspected text CHECK (uninspected IN (
        'encrypted_archive', 'encrypted_document', 'too_large', 'too_deep',
        'too_many_files', 'too_slow', 'unreadable_format', 'damaged')),
    -- clamd's engine (`ClamAV 1.4.6`) and signature database version (its VERSION
    -- answer) when the verdict was made; NULL for verdicts older than this column.
    ADD COLUMN engine_version text,
    ADD COLUMN signature_version bigint,
    ADD CONSTRAINT upload_scans_unscannable_check
        CHECK ((verdict = 'unscannable') <= (uninspected IS NOT NULL)),
    -- A name is recorded for every finding: malware, or the limit reached.
    ADD CONSTRAINT upload_scans_finding_check
        CHECK ((verdict = 'infected') <= (signature IS NOT NULL));

-- The latest verdict on each stored object, and its quarantine when a later scan
-- found it infected (its versions stop being downloadable at once; the object is
-- then moved from the regular bucket to quarantine).
ALTER TABLE stored_objects
    ADD COLUMN verdict text NOT NULL DEFAULT 'clean'
        CHECK (verdict IN ('clean', 'infected', 'unscannable')),
    ADD COLUMN signature text,
    ADD COLUMN engine_version text,
    ADD COLUMN signature_version bigint,
    ADD COLUMN scanned_at timestamptz,
    ADD COLUMN quarantine_key text,
    ADD COLUMN quarantined_at timestamptz,
    -- Set once the object is in the quarantine bucket and gone from regular.
    ADD COLUMN quarantine_moved_at timestamptz,
    ADD CONSTRAINT stored_objects_quarantine_check
        CHECK ((verdict = 'infected') = (quarantined_at IS NOT NULL)
           AND (quarantined_at IS NULL) = (quarantine_key IS NULL));
-- Existing objects carry their upload's verdict time and provenance (none yet).
UPDATE stored_objects SET scanned_at = created_at WHERE scanned_at IS NULL;
CREATE INDEX stored_objects_signature_version ON stored_objects (coalesce(signature_version, 0))
    WHERE quarantined_at IS NULL;

-- One re-scan per signature database version that was newer than a stored verdict:
-- its progress is read here (objects and bytes done of the total), and a crashed run
-- resumes where its objects' recorded versions say it stopped.
CREATE TABLE rescan_runs (
    signature_version bigint      PRIMARY KEY,
    engine_version    text        NOT NULL,
    state             text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished')),
    objects_total     integer     NOT NULL DEFAULT 0,
    objects_done      integer     NOT NULL DEFAULT 0,
    bytes_total       bigint      NOT NULL DEFAULT 0,
    bytes_done        bigint      NOT NULL DEFAULT 0,
    infected_found    integer     NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    CHECK ((state = 'finished') = (finished_at IS NOT NULL))
);
