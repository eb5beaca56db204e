-- Run by: the metering service, adding a batch of counters to a tenant's day.
-- How often: every minute per active tenant.
-- @tenant_id STRING
-- @usage_date DATE
-- @rows_processed INT64
-- @bytes_processed INT64
-- @api_requests INT64
-- @pipeline_runs INT64
-- @compute_seconds INT64
MERGE tenants.tenant_usage_quotas AS u
USING (
  SELECT s.tenant_id, s.subscription_id, s.limits
  FROM tenants.tenant_subscriptions AS s
  WHERE s.tenant_id = @tenant_id AND s.status = 'ACTIVE'
) AS s
ON u.tenant_id = s.tenant_id AND u.usage_date = @usage_date
WHEN MATCHED THEN UPDATE SET
  rows_processed = u.rows_processed + @rows_processed,
  bytes_processed = u.bytes_processed + @bytes_processed,
  api_requests = u.api_requests + @api_requests,
  pipeline_runs = u.pipeline_runs + @pipeline_runs,
  compute_seconds = u.compute_seconds + @compute_seconds,
  updated_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  tenant_id, usage_date, subscription_id, rows_processed, rows_processed_limit, bytes_processed,
  bytes_processed_limit, api_requests, api_requests_limit, pipeline_runs, pipeline_runs_limit, compute_seconds,
  compute_seconds_limit, quota_exceeded, exceeded_quotas, enforcement_action, created_at, updated_at
)
VALUES (
  s.tenant_id, @usage_date, s.subscription_id, @rows_processed, s.limits.daily_row_quota, @bytes_processed,
  s.limits.daily_bytes_quota, @api_requests, s.limits.api_requests_per_day, @pipeline_runs,
  s.limits.pipeline_runs_per_day, @compute_seconds, s.limits.compute_seconds_per_day, FALSE, [], 'NONE',
  CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
)
