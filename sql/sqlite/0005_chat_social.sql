-- Chat social tables: the SQLite twin of mysql/0005_chat_social.sql.

CREATE TABLE chat_friends (
    character_id BIGINT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    friend_id BIGINT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, friend_id)
);

CREATE INDEX chat_friends_friend ON chat_friends (friend_id);

CREATE TABLE chat_friend_requests (
    from_id BIGINT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    to_id BIGINT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (from_id, to_id)
);

CREATE INDEX chat_friend_requests_to ON chat_friend_requests (to_id);

CREATE TABLE chat_blocks (
    character_id BIGINT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, blocked_id)
);

CREATE INDEX chat_blocks_blocked ON chat_blocks (blocked_id);

CREATE TABLE chat_mutes (
    character_id BIGINT NOT NULL PRIMARY KEY
        REFERENCES characters (id) ON DELETE CASCADE,
    muted_until DOUBLE NOT NULL,
    reason VARCHAR(255) NULL,
    muted_by BIGINT NULL,
    created_at DOUBLE NOT NULL
);
