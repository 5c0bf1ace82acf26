-- Auth logins: the SQLite twin of mysql/0002_auth_logins.sql.

CREATE TABLE auth_logins (
    id VARCHAR(32) NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL
        REFERENCES accounts (id) ON DELETE CASCADE,
    created_at DOUBLE NOT NULL,
    last_used_at DOUBLE NOT NULL,
    expires_at DOUBLE NOT NULL,
    revoked_at DOUBLE NULL,
    revoke_reason VARCHAR(32) NULL,
    ip VARCHAR(45) NULL,
    user_agent VARCHAR(255) NULL
);

CREATE INDEX auth_logins_account ON auth_logins (account_id);

CREATE INDEX auth_logins_expires ON auth_logins (expires_at);
