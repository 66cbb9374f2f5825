-- A narrow row's search keys leave the GIN index; a few typed columns are indexed instead (#18).
-- Measured with the narrow rows of `make bench-auth` (2-core AMD EPYC, 2026-12-04, batches of 64):
-- inserting one cost about 114 µs of PostgreSQL's time with its 15 keys under GIN, 44 µs with
-- btree indexes on three typed columns, and 46 µs with a GIN index over `compartments` (one key
-- an event) as well. Every GIN key is an insert into a posting tree; a btree entry is cheap.
--
-- The keys stay on the row, unindexed: they remain what a search matches (store::audit_keys).
-- The indexes only find candidates, and a search adds, for a narrow row, a condition on an
-- indexed column that its key implies (search::audit):
--   patient·Patient/X, entity·Patient/X   X in `compartments` (GIN, usually one key)
--   agent·ref                              `agent_key`, the row's agent reference key
--   agent:identifier·<user system>·sub     `user_sub`
--   entity:identifier[·<request system>]·r `request_id`
--   _tag·[<flag system>·]review            `review_reason` present (a partial index: free for
--                                          the rows without)
-- Rows stored whole (sign-ins, token issue, moved events: few) keep every key under GIN.
DROP INDEX audit_event_keys_idx;
CREATE INDEX audit_event_keys_idx ON audit_event USING GIN (keys) WHERE body IS NOT NULL;
CREATE INDEX audit_event_compartments_idx ON audit_event USING GIN (compartments);
ALTER TABLE audit_event ADD COLUMN agent_key TEXT;
UPDATE audit_event SET agent_key = (
    SELECT k FROM unnest(keys) AS k WHERE k LIKE 'agent' || E'\x1f' || '%' ORDER BY k LIMIT 1)
WHERE body IS NULL;
CREATE INDEX audit_event_agent_key_idx ON audit_event (agent_key);
CREATE INDEX audit_event_user_sub_idx ON audit_event (user_sub);
CREATE INDEX audit_event_request_id_idx ON audit_event (request_id);
CREATE INDEX audit_event_review_idx ON audit_event (rid) WHERE review_reason IS NOT NULL;

-- As migration `audit_keys_no_pending_list`: every partition's GIN indexes without a pending list.
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

CREATE OR REPLACE VIEW audit_resource AS
SELECT a.rid, a.rid AS hid, 'AuditEvent'::text AS res_type, a.id, 1 AS version,
       a.last_updated, FALSE AS deleted, 'POST'::text AS method,
       COALESCE(a.body, audit_event_body(a)) AS body, a.compartments,
       a.sec_labels, '{}'::text[] AS alert_codes, a.org, a.keys, a.recorded,
       CASE WHEN a.body IS NULL THEN audit_event_routine(a) ELSE a.routine END AS routine,
       a.body IS NOT NULL AS whole, a.agent_key, a.user_sub, a.request_id,
       a.review_reason IS NOT NULL AS flagged
FROM audit_event a;
