-- Composite search parameters (Observation code-value-quantity and friends): the first
-- component's code beside the second component's value, taken from the same element.
CREATE TABLE idx_composite (
    rid      BIGINT NOT NULL REFERENCES resource (rid),
    res_type TEXT   NOT NULL,
    param    TEXT   NOT NULL,
    system   TEXT,
    code     TEXT   NOT NULL,
    v_system TEXT,
    v_code   TEXT,
    v_text   TEXT,
    v_value  NUMERIC,
    v_lo     NUMERIC,
    v_hi     NUMERIC,
    d_lo     TIMESTAMPTZ,
    d_hi     TIMESTAMPTZ
);
CREATE INDEX idx_composite_lookup ON idx_composite (res_type, param, code, v_value);
CREATE INDEX idx_composite_rid ON idx_composite (rid);
