ALTER TABLE idx_token DROP COLUMN type_system, DROP COLUMN type_code;
