-- Writes the rows back from the resource rows, as extraction made them: the id as a token
-- without system, the last update as the millisecond it names.
INSERT INTO idx_token (rid, res_type, param, system, code, text)
SELECT rid, res_type, '_id', NULL, id, NULL FROM resource WHERE NOT deleted;
INSERT INTO idx_date (rid, res_type, param, lo, hi)
SELECT rid, res_type, '_lastUpdated', last_updated, last_updated + interval '1 millisecond'
FROM resource WHERE NOT deleted;
