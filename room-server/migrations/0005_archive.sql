-- When a lecture's archive is deleted (Unix ms), as the portal set it; none: the node's
-- `[archive] retention_days` after the lecture.
ALTER TABLE lectures ADD COLUMN archive_expires_at BIGINT;
