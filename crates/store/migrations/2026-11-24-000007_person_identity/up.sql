-- One person per NHS number: each number identifies at most one Patient. Every Patient write
-- claims its numbers here in its own transaction, so a second Patient with the same number fails
-- on the primary key instead of splitting the person's record.
CREATE TABLE person_identity (
    nhs_number TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL
);
CREATE INDEX person_identity_patient ON person_identity (patient_id);

-- Patients stored before this table existed: the first stored Patient keeps each number.
INSERT INTO person_identity (nhs_number, patient_id)
SELECT DISTINCT ON (t.code) t.code, r.id
FROM idx_token t JOIN resource r ON r.rid = t.rid
WHERE t.res_type = 'Patient' AND t.param = 'identifier'
  AND t.system = 'https://fhir.nhs.uk/Id/nhs-number' AND t.code IS NOT NULL AND NOT r.deleted
ORDER BY t.code, r.rid
ON CONFLICT DO NOTHING;
