-- The ops page's sessions, kept on the server so that logging out ends one for good: the
-- signed cookie only names its id, and a cookie copied before the logout is refused after.
CREATE TABLE ops_sessions (
    id            TEXT PRIMARY KEY,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER
);
