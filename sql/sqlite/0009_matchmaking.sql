-- Matchmaking: ratings per character per queue and the applied match
-- results; the SQLite twin of mysql/0009_matchmaking.sql.

CREATE TABLE mm_ratings (
    character_id BIGINT NOT NULL
        REFERENCES characters (id) ON DELETE CASCADE,
    queue VARCHAR(64) NOT NULL,
    rating DOUBLE NOT NULL,
    rd DOUBLE NOT NULL,
    volatility DOUBLE NOT NULL,
    games INTEGER NOT NULL,
    updated_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, queue)
);

CREATE INDEX mm_ratings_ladder ON mm_ratings (queue, rating);

CREATE TABLE mm_results (
    match_id VARCHAR(128) NOT NULL PRIMARY KEY,
    queue VARCHAR(64) NOT NULL,
    winner INTEGER NULL,
    reported_at DOUBLE NOT NULL,
    ratings TEXT NOT NULL
);
