-- Auth logins: one row per successful login (the access tokens' sid), alive
-- until it expires or is revoked (logout, refresh-token reuse, password
-- change, ban).

CREATE TABLE auth_logins (
    id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    created_at DOUBLE NOT NULL,
    last_used_at DOUBLE NOT NULL,
    expires_at DOUBLE NOT NULL,
    -- NULL: live
    revoked_at DOUBLE NULL,
    revoke_reason VARCHAR(32) NULL,
    ip VARCHAR(45) NULL,
    user_agent VARCHAR(255) NULL,
    INDEX auth_logins_account (account_id),
    INDEX auth_logins_expires (expires_at),
    CONSTRAINT auth_logins_account_fk FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
