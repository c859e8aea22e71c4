DROP TABLE rescan_runs;
DROP INDEX stored_objects_signature_version;
ALTER TABLE stored_objects
    DROP CONSTRAINT stored_objects_quarantine_check,
    DROP COLUMN quarantine_moved_at,
    DROP COLUMN quarantined_at,
    DROP COLUMN quarantine_key,
    DROP COLUMN scanned_at,
    DROP COLUMN signature_version,
    DROP COLUMN engine_version,
    DROP COLUMN signature,
    DROP COLUMN verdict;
DELETE FROM upload_scans WHERE verdict = 'unscannable';
ALTER TABLE upload_scans
    DROP CONSTRAINT upload_scans_finding_check,
    DROP CONSTRAINT upload_scans_unscannable_check,
    DROP COLUMN signature_version,
    DROP COLUMN engine_version,
    DROP COLUMN uninspected,
    DROP CONSTRAINT upload_scans_verdict_check,
    ADD CONSTRAINT upload_scans_verdict_check CHECK (verdict IN ('clean', 'infected')),
    ADD CONSTRAINT upload_scans_check CHECK ((verdict = 'infected') = (signature IS NOT NULL));
