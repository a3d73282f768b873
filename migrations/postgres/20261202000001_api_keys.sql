-- tower-api-auth: the server side's API keys. Never the plaintext key: its SHA-256 digest.
-- Times are Unix milliseconds. Every change takes the next global revision from a single
-- counter row: its row lock makes writers commit in revision order, so a follower asking for
-- "rows above the revision I have" can never skip one that commits late. The trigger then
-- NOTIFYs the revision; PostgreSQL delivers it at commit.
CREATE TABLE api_keys (
    id           TEXT   PRIMARY KEY,
    start        TEXT   NOT NULL,
    digest       BYTEA  NOT NULL UNIQUE,
    principal    TEXT   NOT NULL,
    organization TEXT,
    scopes       TEXT   NOT NULL DEFAULT '[]',
    metadata     TEXT   NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    revision     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_revision ON api_keys (revision);
CREATE INDEX api_keys_by_principal ON api_keys (principal);

CREATE TABLE api_keys_revision (
    one      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    revision BIGINT  NOT NULL
);
INSERT INTO api_keys_revision (one, revision) VALUES (TRUE, 0);

CREATE FUNCTION api_keys_next_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    next BIGINT;
BEGIN
    -- A server's snapshot is keyed by digest: a digest changed in place would leave the old
    -- key admitted. Rolling a key inserts a new row instead.
    IF TG_OP = 'UPDATE' AND NEW.digest <> OLD.digest THEN
        RAISE EXCEPTION 'an API key''s digest never changes: issue a new key';
    END IF;
    UPDATE api_keys_revision SET revision = revision + 1 RETURNING revision INTO next;
    NEW.revision := next;
    PERFORM pg_notify('tower_api_auth_keys', next::text);
    RETURN NEW;
END
$$;

-- `last_used_at` is not a change a server must see: writing it takes no revision.
CREATE TRIGGER api_keys_changed
BEFORE INSERT OR UPDATE OF id, start, digest, principal, organization, scopes, metadata,
    created_at, expires_at, revoked_at ON api_keys
FOR EACH ROW EXECUTE FUNCTION api_keys_next_revision();
