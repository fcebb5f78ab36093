-- One row per learner, lecture and kind of e-mail (reminder, archive ready, cancelled): the
-- claim that makes a message go out once even when several nodes share the database.
-- state: 'sending' (a node holds it until lease_until), 'retry' (due again at next_at),
-- 'sent', or 'failed' (gave up after the bounded number of attempts).
CREATE TABLE mail_claims (
    lecture_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_until BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (lecture_id, account_id, kind)
);
