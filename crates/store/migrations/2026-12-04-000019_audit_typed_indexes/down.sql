DROP VIEW audit_resource;
CREATE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method,
       COALESCE(a.body, audit_event_body(a)) AS body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded,
       CASE WHEN a.body IS NULL THEN audit_event_routine(a) ELSE a.routine END AS routine
FROM audit_event a;
DROP INDEX audit_event_review_idx;
DROP INDEX audit_event_request_id_idx;
DROP INDEX audit_event_user_sub_idx;
DROP INDEX audit_event_agent_key_idx;
ALTER TABLE audit_event DROP COLUMN agent_key;
DROP INDEX audit_event_compartments_idx;
DROP INDEX audit_event_keys_idx;
CREATE INDEX audit_event_keys_idx ON audit_event USING GIN (keys);
DO $$
DECLARE
    ix regclass;
BEGIN
    FOR ix IN
        SELECT i.indexrelid::regclass
        FROM pg_inherits h
        JOIN pg_index i ON i.indrelid = h.inhrelid
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_am a ON a.oid = c.relam
        WHERE h.inhparent = 'audit_event'::regclass AND a.amname = 'gin'
    LOOP
        EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', ix);
    END LOOP;
END
$$;
