-- Access control: what each version says about who may see it, kept beside the version so that
-- the access rules of a request are array tests inside the same SQL as the search.
--   sec_labels   meta.security codes that restrict (R, V, v3 ActCode sensitivity, project labels)
--   alert_codes  Flag category/code codings as system|code (safeguarding alerts are recognised by them)
--   org          ODS code of the organisation whose client wrote the version (V labels, feed ownership)
ALTER TABLE resource
    ADD COLUMN sec_labels  TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN alert_codes TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN org         TEXT;
ALTER TABLE resource_history
    ADD COLUMN compartments TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN sec_labels   TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN alert_codes  TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN org          TEXT;
CREATE INDEX history_compartments ON resource_history USING GIN (compartments);

-- Legitimate relationships between an organisation (ODS code) and a patient, as the Summary Care
-- Record requires before a user of that organisation may see the patient's record.
--   registered-gp  the patient's registered practice (from Patient.generalPractitioner)
--   source         the organisation has sent data about the patient
--   self-claimed   a user claimed one (X-Relationship-Claim); audited and flagged for review
CREATE TABLE care_relationship (
    patient_id  TEXT        NOT NULL,
    org_code    TEXT        NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('registered-gp', 'source', 'self-claimed')),
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    PRIMARY KEY (patient_id, org_code, kind)
);
CREATE INDEX care_relationship_org ON care_relationship (org_code, patient_id);
