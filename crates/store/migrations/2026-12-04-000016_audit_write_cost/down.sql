DO $$
DECLARE
    part regclass;
BEGIN
    ALTER TABLE audit_event ALTER COLUMN body SET COMPRESSION default;
    ALTER TABLE audit_event ALTER COLUMN keys SET COMPRESSION default;
    ALTER TABLE audit_event ALTER COLUMN routine SET COMPRESSION default;
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_event'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN body SET COMPRESSION default', part);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN keys SET COMPRESSION default', part);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN routine SET COMPRESSION default', part);
        EXECUTE format('ALTER TABLE %s RESET (toast_tuple_target)', part);
    END LOOP;
END
$$;
-- Routine keys go back into `keys`, where every search looked before.
UPDATE audit_event SET keys = keys || routine WHERE routine <> '{}';
DROP VIEW audit_resource;
CREATE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method, a.body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded
FROM audit_event a;
ALTER TABLE audit_event DROP COLUMN routine;
