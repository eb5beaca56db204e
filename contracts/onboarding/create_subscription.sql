-- Run by: the onboarding service, right after create_profile.
-- How often: once per new tenant, and on every plan change.
-- @tenant_id STRING
-- @subscription_id STRING
-- @plan_code STRING
-- @billing_interval STRING
-- @billing_period_start DATE
-- @billing_period_end DATE
-- @trial_end_date DATE NULL
-- @max_pipelines INT64 NULL
-- @max_concurrent_runs INT64 NULL
-- @daily_row_quota INT64 NULL
-- @daily_bytes_quota INT64 NULL
-- @api_requests_per_day INT64 NULL
-- @pipeline_runs_per_day INT64 NULL
-- @compute_seconds_per_day INT64 NULL
-- @max_api_keys INT64 NULL
-- @max_cloud_credentials INT64 NULL
-- @price NUMERIC NULL
-- @currency STRING NULL
INSERT INTO tenants.tenant_subscriptions (
  tenant_id, subscription_id, plan_code, status, billing_interval, billing_period_start, billing_period_end,
  trial_end_date, auto_renew, limits, price, currency, created_at, updated_at
)
VALUES (
  @tenant_id, @subscription_id, @plan_code, 'ACTIVE', @billing_interval, @billing_period_start, @billing_period_end,
  @trial_end_date, TRUE,
  STRUCT(
    @max_pipelines AS max_pipelines, @max_concurrent_runs AS max_concurrent_runs,
    @daily_row_quota AS daily_row_quota, @daily_bytes_quota AS daily_bytes_quota,
    @api_requests_per_day AS api_requests_per_day, @pipeline_runs_per_day AS pipeline_runs_per_day,
    @compute_seconds_per_day AS compute_seconds_per_day, @max_api_keys AS max_api_keys,
    @max_cloud_credentials AS max_cloud_credentials
  ),
  @price, @currency, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
)
