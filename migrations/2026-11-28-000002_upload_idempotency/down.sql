DROP INDEX uploads_owner_idempotency_key;
ALTER TABLE uploads DROP COLUMN idempotency_key;
