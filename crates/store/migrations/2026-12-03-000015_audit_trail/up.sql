-- The audit trail in a table of its own (#18): one narrow row per AuditEvent, appended in the
-- transaction a response waits for, never updated, partitioned by month of writing so old
-- months can be detached and archived whole. Nothing is deferred: there is no projection into
-- the resource tables, and the clinical record's tables, indexes and statistics never hold an
-- AuditEvent.
--
--   rid          order of writing (paging and snapshots)
--   body         the AuditEvent exactly as served (id and meta set)
--   recorded     AuditEvent.recorded (the `date` search parameter)
--   compartments the patients whose compartment holds the event (access rules)
--   keys         one text key per searchable value (store::audit_keys), under one GIN index:
--                every equality search of AuditEvent reads that index
-- Partitions are created ahead by the server (store::audit_rows::ensure_partitions).
CREATE SEQUENCE audit_event_rid;
CREATE TABLE audit_event (
    rid          BIGINT      NOT NULL DEFAULT nextval('audit_event_rid'),
    id           TEXT        NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    recorded     TIMESTAMPTZ,
    body         BYTEA       NOT NULL,
    compartments TEXT[]      NOT NULL,
    sec_labels   TEXT[]      NOT NULL,
    org          TEXT,
    keys         TEXT[]      NOT NULL
) PARTITION BY RANGE (last_updated);
ALTER SEQUENCE audit_event_rid OWNED BY audit_event.rid;
CREATE INDEX audit_event_rid_idx ON audit_event (rid);
CREATE INDEX audit_event_id_idx ON audit_event (id);
CREATE INDEX audit_event_keys_idx ON audit_event USING GIN (keys);

-- The rows in the shape of `resource` and `resource_history`, so reads, history and the access
-- rules run over the audit trail unchanged.
CREATE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method, a.body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded
FROM audit_event a;

-- AuditEvents stored as resources by earlier versions (and journal rows not yet projected)
-- are moved here by the server at start (store::audit_rows::move_legacy), in batches.
