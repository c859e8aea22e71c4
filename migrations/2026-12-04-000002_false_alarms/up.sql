-- A false alarm never destroys a product. Content that was clean and stored, and
-- that a later scan flags, is held: kept in the regular bucket under held/<md5>
-- (no rule expires it), refused for download, until an operator releases it (back
-- at files/<md5>, downloadable) or confirms it (moved to the quarantine bucket,
-- deleted after its 4 days). A release is a verdict of its own, naming the
-- operator, the reason and the finding overridden; a later scan holds or
-- quarantines the same content again only for another finding.

-- Where a stored object stands: downloadable (stored), held for review, or
-- quarantined for good. Objects quarantined before this migration stay so.
ALTER TABLE stored_objects
    ADD COLUMN standing text NOT NULL DEFAULT 'stored'
        CHECK (standing IN ('stored', 'held', 'quarantined')),
    -- The object's key in the regular bucket while it is held (held/<md5>); kept
    -- after a decision until that copy is gone.
    ADD COLUMN held_key text,
    ADD COLUMN held_at timestamptz,
    -- Set once the object is at held_key and gone from files/<md5>.
    ADD COLUMN held_moved_at timestamptz,
    -- A held object that a scan with newer signatures found clean: that version.
    ADD COLUMN clean_under_version bigint,
    -- The operator's release: who, why, and the finding they overrode.
    ADD COLUMN released_by text,
    ADD COLUMN release_reason text,
    ADD COLUMN released_signature text,
    ADD COLUMN released_at timestamptz,
    -- The operator who confirmed a hold.
    ADD COLUMN confirmed_by text;
UPDATE stored_objects SET standing = 'quarantined' WHERE quarantined_at IS NOT NULL;
ALTER TABLE stored_objects DROP CONSTRAINT stored_objects_verdict_check;
ALTER TABLE stored_objects DROP CONSTRAINT stored_objects_quarantine_check;
ALTER TABLE stored_objects
    ADD CONSTRAINT stored_objects_verdict_check
        CHECK (verdict IN ('clean', 'infected', 'unscannable', 'released')),
    ADD CONSTRAINT stored_objects_hold_check
        CHECK ((standing = 'quarantined') = (quarantined_at IS NOT NULL)
           AND (quarantined_at IS NULL) = (quarantine_key IS NULL)
           AND (standing = 'held') <= (held_key IS NOT NULL AND held_at IS NOT NULL)
           AND (standing <> 'stored' OR verdict <> 'infected')),
    -- A release stays on record (its finding is not held again) whatever follows.
    ADD CONSTRAINT stored_objects_release_check
        CHECK ((verdict = 'released') <= (released_by IS NOT NULL)
           AND (released_by IS NULL) = (released_signature IS NULL));
DROP INDEX stored_objects_signature_version;
CREATE INDEX stored_objects_signature_version ON stored_objects (coalesce(signature_version, 0))
    WHERE standing <> 'quarantined';

-- An upload's verdict may be an operator's release too.
ALTER TABLE upload_scans DROP CONSTRAINT upload_scans_verdict_check;
ALTER TABLE upload_scans
    ADD CONSTRAINT upload_scans_verdict_check
        CHECK (verdict IN ('clean', 'infected', 'unscannable', 'released')),
    ADD COLUMN released_by text,
    ADD COLUMN release_reason text,
    ADD COLUMN released_signature text,
    ADD CONSTRAINT upload_scans_release_check
        CHECK ((verdict = 'released') <= (released_by IS NOT NULL)
           AND (released_by IS NULL) = (released_signature IS NULL));

-- The history of each stored object: held, found clean while held, released,
-- confirmed. Append-only. Its rows are also the occasions of what sellers are told.
CREATE TABLE object_events (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    md5_hex   text        NOT NULL REFERENCES stored_objects (md5_hex),
    cause     text        NOT NULL,
    actor     text        NOT NULL,
    detail    text,
    at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX object_events_by_object ON object_events (md5_hex, id);
CREATE TRIGGER object_events_append_only BEFORE UPDATE OR DELETE ON object_events
    FOR EACH ROW EXECUTE FUNCTION history_is_append_only();

-- One notification of a kind per upload (or submission) per occasion: a job that
-- runs twice tells the seller once, and a file held, released and held again is
-- told each time. The occasion is the history row that made the change.
ALTER TABLE notifications
    ADD COLUMN occasion text NOT NULL DEFAULT '',
    DROP CONSTRAINT notifications_upload_id_kind_key,
    DROP CONSTRAINT notifications_submission_kind_key,
    ADD CONSTRAINT notifications_upload_kind_occasion_key UNIQUE (upload_id, kind, occasion),
    ADD CONSTRAINT notifications_submission_kind_occasion_key
        UNIQUE (submission_id, kind, occasion);

-- Held content, for operators: what each finding holds, who sells it, and whether
-- newer signatures have since found it clean. Decide with `upload-admin release`
-- or `confirm` and the MD5.
CREATE VIEW ops.held_objects AS
SELECT o.md5_hex,
       o.size_bytes,
       o.signature,
       o.signature_version,
       o.held_at,
       now() - o.held_at AS held_for,
       o.clean_under_version,
       (SELECT count(*) FROM file_versions v WHERE v.md5_hex = o.md5_hex) AS versions,
       (SELECT string_agg(DISTINCT i.owner_id, ', ' ORDER BY i.owner_id)
          FROM file_versions v
          JOIN item_files f ON f.id = v.file_id
          JOIN items i ON i.id = f.item_id
         WHERE v.md5_hex = o.md5_hex) AS sellers
  FROM stored_objects o
 WHERE o.standing = 'held';
