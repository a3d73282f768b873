-- tower-api-auth: a key is revoked before its row is deleted. Servers learn of a change by its
-- revision; a deleted row takes none, so a key deleted while valid would stay admitted by every
-- running server until it restarts. A revoked key's row may be deleted: it is refused either way.
CREATE FUNCTION api_keys_refuse_live_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NULL THEN
        RAISE EXCEPTION 'revoke an API key before deleting it: running servers learn of revocations, not of deletions';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER api_keys_deleted
BEFORE DELETE ON api_keys
FOR EACH ROW EXECUTE FUNCTION api_keys_refuse_live_delete();

-- TRUNCATE fires no row trigger: refused outright (delete revoked keys' rows instead).
CREATE FUNCTION api_keys_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'revoke API keys and delete their rows instead of truncating: running servers learn of revocations, not of deletions';
END
$$;

CREATE TRIGGER api_keys_truncated
BEFORE TRUNCATE ON api_keys
FOR EACH STATEMENT EXECUTE FUNCTION api_keys_refuse_truncate();
