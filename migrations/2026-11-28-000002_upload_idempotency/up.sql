-- CreateUpload may carry an idempotency key: a client retrying after a lost answer
-- gets the same upload back, never a second one. Keys are the seller's own.
ALTER TABLE uploads ADD COLUMN idempotency_key text
    CHECK (idempotency_key ~ '^[!-~]{1,128}$');
CREATE UNIQUE INDEX uploads_owner_idempotency_key ON uploads (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
