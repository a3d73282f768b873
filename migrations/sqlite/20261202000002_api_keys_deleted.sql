-- tower-api-auth: a key is revoked before its row is deleted. Servers learn of a change by its
-- revision; a deleted row takes none, so a key deleted while valid would stay admitted by every
-- running server until it restarts. A revoked key's row may be deleted: it is refused either way.
CREATE TRIGGER api_keys_deleted BEFORE DELETE ON api_keys
WHEN OLD.revoked_at IS NULL
BEGIN
    SELECT RAISE(ABORT, 'revoke an API key before deleting it: running servers learn of revocations, not of deletions');
END;
