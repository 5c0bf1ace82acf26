-- Chat: friendships (two rows each, one per side), pending friend requests,
-- blocks and operator mutes.  Written and read by mmoshard/chat/social.py.
-- Timestamps are DOUBLE epoch seconds (UTC).

CREATE TABLE chat_friends (
    character_id BIGINT NOT NULL,
    friend_id BIGINT NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, friend_id),
    INDEX chat_friends_friend (friend_id),
    CONSTRAINT chat_friends_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE,
    CONSTRAINT chat_friends_friend_fk FOREIGN KEY (friend_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE chat_friend_requests (
    from_id BIGINT NOT NULL,
    to_id BIGINT NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (from_id, to_id),
    INDEX chat_friend_requests_to (to_id),
    CONSTRAINT chat_friend_requests_from_fk FOREIGN KEY (from_id)
        REFERENCES characters (id) ON DELETE CASCADE,
    CONSTRAINT chat_friend_requests_to_fk FOREIGN KEY (to_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE chat_blocks (
    character_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, blocked_id),
    INDEX chat_blocks_blocked (blocked_id),
    CONSTRAINT chat_blocks_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE,
    CONSTRAINT chat_blocks_blocked_fk FOREIGN KEY (blocked_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE chat_mutes (
    character_id BIGINT NOT NULL PRIMARY KEY,
    muted_until DOUBLE NOT NULL,
    reason VARCHAR(255) NULL,
    muted_by BIGINT NULL,
    created_at DOUBLE NOT NULL,
    CONSTRAINT chat_mutes_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
