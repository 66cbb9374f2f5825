-- The audit trail's GIN index without its pending list (#18). With fastupdate on (PostgreSQL's
-- default), an insert appends its keys to a pending list, and the insert that finds the list
-- past gin_pending_list_limit (4 MB, about 4,000 events) merges it into the index while its
-- writer waits: under audited reads at 8 clients that stalled a batch every second or so and
-- put the p99 of reads at 42-100 ms. Off, every insert places its keys in the index at once:
-- p99 3.6-3.9 ms, for about 15% more PostgreSQL CPU an event (2-core AMD EPYC, 2026-12-04).
-- A partitioned index cannot take the setting, so each partition's index gets it here and the
-- server sets it on every partition it creates (store::audit_rows::ensure_partition).
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
        PERFORM gin_clean_pending_list(ix);
    END LOOP;
END
$$;
