-- pgbench-read.sql: the SQL of one read-by-id (crates/store/src/read.rs, Store::read), on one of
-- the Observations obs-1..obs-:seed that bench.sh created through the server.
--   pgbench -n -M prepared -c 8 -j 2 -T 10 -D seed=2000 -f bench/pgbench-read.sql DBURL
\set n random(1, :seed)
SELECT id, version, last_updated, deleted, body FROM resource WHERE res_type = 'Observation' AND id = 'obs-' || CAST(:n AS text);
