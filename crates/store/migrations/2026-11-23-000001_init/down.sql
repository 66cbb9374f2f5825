DROP TABLE idx_uri, idx_number, idx_quantity, idx_reference, idx_date, idx_token, idx_string;
DROP TABLE resource_history;
DROP TABLE resource;
