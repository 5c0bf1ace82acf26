-- The account audit trail: the SQLite twin of mysql/0004_account_events.sql.

CREATE TABLE account_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at DOUBLE NOT NULL,
    account_id BIGINT NULL,
    kind VARCHAR(32) NOT NULL,
    ip VARCHAR(45) NULL,
    detail VARCHAR(255) NULL
);

CREATE INDEX account_events_account ON account_events (account_id, at);

CREATE INDEX account_events_at ON account_events (at);
