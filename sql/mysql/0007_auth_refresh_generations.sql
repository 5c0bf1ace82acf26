-- Refresh tokens are no longer stored: a token is "<login id>.<generation>.<HMAC>"
-- and the live rotation state is in the volatile store (docs/auth.md). SQL
-- keeps, per login, the generation of its current token as last written by
-- the auth role's periodic flush, which a refresh falls back to when the
-- volatile record is lost. The same flush reads recent revocations (those
-- made in SQL alone, e.g. by `mmoshard account ban` while no server
-- answered), hence the index.
-- The drop comes first, and the column and index are one statement, so a
-- rerun after a failure proceeds.

DROP TABLE IF EXISTS auth_refresh_tokens;

ALTER TABLE auth_logins
    ADD COLUMN refresh_gen BIGINT NOT NULL DEFAULT 0,
    ADD INDEX auth_logins_revoked (revoked_at);
