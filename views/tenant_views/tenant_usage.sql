-- Each tenant's own usage of the last 90 days against its limits: the reader's identity (SESSION_USER()) picks
-- the tenant whose primary contact it is, so a tenant's reader is granted this view and never the tables.
SELECT
  u.tenant_id,
  u.usage_date,
  u.rows_processed,
  u.rows_processed_limit,
  u.bytes_processed,
  u.bytes_processed_limit,
  u.api_requests,
  u.api_requests_limit,
  u.pipeline_runs
FROM tenants.tenant_usage_quotas AS u
JOIN tenants.tenant_profiles AS p ON p.tenant_id = u.tenant_id
WHERE u.usage_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 90 DAY)
  AND p.primary_contact_email = SESSION_USER()
  AND p.deleted_at IS NULL
