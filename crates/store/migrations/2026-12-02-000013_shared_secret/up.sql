-- Secrets every server process on this database shares (today: the key that seals search page
-- cursors), so that processes behind one load balancer act as one server with no setting to
-- keep equal. The first process to need one stores it; the rest read it.
CREATE TABLE server_secret (
    name text PRIMARY KEY,
    secret text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
