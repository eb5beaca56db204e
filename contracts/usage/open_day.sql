-- Run by: the metering service, before its first record_usage of a tenant's day: the day's row, with the
-- limits of the tenant's active subscription.
-- How often: once per active tenant per UTC day.
-- @tenant_id STRING
-- @usage_date DATE
INSERT INTO tenants.tenant_usage_quotas (
  tenant_id, usage_date, subscription_id, rows_processed, rows_processed_limit, bytes_processed,
  bytes_processed_limit, api_requests, api_requests_limit, pipeline_runs, pipeline_runs_limit, compute_seconds,
  compute_seconds_limit, quota_exceeded, exceeded_quotas, enforcement_action, created_at, updated_at
)
SELECT s.tenant_id, @usage_date, s.subscription_id, 0, s.limits.daily_row_quota, 0, s.limits.daily_bytes_quota, 0,
  s.limits.api_requests_per_day, 0, s.limits.pipeline_runs_per_day, 0, s.limits.compute_seconds_per_day, FALSE, [],
  'NONE', CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
FROM tenants.tenant_subscriptions AS s
WHERE s.tenant_id = @tenant_id AND s.status = 'ACTIVE'
  AND NOT EXISTS (
    SELECT 1 FROM tenants.tenant_usage_quotas AS u WHERE u.tenant_id = @tenant_id AND u.usage_date = @usage_date
  )
