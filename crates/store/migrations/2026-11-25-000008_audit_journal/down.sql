DROP TABLE audit_journal;
