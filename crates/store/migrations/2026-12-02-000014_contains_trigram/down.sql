DROP INDEX IF EXISTS idx_string_contains;
