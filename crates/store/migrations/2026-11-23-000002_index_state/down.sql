DROP TABLE index_state;
