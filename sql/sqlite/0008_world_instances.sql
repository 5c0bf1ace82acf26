-- World: instances, boss kills, lockouts and return points; the SQLite twin
-- of mysql/0008_world_instances.sql.

CREATE TABLE instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template VARCHAR(64) NOT NULL,
    node_id VARCHAR(128) NOT NULL,
    party_id VARCHAR(64) NULL,
    created_at DOUBLE NOT NULL,
    closed_at DOUBLE NULL
);

CREATE INDEX instances_open ON instances (template, closed_at);

CREATE TABLE instance_kills (
    instance_id BIGINT NOT NULL
        REFERENCES instances (id) ON DELETE CASCADE,
    encounter VARCHAR(64) NOT NULL,
    killed_at DOUBLE NOT NULL,
    roster TEXT NOT NULL,
    seed VARCHAR(64) NOT NULL,
    PRIMARY KEY (instance_id, encounter)
);

CREATE TABLE instance_lockouts (
    character_id BIGINT NOT NULL
        REFERENCES characters (id) ON DELETE CASCADE,
    template VARCHAR(64) NOT NULL,
    instance_id BIGINT NOT NULL,
    reset_at DOUBLE NOT NULL,
    PRIMARY KEY (character_id, template)
);

CREATE TABLE instance_returns (
    character_id BIGINT NOT NULL PRIMARY KEY
        REFERENCES characters (id) ON DELETE CASCADE,
    instance_id BIGINT NOT NULL,
    zone VARCHAR(64) NOT NULL,
    x DOUBLE NOT NULL,
    y DOUBLE NOT NULL,
    z DOUBLE NOT NULL
);
