-- World: inventories and the progression ledger that makes every grant and
-- item change idempotent.  Written by mmoshard/world/progression.py.
-- Timestamps are DOUBLE epoch seconds (UTC).

CREATE TABLE inventory (
    character_id BIGINT NOT NULL,
    slot INT NOT NULL,
    item_id VARCHAR(64) NOT NULL,
    count INT NOT NULL,
    PRIMARY KEY (character_id, slot),
    CONSTRAINT inventory_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per applied change: a retried call with the same key finds its
-- row (inserted in the same transaction as the change) and changes nothing.
CREATE TABLE progression_ledger (
    character_id BIGINT NOT NULL,
    idem_key VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    kind VARCHAR(16) NOT NULL,
    -- the call's result, JSON, returned again on a retry
    result VARCHAR(255) NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, idem_key),
    CONSTRAINT progression_ledger_character_fk FOREIGN KEY (character_id)
        REFERENCES characters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
