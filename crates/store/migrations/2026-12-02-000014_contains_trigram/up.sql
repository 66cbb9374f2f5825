-- `:contains` on names and addresses (Patient?name:contains=…, Organization?address:contains=…)
-- read a trigram index instead of every row of the parameter: LIKE '%text%' cannot use the
-- prefix btree. pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create
-- it. Only the parameters people search by part of a word are indexed, so writes of every other
-- string (codes' text, titles, descriptions) pay nothing; the search's plan is made with its
-- values, so `param = 'family'` proves the partial index applies.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX idx_string_contains ON idx_string USING gin (norm gin_trgm_ops)
    WHERE param IN ('name', 'family', 'given', 'phonetic', 'address', 'address-city',
                    'address-postalcode', 'address-state', 'address-country');
