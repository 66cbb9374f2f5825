-- Which search-parameter definitions the index rows were built from. When the server starts with
-- different definitions it rebuilds the index rows of every current resource.
CREATE TABLE index_state (
    singleton        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    definitions_hash TEXT        NOT NULL,
    rebuilt_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
