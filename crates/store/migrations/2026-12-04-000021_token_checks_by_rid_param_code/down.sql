CREATE INDEX idx_token_rid ON idx_token (rid);
DROP INDEX idx_token_rid_param_code;
