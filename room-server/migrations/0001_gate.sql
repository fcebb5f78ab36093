-- The entry gate's records. Written for both SQLite and PostgreSQL: TEXT ids from the portal,
-- BIGINT times in Unix milliseconds, statuses as text.

CREATE TABLE lectures (
    id                   TEXT PRIMARY KEY,
    title                TEXT NOT NULL,
    starts_at            BIGINT NOT NULL,
    ends_at              BIGINT NOT NULL,
    seat_rows            BIGINT NOT NULL,
    seat_cols            BIGINT NOT NULL,
    -- JSON array of {key, label_ja, label_en}; empty array: the default five.
    emotions             TEXT NOT NULL,
    archive_available_at BIGINT,
    -- scheduled | cancelled
    status               TEXT NOT NULL,
    cancel_reason        TEXT,
    -- Set by a room node when the lecture ended (early, by the instructor, or by the clock).
    ended_at             BIGINT,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE lecture_staff (
    lecture_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    -- instructor | moderator
    role       TEXT NOT NULL,
    PRIMARY KEY (lecture_id, account_id)
);

CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    -- individual | corporate | corporate_group
    kind       TEXT NOT NULL,
    -- A company's registered e-mail: individuals link to it with this address.
    email      TEXT,
    name       TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX accounts_by_email ON accounts (email);

CREATE TABLE corporate_links (
    individual_id TEXT NOT NULL,
    corporate_id  TEXT NOT NULL,
    linked_at     BIGINT NOT NULL,
    PRIMARY KEY (individual_id, corporate_id)
);
CREATE INDEX corporate_links_by_corporate ON corporate_links (corporate_id);

CREATE TABLE profiles (
    account_id TEXT PRIMARY KEY,
    nickname   TEXT,
    email      TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE purchases (
    id             TEXT PRIMARY KEY,
    buyer_id       TEXT NOT NULL,
    lecture_id     TEXT NOT NULL,
    quantity       BIGINT NOT NULL,
    -- online | venue (a venue ticket also admits online)
    modality       TEXT NOT NULL,
    -- card | konbini | free
    payment_method TEXT NOT NULL,
    -- paid | awaiting_payment | cancelled | refunded
    status         TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX purchases_by_buyer ON purchases (buyer_id, lecture_id);
CREATE INDEX purchases_by_lecture ON purchases (lecture_id);

CREATE TABLE seat_allocations (
    purchase_id   TEXT NOT NULL,
    individual_id TEXT NOT NULL,
    allocated_at  BIGINT NOT NULL,
    PRIMARY KEY (purchase_id, individual_id)
);
CREATE INDEX seat_allocations_by_individual ON seat_allocations (individual_id);

CREATE TABLE attendance (
    id         TEXT PRIMARY KEY,
    lecture_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    entered_at BIGINT NOT NULL,
    left_at    BIGINT,
    seat_row   BIGINT,
    seat_col   BIGINT
);
CREATE INDEX attendance_by_account ON attendance (account_id, entered_at);
