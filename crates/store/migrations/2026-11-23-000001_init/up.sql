-- Current state of every resource, one row per (type, id). `body` holds the exact bytes served
-- on read (FHIR JSON with meta set), so the hot path sends it without re-serialising.
CREATE TABLE resource (
    rid          BIGSERIAL PRIMARY KEY,
    res_type     TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    version      INTEGER     NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    deleted      BOOLEAN     NOT NULL DEFAULT FALSE,
    body         BYTEA,
    -- Ids of the patients whose compartment holds this resource (R4 Patient compartment).
    compartments TEXT[]      NOT NULL DEFAULT '{}',
    CONSTRAINT resource_type_id UNIQUE (res_type, id)
);
CREATE INDEX resource_type_updated ON resource (res_type, last_updated);
CREATE INDEX resource_compartments ON resource USING GIN (compartments);

-- Every version, the current one included; `hid` gives a stable order for history paging.
CREATE TABLE resource_history (
    hid          BIGSERIAL   NOT NULL UNIQUE,
    rid          BIGINT      NOT NULL REFERENCES resource (rid),
    res_type     TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    version      INTEGER     NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    deleted      BOOLEAN     NOT NULL,
    method       TEXT        NOT NULL,
    body         BYTEA,
    PRIMARY KEY (res_type, id, version)
);
CREATE INDEX history_type_hid ON resource_history (res_type, hid);
CREATE INDEX history_updated ON resource_history (last_updated);

-- Search indexes: one table per search-parameter type, rows replaced in the same transaction
-- as every write of the resource they point at (rid). Deleted resources have no rows.
CREATE TABLE idx_string (
    rid      BIGINT NOT NULL REFERENCES resource (rid),
    res_type TEXT   NOT NULL,
    param    TEXT   NOT NULL,
    value    TEXT   NOT NULL,
    norm     TEXT   NOT NULL
);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, norm text_pattern_ops);
CREATE INDEX idx_string_rid ON idx_string (rid);

CREATE TABLE idx_token (
    rid      BIGINT NOT NULL REFERENCES resource (rid),
    res_type TEXT   NOT NULL,
    param    TEXT   NOT NULL,
    system   TEXT,
    code     TEXT,
    text     TEXT
);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid);

CREATE TABLE idx_date (
    rid      BIGINT      NOT NULL REFERENCES resource (rid),
    res_type TEXT        NOT NULL,
    param    TEXT        NOT NULL,
    -- Half-open instant range [lo, hi); infinity for an open end.
    lo       TIMESTAMPTZ NOT NULL,
    hi       TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, lo, hi);
CREATE INDEX idx_date_rid ON idx_date (rid);

CREATE TABLE idx_reference (
    rid          BIGINT NOT NULL REFERENCES resource (rid),
    res_type     TEXT   NOT NULL,
    param        TEXT   NOT NULL,
    target_type  TEXT,
    target_id    TEXT,
    url          TEXT,
    ident_system TEXT,
    ident_value  TEXT
);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type);
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id);
CREATE INDEX idx_reference_rid ON idx_reference (rid);

CREATE TABLE idx_quantity (
    rid      BIGINT  NOT NULL REFERENCES resource (rid),
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    value    NUMERIC NOT NULL,
    lo       NUMERIC NOT NULL,
    hi       NUMERIC NOT NULL,
    system   TEXT,
    code     TEXT,
    unit     TEXT
);
CREATE INDEX idx_quantity_lookup ON idx_quantity (res_type, param, code, value);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);

CREATE TABLE idx_number (
    rid      BIGINT  NOT NULL REFERENCES resource (rid),
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    value    NUMERIC NOT NULL,
    lo       NUMERIC NOT NULL,
    hi       NUMERIC NOT NULL
);
CREATE INDEX idx_number_lookup ON idx_number (res_type, param, value);
CREATE INDEX idx_number_rid ON idx_number (rid);

CREATE TABLE idx_uri (
    rid      BIGINT NOT NULL REFERENCES resource (rid),
    res_type TEXT   NOT NULL,
    param    TEXT   NOT NULL,
    uri      TEXT   NOT NULL
);
CREATE INDEX idx_uri_lookup ON idx_uri (res_type, param, uri);
CREATE INDEX idx_uri_rid ON idx_uri (rid);
