-- Narrow rows get the body and routine keys the view built for them, then the facts go.
UPDATE audit_event a SET body = audit_event_body(a), routine = audit_event_routine(a)
WHERE a.body IS NULL;
CREATE OR REPLACE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method, a.body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded, a.routine
FROM audit_event a;
DROP FUNCTION audit_event_routine(audit_event);
DROP FUNCTION audit_event_body(audit_event);
DROP FUNCTION audit_instant(timestamptz);
ALTER TABLE audit_event
    ALTER COLUMN body SET NOT NULL,
    DROP COLUMN interaction, DROP COLUMN action, DROP COLUMN outcome, DROP COLUMN outcome_desc,
    DROP COLUMN purpose, DROP COLUMN review_reason, DROP COLUMN request_id, DROP COLUMN address,
    DROP COLUMN sensitive, DROP COLUMN user_sub, DROP COLUMN fhir_user, DROP COLUMN user_name,
    DROP COLUMN role, DROP COLUMN jti, DROP COLUMN client_id, DROP COLUMN patient,
    DROP COLUMN resources, DROP COLUMN query;
