-- The account audit trail: register, login (ok/failed/locked), logout,
-- password change, ban, unban.  No foreign key: the trail outlives accounts.
-- account_id is NULL for a failed login naming no account.

CREATE TABLE account_events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at DOUBLE NOT NULL,
    account_id BIGINT NULL,
    kind VARCHAR(32) NOT NULL,
    ip VARCHAR(45) NULL,
    detail VARCHAR(255) NULL,
    INDEX account_events_account (account_id, at),
    INDEX account_events_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
