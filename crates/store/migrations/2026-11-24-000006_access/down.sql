DROP TABLE care_relationship;
DROP INDEX history_compartments;
ALTER TABLE resource_history DROP COLUMN compartments, DROP COLUMN sec_labels, DROP COLUMN alert_codes, DROP COLUMN org;
ALTER TABLE resource DROP COLUMN sec_labels, DROP COLUMN alert_codes, DROP COLUMN org;
