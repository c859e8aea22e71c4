DROP TRIGGER IF EXISTS upload_progress_notify ON upload_progress;
DROP TRIGGER IF EXISTS uploads_notify ON uploads;
DROP FUNCTION IF EXISTS notify_upload_event();
DROP TABLE IF EXISTS upload_metadata;
DROP TABLE IF EXISTS upload_progress;
DROP TABLE IF EXISTS upload_parts;
DROP TABLE IF EXISTS uploads;
