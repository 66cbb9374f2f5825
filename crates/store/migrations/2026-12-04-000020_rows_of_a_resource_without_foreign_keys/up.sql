-- The rows that belong to a resource row (its versions in `resource_history`, its search index
-- rows, its timeline rows) lose their foreign keys to `resource` (#18). Each key checked every
-- inserted row with a query of its own (`SELECT … FOR KEY SHARE` through a trigger): about a
-- dozen per resource written. Measured with `invicta load` (audit on) of 30,447 generated
-- resources into a fresh database, runs taking turns (2-core Intel Xeon, 2026-12-04): with the
-- keys dropped by hand, 4,504, 4,759 and 4,644 resources/s with them against 5,234, 6,016 and
-- 5,640 without; with this migration, an hour later, 3,439 and 3,858 against 4,127 and 4,296.
--
-- What the keys guarded is the store's own invariant: these rows are written only by
-- `store::write` and `store::index_rows`, in the transaction that writes their resource row,
-- and no resource row is ever deleted except by the move of legacy AuditEvents, which deletes
-- their rows first. A store test checks after every kind of write (create, update, delete,
-- transaction, rollback, reindex) that no such row lacks its resource.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conrelid::regclass AS tbl, conname
        FROM pg_constraint
        WHERE contype = 'f' AND confrelid = 'resource'::regclass AND conparentid = 0
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END
$$;
