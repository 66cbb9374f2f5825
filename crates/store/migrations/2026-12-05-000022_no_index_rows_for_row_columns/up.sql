-- `_id` and `_lastUpdated` are columns of the resource row (`id`, `last_updated`), and every
-- search reads them there (crate `search`: `_id`, `_id:not`, `:missing`, `_lastUpdated`, the
-- sorts). Their index rows, one in `idx_token` and one in `idx_date` for every resource, were
-- written with every version and never read: two of an Observation's fourteen index rows,
-- with their two btree entries each. Extraction no longer makes them
-- (`fhir_model::index::ROW_COLUMNS`); this removes those already written.
DELETE FROM idx_token WHERE param = '_id';
DELETE FROM idx_date WHERE param = '_lastUpdated';
