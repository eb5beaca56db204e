-- Run by: the onboarding service (the tenant's first key), later the console's key page.
-- How often: once per new tenant, then whenever a tenant creates a key.
-- @tenant_id STRING
-- @key_id STRING
-- @name STRING
-- @key_prefix STRING
-- @key_hash BYTES
-- @scopes ARRAY<STRING>
-- @created_by STRING
-- @expires_at TIMESTAMP NULL
INSERT INTO tenants.tenant_api_keys (
  tenant_id, key_id, name, key_prefix, key_hash, hash_algorithm, scopes, status, created_by, created_at,
  updated_at, expires_at
)
VALUES (
  @tenant_id, @key_id, @name, @key_prefix, @key_hash, 'SHA256', @scopes, 'ACTIVE', @created_by,
  CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP(), @expires_at
)
