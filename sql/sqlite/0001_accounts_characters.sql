-- Accounts and their characters: the SQLite twin of mysql/0001_accounts_characters.sql.
-- Timestamps are DOUBLE epoch seconds (UTC) on every dialect.
-- Case-insensitive uniqueness lives in the *_lower columns (filled by the
-- code with str.lower()); query by them, not by the display columns.
-- SQLite does not enforce VARCHAR lengths: the code validates them.

CREATE TABLE accounts (
    -- AUTOINCREMENT: ids of deleted accounts are never handed out again
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username VARCHAR(32) NOT NULL,
    username_lower VARCHAR(32) NOT NULL,
    email VARCHAR(255) NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at DOUBLE NOT NULL,
    is_operator BOOLEAN NOT NULL DEFAULT 0,
    banned_until DOUBLE NULL,
    ban_reason VARCHAR(255) NULL,
    region VARCHAR(32) NULL,
    CONSTRAINT accounts_username_lower UNIQUE (username_lower)
);

CREATE INDEX accounts_email ON accounts (email);

CREATE TABLE characters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL
        REFERENCES accounts (id) ON DELETE CASCADE,
    name VARCHAR(32) NOT NULL,
    name_lower VARCHAR(32) NOT NULL,
    class VARCHAR(32) NOT NULL,
    level INT NOT NULL DEFAULT 1,
    exp BIGINT NOT NULL DEFAULT 0,
    zone VARCHAR(64) NOT NULL DEFAULT '',
    x DOUBLE NOT NULL DEFAULT 0,
    y DOUBLE NOT NULL DEFAULT 0,
    z DOUBLE NOT NULL DEFAULT 0,
    created_at DOUBLE NOT NULL,
    deleted_at DOUBLE NULL,
    CONSTRAINT characters_name_lower UNIQUE (name_lower)
);

CREATE INDEX characters_account ON characters (account_id);
