-- When the instructor started a lecture's delivery, if they did before its scheduled start:
-- "My page" shows it live from then (a room node writes it; the first start wins).
ALTER TABLE lectures ADD COLUMN started_at BIGINT;
