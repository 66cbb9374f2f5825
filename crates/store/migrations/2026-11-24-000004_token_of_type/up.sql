-- Identifier.type codings beside the identifier, for the :of-type modifier. Only rows with a type
-- carry them; the rebuild at start fills them for existing resources.
ALTER TABLE idx_token ADD COLUMN type_system TEXT, ADD COLUMN type_code TEXT;
