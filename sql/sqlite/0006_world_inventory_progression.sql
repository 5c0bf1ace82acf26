-- World: inventories and the progression ledger; the SQLite twin of
-- mysql/0006_world_inventory_progression.sql.

CREATE TABLE inventory (
    character_id BIGINT NOT NULL
        REFERENCES characters (id) ON DELETE CASCADE,
    slot INT NOT NULL,
    item_id VARCHAR(64) NOT NULL,
    count INT NOT NULL,
    PRIMARY KEY (character_id, slot)
);

CREATE TABLE progression_ledger (
    character_id BIGINT NOT NULL
        REFERENCES characters (id) ON DELETE CASCADE,
    idem_key VARCHAR(128) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    result VARCHAR(255) NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, idem_key)
);
