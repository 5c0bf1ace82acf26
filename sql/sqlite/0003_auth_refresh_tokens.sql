-- Refresh tokens: the SQLite twin of mysql/0003_auth_refresh_tokens.sql.

CREATE TABLE auth_refresh_tokens (
    id VARCHAR(32) NOT NULL PRIMARY KEY,
    login_id VARCHAR(32) NOT NULL
        REFERENCES auth_logins (id) ON DELETE CASCADE,
    secret_hash CHAR(64) NOT NULL,
    created_at DOUBLE NOT NULL,
    used_at DOUBLE NULL
);

CREATE INDEX auth_refresh_tokens_login ON auth_refresh_tokens (login_id);
