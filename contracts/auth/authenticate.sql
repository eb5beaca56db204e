-- Run by: the API gateway, to authenticate a request by the SHA-256 hash of its key.
-- How often: on every API request whose key is not in the gateway's cache (a few per second).
-- @key_prefix STRING
-- @key_hash BYTES
SELECT k.tenant_id, k.key_id, k.scopes, k.expires_at, p.status AS tenant_status, p.tier
FROM tenants.tenant_api_keys AS k
JOIN tenants.tenant_profiles AS p ON p.tenant_id = k.tenant_id
WHERE k.key_prefix = @key_prefix
  AND k.key_hash = @key_hash
  AND k.status = 'ACTIVE'
  AND (k.expires_at IS NULL OR k.expires_at > CURRENT_TIMESTAMP())
  AND p.status = 'ACTIVE'
