-- Accounts and their characters.
-- Timestamps are DOUBLE epoch seconds (UTC) on every dialect.
-- Case-insensitive uniqueness lives in the *_lower columns (filled by the
-- code with str.lower()), compared byte for byte so MySQL and SQLite agree;
-- query by them, not by the display columns.

CREATE TABLE accounts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- as typed at sign-up, for display
    username VARCHAR(32) NOT NULL,
    -- unique, so username is unique too
    username_lower VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
    email VARCHAR(255) NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at DOUBLE NOT NULL,
    is_operator BOOLEAN NOT NULL DEFAULT FALSE,
    -- NULL: not banned; a far-future time for a permanent ban
    banned_until DOUBLE NULL,
    ban_reason VARCHAR(255) NULL,
    region VARCHAR(32) NULL,
    CONSTRAINT accounts_username_lower UNIQUE (username_lower),
    INDEX accounts_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE characters (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    name VARCHAR(32) NOT NULL,
    -- unique among live and deleted characters alike: freeing a deleted
    -- character's name is the code's choice (it may rewrite name_lower)
    name_lower VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
    class VARCHAR(32) NOT NULL,
    level INT NOT NULL DEFAULT 1,
    exp BIGINT NOT NULL DEFAULT 0,
    -- '' = not placed yet: the world puts the character at its start point
    zone VARCHAR(64) NOT NULL DEFAULT '',
    x DOUBLE NOT NULL DEFAULT 0,
    y DOUBLE NOT NULL DEFAULT 0,
    z DOUBLE NOT NULL DEFAULT 0,
    created_at DOUBLE NOT NULL,
    -- NULL: live; soft-deleted characters keep their rows
    deleted_at DOUBLE NULL,
    CONSTRAINT characters_name_lower UNIQUE (name_lower),
    INDEX characters_account (account_id),
    CONSTRAINT characters_account_fk FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
