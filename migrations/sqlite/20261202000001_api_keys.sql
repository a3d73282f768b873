-- tower-api-auth: the server side's API keys. Never the plaintext key: its SHA-256 digest.
-- Times are Unix milliseconds. Every change takes the next global revision (a single counter
-- row), so a follower asks for "rows above the revision I have" and never misses or re-applies.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    start        TEXT    NOT NULL,
    digest       BLOB    NOT NULL UNIQUE,
    principal    TEXT    NOT NULL,
    organization TEXT,
    scopes       TEXT    NOT NULL DEFAULT '[]',
    metadata     TEXT    NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    revision     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_revision ON api_keys (revision);
CREATE INDEX api_keys_by_principal ON api_keys (principal);

CREATE TABLE api_keys_revision (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    revision INTEGER NOT NULL
);
INSERT INTO api_keys_revision (one, revision) VALUES (1, 0);

CREATE TRIGGER api_keys_inserted AFTER INSERT ON api_keys
BEGIN
    UPDATE api_keys_revision SET revision = revision + 1;
    UPDATE api_keys SET revision = (SELECT revision FROM api_keys_revision) WHERE id = NEW.id;
END;

-- `last_used_at` is not a change a server must see: writing it takes no revision.
CREATE TRIGGER api_keys_updated
AFTER UPDATE OF id, start, digest, principal, organization, scopes, metadata, created_at,
    expires_at, revoked_at ON api_keys
BEGIN
    UPDATE api_keys_revision SET revision = revision + 1;
    UPDATE api_keys SET revision = (SELECT revision FROM api_keys_revision) WHERE id = NEW.id;
END;

-- A server's snapshot is keyed by digest: a digest changed in place would leave the old key
-- admitted. Rolling a key inserts a new row instead.
CREATE TRIGGER api_keys_digest_fixed BEFORE UPDATE OF digest ON api_keys
WHEN NEW.digest <> OLD.digest
BEGIN
    SELECT RAISE(ABORT, 'an API key''s digest never changes: issue a new key');
END;
