-- When the portal withdrew a lecture's archive (Unix ms); none: not withdrawn. A withdrawn
-- archive is refused to everyone until the portal puts it back.
ALTER TABLE lectures ADD COLUMN archive_withdrawn_at BIGINT;
