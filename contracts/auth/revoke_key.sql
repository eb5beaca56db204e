-- Run by: the console's key page and the security team's revoke tool.
-- How often: whenever a tenant or the security team revokes a key (a few a day).
-- @tenant_id STRING
-- @key_id STRING
-- @revoked_by STRING
-- @revoked_reason STRING NULL
UPDATE tenants.tenant_api_keys
SET status = 'REVOKED', revoked_at = CURRENT_TIMESTAMP(), revoked_by = @revoked_by,
  revoked_reason = @revoked_reason, updated_at = CURRENT_TIMESTAMP()
WHERE tenant_id = @tenant_id AND key_id = @key_id AND status = 'ACTIVE'
