DROP TABLE submission_events;
DROP TABLE upload_events;
DROP FUNCTION history_is_append_only();
