DELETE FROM upload_parts WHERE content_md5 IS NULL;
ALTER TABLE upload_parts DROP CONSTRAINT upload_parts_one_pin;
ALTER TABLE upload_parts DROP COLUMN checksum_sha256;
ALTER TABLE upload_parts ALTER COLUMN content_md5 SET NOT NULL;
ALTER TABLE uploads DROP COLUMN part_checksum;
