-- Refresh tokens: every token ever issued for a login, so presenting one that
-- was already used (rotated away) is recognised as reuse and revokes the login.
-- A token is "<id>.<secret>"; only the SHA-256 of the secret is kept.

CREATE TABLE auth_refresh_tokens (
    id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    login_id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
    secret_hash CHAR(64) COLLATE utf8mb4_bin NOT NULL,
    created_at DOUBLE NOT NULL,
    -- NULL: the login's current token
    used_at DOUBLE NULL,
    INDEX auth_refresh_tokens_login (login_id),
    CONSTRAINT auth_refresh_tokens_login_fk FOREIGN KEY (login_id)
        REFERENCES auth_logins (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
