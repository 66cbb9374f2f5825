-- Back to one unpartitioned table per index type.


ALTER TABLE idx_string RENAME TO idx_string_split;
CREATE TABLE idx_string (LIKE idx_string_split INCLUDING DEFAULTS);
INSERT INTO idx_string SELECT * FROM idx_string_split;
DROP TABLE idx_string_split;
ALTER TABLE idx_string ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, norm text_pattern_ops);
CREATE INDEX idx_string_rid ON idx_string (rid);
CREATE STATISTICS idx_string_stats (dependencies) ON res_type, param FROM idx_string;

ALTER TABLE idx_token RENAME TO idx_token_split;
CREATE TABLE idx_token (LIKE idx_token_split INCLUDING DEFAULTS);
INSERT INTO idx_token SELECT * FROM idx_token_split;
DROP TABLE idx_token_split;
ALTER TABLE idx_token ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid);
CREATE STATISTICS idx_token_stats (mcv, dependencies) ON res_type, param, code, system FROM idx_token;
ALTER STATISTICS idx_token_stats SET STATISTICS 1000;

ALTER TABLE idx_date RENAME TO idx_date_split;
CREATE TABLE idx_date (LIKE idx_date_split INCLUDING DEFAULTS);
INSERT INTO idx_date SELECT * FROM idx_date_split;
DROP TABLE idx_date_split;
ALTER TABLE idx_date ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, lo, hi);
CREATE INDEX idx_date_rid ON idx_date (rid);
CREATE STATISTICS idx_date_stats (dependencies) ON res_type, param FROM idx_date;

ALTER TABLE idx_reference RENAME TO idx_reference_split;
CREATE TABLE idx_reference (LIKE idx_reference_split INCLUDING DEFAULTS);
INSERT INTO idx_reference SELECT * FROM idx_reference_split;
DROP TABLE idx_reference_split;
ALTER TABLE idx_reference ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type);
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id);
CREATE INDEX idx_reference_rid ON idx_reference (rid);
CREATE STATISTICS idx_reference_stats (mcv, dependencies) ON res_type, param, target_type FROM idx_reference;

ALTER TABLE idx_quantity RENAME TO idx_quantity_split;
CREATE TABLE idx_quantity (LIKE idx_quantity_split INCLUDING DEFAULTS);
INSERT INTO idx_quantity SELECT * FROM idx_quantity_split;
DROP TABLE idx_quantity_split;
ALTER TABLE idx_quantity ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_quantity_lookup ON idx_quantity (res_type, param, code, value);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);

ALTER TABLE idx_number RENAME TO idx_number_split;
CREATE TABLE idx_number (LIKE idx_number_split INCLUDING DEFAULTS);
INSERT INTO idx_number SELECT * FROM idx_number_split;
DROP TABLE idx_number_split;
ALTER TABLE idx_number ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_number_lookup ON idx_number (res_type, param, value);
CREATE INDEX idx_number_rid ON idx_number (rid);

ALTER TABLE idx_uri RENAME TO idx_uri_split;
CREATE TABLE idx_uri (LIKE idx_uri_split INCLUDING DEFAULTS);
INSERT INTO idx_uri SELECT * FROM idx_uri_split;
DROP TABLE idx_uri_split;
ALTER TABLE idx_uri ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_uri_lookup ON idx_uri (res_type, param, uri);
CREATE INDEX idx_uri_rid ON idx_uri (rid);

ALTER TABLE idx_composite RENAME TO idx_composite_split;
CREATE TABLE idx_composite (LIKE idx_composite_split INCLUDING DEFAULTS);
INSERT INTO idx_composite SELECT * FROM idx_composite_split;
DROP TABLE idx_composite_split;
ALTER TABLE idx_composite ADD FOREIGN KEY (rid) REFERENCES resource (rid);
CREATE INDEX idx_composite_lookup ON idx_composite (res_type, param, code, v_value);
CREATE INDEX idx_composite_rid ON idx_composite (rid);
