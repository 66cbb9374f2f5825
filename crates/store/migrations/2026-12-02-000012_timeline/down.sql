DROP TABLE idx_timeline;
