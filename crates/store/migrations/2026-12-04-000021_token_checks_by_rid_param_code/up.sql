-- A token condition checked per row (`status=active`, `category=laboratory` on a patient's
-- Observations: the fenced checks of the stable search shapes) probed `idx_token` by `rid`
-- alone and fetched every token row of the resource (about seven for an Observation) to filter
-- on parameter and code. With the parameter and code in the key, the probe finds the one
-- matching row, or none, in the index. The old index goes: its one column leads the new key, so
-- every lookup by `rid` alone (clearing a resource's rows, reading them back) is served the
-- same.
--
-- Measured (2-core AMD EPYC, 2026-12-04, auth and audit on, 8 clients): on the `make
-- bench-mixed` database after a ten-minute run (about 200 Observations a patient), pgbench
-- running the recent lab results' statement for random patients on a generic plan went from
-- 566, 562 and 764 tps to 1,096, 1,152 and 1,207, and the server's lab results from 501 and 422
-- to 558 and 493 req/s; the ten-minute mix, 1,114 req/s without against 1,151 with (the last
-- five minutes, as the records grow, about 5% faster). On a fresh record (60 s runs) the mix
-- was within the machine's spread either way.
CREATE INDEX idx_token_rid_param_code ON idx_token (rid, param, code);
DROP INDEX idx_token_rid;
