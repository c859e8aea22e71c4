-- Programs and scripts (by name or by their bytes), where the marketplace sells
-- software (UPLOAD_ALLOW_SOFTWARE): accepted, scanned, and marked so here.
ALTER TABLE upload_metadata ADD COLUMN software boolean NOT NULL DEFAULT false;
