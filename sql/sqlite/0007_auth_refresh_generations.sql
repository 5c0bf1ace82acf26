-- Refresh generations instead of stored refresh tokens: the SQLite twin of
-- mysql/0007_auth_refresh_generations.sql.

DROP TABLE IF EXISTS auth_refresh_tokens;

ALTER TABLE auth_logins ADD COLUMN refresh_gen BIGINT NOT NULL DEFAULT 0;

CREATE INDEX auth_logins_revoked ON auth_logins (revoked_at);
