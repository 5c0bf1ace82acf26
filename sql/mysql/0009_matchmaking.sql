-- Matchmaking: the rating of each character in each rated queue (Glicko-2,
-- docs/matchmaking.md "Ratings") and the matches whose results were applied.
-- Written by mmoshard/ratings.py on whichever node the world reports from.
-- Timestamps are DOUBLE epoch seconds (UTC).

-- A character's rating in one queue; no row: the initial rating.
CREATE TABLE mm_ratings (
    character_id BIGINT NOT NULL,
    queue VARCHAR(64) NOT NULL,
    rating DOUBLE NOT NULL,
    rd DOUBLE NOT NULL,
    volatility DOUBLE NOT NULL,
    games INTEGER NOT NULL,
    updated_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, queue),
    -- a queue's ladder, best first
    KEY mm_ratings_ladder (queue, rating),
    CONSTRAINT mm_ratings_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per match whose result was applied: written in the same
-- transaction as the ratings it changed, so a second report of the match
-- changes nothing (the primary key refuses it) and answers the same ratings.
CREATE TABLE mm_results (
    -- compared byte for byte: ids differing in case are different matches
    match_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    queue VARCHAR(64) NOT NULL,
    -- the index of the winning team; NULL for a draw
    winner INTEGER NULL,
    reported_at DOUBLE NOT NULL,
    -- JSON {character id: [rating before, rating after]}
    ratings TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
