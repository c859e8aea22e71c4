-- How an upload's parts are pinned in their signed URLs: by MD5 (Content-MD5, the
-- default) or by SHA-256 (x-amz-checksum-sha256, the store's multipart upload
-- created for it). A part keeps exactly one of the two digests it was signed with.
ALTER TABLE uploads ADD COLUMN part_checksum text NOT NULL DEFAULT 'md5'
    CHECK (part_checksum IN ('md5', 'sha256'));
ALTER TABLE upload_parts ALTER COLUMN content_md5 DROP NOT NULL;
ALTER TABLE upload_parts ADD COLUMN checksum_sha256 bytea
    CHECK (checksum_sha256 IS NULL OR length(checksum_sha256) = 32);
ALTER TABLE upload_parts ADD CONSTRAINT upload_parts_one_pin
    CHECK (num_nonnulls(content_md5, checksum_sha256) = 1);
