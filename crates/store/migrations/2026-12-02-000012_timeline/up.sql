-- Each patient's timeline: one row per (patient, event) for every resource in the patient's
-- compartment whose type has a clinical-date rule (fhir_model::timeline), written with the
-- resource's other index rows. `Patient/$timeline` and `$everything?start=&end=` walk this index
-- in date order, so a page costs the same however long the record is. `param` names the element
-- that dated the event. Existing resources are dated by the index rebuild at the next start.
CREATE TABLE idx_timeline (
    rid      BIGINT      NOT NULL REFERENCES resource (rid),
    res_type TEXT        NOT NULL,
    param    TEXT        NOT NULL,
    patient  TEXT        NOT NULL,
    at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_timeline_patient ON idx_timeline (patient, at, rid) INCLUDE (res_type);
CREATE INDEX idx_timeline_rid ON idx_timeline (rid);
