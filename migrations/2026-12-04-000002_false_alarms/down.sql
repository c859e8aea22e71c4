DROP VIEW ops.held_objects;
ALTER TABLE notifications
    DROP CONSTRAINT notifications_upload_kind_occasion_key,
    DROP CONSTRAINT notifications_submission_kind_occasion_key;
DELETE FROM notifications a USING notifications b
 WHERE a.ctid > b.ctid AND a.kind = b.kind
   AND (a.upload_id = b.upload_id OR a.submission_id = b.submission_id);
ALTER TABLE notifications
    DROP COLUMN occasion,
    ADD CONSTRAINT notifications_upload_id_kind_key UNIQUE (upload_id, kind),
    ADD CONSTRAINT notifications_submission_kind_key UNIQUE (submission_id, kind);
DROP TABLE object_events;
ALTER TABLE upload_scans
    DROP CONSTRAINT upload_scans_release_check,
    DROP COLUMN released_by,
    DROP COLUMN release_reason,
    DROP COLUMN released_signature,
    DROP CONSTRAINT upload_scans_verdict_check;
UPDATE upload_scans SET verdict = 'clean' WHERE verdict = 'released';
ALTER TABLE upload_scans
    ADD CONSTRAINT upload_scans_verdict_check CHECK (verdict IN ('clean', 'infected', 'unscannable'));
DROP INDEX stored_objects_signature_version;
ALTER TABLE stored_objects
    DROP CONSTRAINT stored_objects_release_check,
    DROP CONSTRAINT stored_objects_hold_check,
    DROP CONSTRAINT stored_objects_verdict_check;
UPDATE stored_objects SET verdict = 'clean' WHERE verdict = 'released';
-- Held objects go back to what the old model had for them: quarantined.
UPDATE stored_objects
   SET quarantined_at = held_at, quarantine_key = 'infected-files/' || md5_hex
 WHERE standing = 'held';
ALTER TABLE stored_objects
    DROP COLUMN standing,
    DROP COLUMN held_key,
    DROP COLUMN held_at,
    DROP COLUMN held_moved_at,
    DROP COLUMN clean_under_version,
    DROP COLUMN released_by,
    DROP COLUMN release_reason,
    DROP COLUMN released_signature,
    DROP COLUMN released_at,
    DROP COLUMN confirmed_by,
    ADD CONSTRAINT stored_objects_verdict_check CHECK (verdict IN ('clean', 'infected', 'unscannable')),
    ADD CONSTRAINT stored_objects_quarantine_check
        CHECK ((verdict = 'infected') = (quarantined_at IS NOT NULL)
           AND (quarantined_at IS NULL) = (quarantine_key IS NULL));
CREATE INDEX stored_objects_signature_version ON stored_objects (coalesce(signature_version, 0))
    WHERE quarantined_at IS NULL;
