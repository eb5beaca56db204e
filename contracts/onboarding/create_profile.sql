-- Run by: the onboarding service, in the sign-up flow (POST /v1/tenants).
-- How often: once per new tenant.
-- @tenant_id STRING
-- @display_name STRING
-- @legal_name STRING NULL
-- @tier STRING
-- @primary_contact_email STRING
-- @billing_contact_email STRING NULL
-- @data_residency_region STRING
-- @country_code STRING NULL
-- @created_by STRING
INSERT INTO tenants.tenant_profiles (
  tenant_id, display_name, legal_name, status, tier, primary_contact_email, billing_contact_email,
  data_residency_region, country_code, created_by, created_at, updated_at
)
VALUES (
  @tenant_id, @display_name, @legal_name, 'PROVISIONING', @tier, @primary_contact_email, @billing_contact_email,
  @data_residency_region, @country_code, @created_by, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
)
