DROP TABLE IF EXISTS notifications;
DROP TABLE IF EXISTS upload_previews;
DROP TABLE IF EXISTS upload_media;
DROP TABLE IF EXISTS upload_scans;
