-- World: instances (per-party copies of a template), their boss kills, the
-- lockouts binding characters to a copy, and where each character came in
-- from.  Written by mmoshard/world/instances/.  Timestamps are DOUBLE epoch
-- seconds (UTC).

-- One row per instance ever created: the id is unique across the deployment.
CREATE TABLE instances (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    template VARCHAR(64) NOT NULL,
    -- the node hosting it now (another node adopts it after a crash)
    node_id VARCHAR(128) NOT NULL,
    party_id VARCHAR(64) NULL,
    created_at DOUBLE NOT NULL,
    closed_at DOUBLE NULL,
    KEY instances_open (template, closed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A boss killed in an instance: written in the same transaction as the
-- lockouts, exp and loot of everyone present; the primary key makes a
-- second write of the same kill impossible.
CREATE TABLE instance_kills (
    instance_id BIGINT NOT NULL,
    encounter VARCHAR(64) NOT NULL,
    killed_at DOUBLE NOT NULL,
    -- JSON list of the character ids present
    roster TEXT NOT NULL,
    -- the loot seed: a rerun rolls the same items
    seed VARCHAR(64) NOT NULL,
    PRIMARY KEY (instance_id, encounter),
    CONSTRAINT instance_kills_instance_fk FOREIGN KEY (instance_id)
        REFERENCES instances (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A character bound to one copy of a template until reset_at.
CREATE TABLE instance_lockouts (
    character_id BIGINT NOT NULL,
    template VARCHAR(64) NOT NULL,
    instance_id BIGINT NOT NULL,
    reset_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, template),
    CONSTRAINT instance_lockouts_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Where a character inside an instance goes back to when it leaves (or
-- logs in after the instance closed).
CREATE TABLE instance_returns (
    character_id BIGINT NOT NULL PRIMARY KEY,
    instance_id BIGINT NOT NULL,
    zone VARCHAR(64) NOT NULL,
    x DOUBLE NOT NULL,
    y DOUBLE NOT NULL,
    z DOUBLE NOT NULL,
    CONSTRAINT instance_returns_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
