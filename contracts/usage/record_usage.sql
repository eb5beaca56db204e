-- Run by: the metering service, adding a batch of counters to a tenant's day (after open_day).
-- How often: every minute per active tenant.
-- @tenant_id STRING
-- @usage_date DATE
-- @rows_processed INT64
-- @bytes_processed INT64
-- @api_requests INT64
-- @pipeline_runs INT64
-- @compute_seconds INT64
UPDATE tenants.tenant_usage_quotas
SET rows_processed = rows_processed + @rows_processed,
  bytes_processed = bytes_processed + @bytes_processed,
  api_requests = api_requests + @api_requests,
  pipeline_runs = pipeline_runs + @pipeline_runs,
  compute_seconds = compute_seconds + @compute_seconds,
  updated_at = CURRENT_TIMESTAMP()
WHERE tenant_id = @tenant_id AND usage_date = @usage_date
