-- The audit trail's index rows apart from the clinical record's: every index table becomes a
-- table partitioned by resource type, with AuditEvent rows in their own partition and every
-- other type in the `_record` partition. A clinical search names its types, so the planner
-- prunes the audit partition and plans from the clinical rows' statistics alone; before this,
-- tens of thousands of AuditEvents' rows (about 17 per read) skewed the shared statistics and
-- flipped care-record searches to worse plans as the record was used.


ALTER TABLE idx_string RENAME TO idx_string_unsplit;
CREATE TABLE idx_string (LIKE idx_string_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_string_audit PARTITION OF idx_string FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_string_record PARTITION OF idx_string DEFAULT;
INSERT INTO idx_string SELECT * FROM idx_string_unsplit;
DROP TABLE idx_string_unsplit;
ALTER TABLE idx_string ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, norm text_pattern_ops);
CREATE INDEX idx_string_rid ON idx_string (rid);
CREATE STATISTICS idx_string_record_stats (dependencies) ON res_type, param FROM idx_string_record;
CREATE STATISTICS idx_string_audit_stats (dependencies) ON res_type, param FROM idx_string_audit;
ANALYZE idx_string;

ALTER TABLE idx_token RENAME TO idx_token_unsplit;
CREATE TABLE idx_token (LIKE idx_token_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_token_audit PARTITION OF idx_token FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_token_record PARTITION OF idx_token DEFAULT;
INSERT INTO idx_token SELECT * FROM idx_token_unsplit;
DROP TABLE idx_token_unsplit;
ALTER TABLE idx_token ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid);
CREATE STATISTICS idx_token_record_stats (mcv, dependencies) ON res_type, param, code, system FROM idx_token_record;
ALTER STATISTICS idx_token_record_stats SET STATISTICS 1000;
CREATE STATISTICS idx_token_audit_stats (mcv, dependencies) ON res_type, param, code, system FROM idx_token_audit;
ALTER STATISTICS idx_token_audit_stats SET STATISTICS 1000;
ANALYZE idx_token;

ALTER TABLE idx_date RENAME TO idx_date_unsplit;
CREATE TABLE idx_date (LIKE idx_date_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_date_audit PARTITION OF idx_date FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_date_record PARTITION OF idx_date DEFAULT;
INSERT INTO idx_date SELECT * FROM idx_date_unsplit;
DROP TABLE idx_date_unsplit;
ALTER TABLE idx_date ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, lo, hi);
CREATE INDEX idx_date_rid ON idx_date (rid);
CREATE STATISTICS idx_date_record_stats (dependencies) ON res_type, param FROM idx_date_record;
CREATE STATISTICS idx_date_audit_stats (dependencies) ON res_type, param FROM idx_date_audit;
ANALYZE idx_date;

ALTER TABLE idx_reference RENAME TO idx_reference_unsplit;
CREATE TABLE idx_reference (LIKE idx_reference_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_reference_audit PARTITION OF idx_reference FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_reference_record PARTITION OF idx_reference DEFAULT;
INSERT INTO idx_reference SELECT * FROM idx_reference_unsplit;
DROP TABLE idx_reference_unsplit;
ALTER TABLE idx_reference ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type);
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id);
CREATE INDEX idx_reference_rid ON idx_reference (rid);
CREATE STATISTICS idx_reference_record_stats (mcv, dependencies) ON res_type, param, target_type FROM idx_reference_record;
CREATE STATISTICS idx_reference_audit_stats (mcv, dependencies) ON res_type, param, target_type FROM idx_reference_audit;
ANALYZE idx_reference;

ALTER TABLE idx_quantity RENAME TO idx_quantity_unsplit;
CREATE TABLE idx_quantity (LIKE idx_quantity_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_quantity_audit PARTITION OF idx_quantity FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_quantity_record PARTITION OF idx_quantity DEFAULT;
INSERT INTO idx_quantity SELECT * FROM idx_quantity_unsplit;
DROP TABLE idx_quantity_unsplit;
ALTER TABLE idx_quantity ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_quantity_lookup ON idx_quantity (res_type, param, code, value);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);
ANALYZE idx_quantity;

ALTER TABLE idx_number RENAME TO idx_number_unsplit;
CREATE TABLE idx_number (LIKE idx_number_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_number_audit PARTITION OF idx_number FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_number_record PARTITION OF idx_number DEFAULT;
INSERT INTO idx_number SELECT * FROM idx_number_unsplit;
DROP TABLE idx_number_unsplit;
ALTER TABLE idx_number ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_number_lookup ON idx_number (res_type, param, value);
CREATE INDEX idx_number_rid ON idx_number (rid);
ANALYZE idx_number;

ALTER TABLE idx_uri RENAME TO idx_uri_unsplit;
CREATE TABLE idx_uri (LIKE idx_uri_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_uri_audit PARTITION OF idx_uri FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_uri_record PARTITION OF idx_uri DEFAULT;
INSERT INTO idx_uri SELECT * FROM idx_uri_unsplit;
DROP TABLE idx_uri_unsplit;
ALTER TABLE idx_uri ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_uri_lookup ON idx_uri (res_type, param, uri);
CREATE INDEX idx_uri_rid ON idx_uri (rid);
ANALYZE idx_uri;

ALTER TABLE idx_composite RENAME TO idx_composite_unsplit;
CREATE TABLE idx_composite (LIKE idx_composite_unsplit INCLUDING DEFAULTS) PARTITION BY LIST (res_type);
CREATE TABLE idx_composite_audit PARTITION OF idx_composite FOR VALUES IN ('AuditEvent');
CREATE TABLE idx_composite_record PARTITION OF idx_composite DEFAULT;
INSERT INTO idx_composite SELECT * FROM idx_composite_unsplit;
DROP TABLE idx_composite_unsplit;
ALTER TABLE idx_composite ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_composite_lookup ON idx_composite (res_type, param, code, v_value);
CREATE INDEX idx_composite_rid ON idx_composite (rid);
ANALYZE idx_composite;
