ALTER TABLE upload_metadata DROP COLUMN software;
