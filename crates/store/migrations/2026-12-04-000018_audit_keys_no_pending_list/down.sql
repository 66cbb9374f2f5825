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
        EXECUTE format('ALTER INDEX %s RESET (fastupdate)', ix);
    END LOOP;
END
$$;
