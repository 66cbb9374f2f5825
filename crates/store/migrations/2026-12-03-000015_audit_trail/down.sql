DROP VIEW IF EXISTS audit_resource;
DROP TABLE IF EXISTS audit_event;
