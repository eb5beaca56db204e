-- Run by: the API gateway and the scheduler, before admitting a request or a run; the console's usage page.
-- How often: every minute per active tenant, and on every usage page view.
-- @tenant_id STRING
-- @from_date DATE
-- @to_date DATE
SELECT u.usage_date, u.rows_processed, u.rows_processed_limit, u.bytes_processed, u.bytes_processed_limit,
  u.api_requests, u.api_requests_limit, u.pipeline_runs, u.pipeline_runs_limit, u.compute_seconds,
  u.compute_seconds_limit, u.quota_exceeded, u.exceeded_quotas, u.enforcement_action, s.plan_code
FROM tenants.tenant_usage_quotas AS u
LEFT JOIN tenants.tenant_subscriptions AS s ON s.subscription_id = u.subscription_id
WHERE u.tenant_id = @tenant_id AND u.usage_date BETWEEN @from_date AND @to_date
ORDER BY u.usage_date
