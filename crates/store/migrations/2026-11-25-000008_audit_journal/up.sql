-- The audit journal: each AuditEvent as one narrow row, committed before its response is sent
-- (or with the write it records). A projector moves rows into AuditEvent resources with their
-- index rows in large batches, deleting them from here in the same transaction, and anything
-- that reads AuditEvents drains the journal first, so no event is lost or seen twice.
CREATE TABLE audit_journal (
    seq BIGSERIAL PRIMARY KEY,
    body BYTEA NOT NULL
);
