-- What outlives a room and a restart: revocations and bans, and the history of corporate seats
-- (so a company's attendance shows the stays its seats paid for, even after a seat is taken
-- back). Written for both SQLite and PostgreSQL.

-- A person's right to attend a lecture was taken away at `revoked_at` (purchase cancelled or
-- refunded, seat taken back, link removed, staff role removed or changed): room tickets issued
-- at or before it are refused. One row per person and lecture, the latest time kept.
CREATE TABLE revocations (
    lecture_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (lecture_id, account_id)
);

-- Staff removed a learner from a lecture without return (close code 4104): they may not enter
-- it again, with any ticket.
CREATE TABLE bans (
    lecture_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    banned_at  BIGINT NOT NULL,
    PRIMARY KEY (lecture_id, account_id)
);

-- Every time a company's seat was held by an individual: from its allocation until it was taken
-- back (NULL: still held). seat_allocations holds the seats held now; this keeps the past.
CREATE TABLE seat_grants (
    purchase_id   TEXT NOT NULL,
    individual_id TEXT NOT NULL,
    corporate_id  TEXT NOT NULL,
    lecture_id    TEXT NOT NULL,
    granted_at    BIGINT NOT NULL,
    released_at   BIGINT
);
CREATE INDEX seat_grants_by_individual ON seat_grants (individual_id, lecture_id);

-- The seats held before this migration.
INSERT INTO seat_grants (purchase_id, individual_id, corporate_id, lecture_id, granted_at)
SELECT a.purchase_id, a.individual_id, p.buyer_id, p.lecture_id, a.allocated_at
FROM seat_allocations a JOIN purchases p ON p.id = a.purchase_id;
