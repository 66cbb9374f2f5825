DROP TABLE person_identity;
