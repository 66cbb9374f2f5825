-- What writing an AuditEvent costs PostgreSQL, cut (#18). Measured under audited reads: the
-- audit trail's GIN index wrote 59% of the WAL (about 1.9 kB per event) and most of its
-- CPU, and pglz compression of each row was a tenth of PostgreSQL's CPU.
--
-- 1. `routine`: the keys almost every event carries (type rest, action R, outcome 0, site
--    Invicta, the entity types and roles of a read, purpose TREAT, …; the list is
--    store::audit_keys::ROUTINE) move out of the GIN index into an unindexed column. A search
--    for one of them matches most of the trail, where an index is no help; a search combining
--    one with a selective parameter reads the index for that and checks the routine key on
--    the rows found. Rows written before keep every key in `keys`, and a search reads both.
-- 2. Rows stay whole on their heap page: compressed, an event is about 2.2 kB, past the
--    default toast target (about 2 kB), so most bodies went to the TOAST table, an insert into
--    a second table and its index per event. Partitions are made with toast_tuple_target 2500
--    (store::audit_rows::TOAST_TARGET); existing ones are set here.
-- 3. The wide columns (body, keys, routine) are compressed with lz4 instead of pglz, several
--    times faster at a slightly lower ratio. New partitions inherit the parent's setting; existing ones are set here.
--    A server built without lz4 keeps pglz: an optimisation, never a requirement.
ALTER TABLE audit_event ADD COLUMN routine TEXT[] NOT NULL DEFAULT '{}';

DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_event'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s SET (toast_tuple_target = 2500)', part);
    END LOOP;
END
$$;

CREATE OR REPLACE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method, a.body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded, a.routine
FROM audit_event a;

DO $$
DECLARE
    part regclass;
BEGIN
    ALTER TABLE audit_event ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE audit_event ALTER COLUMN keys SET COMPRESSION lz4;
    ALTER TABLE audit_event ALTER COLUMN routine SET COMPRESSION lz4;
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_event'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN body SET COMPRESSION lz4', part);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN keys SET COMPRESSION lz4', part);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN routine SET COMPRESSION lz4', part);
    END LOOP;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available in this PostgreSQL build; the audit trail keeps pglz';
END
$$;
