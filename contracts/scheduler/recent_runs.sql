-- Run by: the runs API (GET /v1/runs) and the console's runs page.
-- How often: on every page view (a few per second at peak).
-- @tenant_id STRING
-- @since TIMESTAMP
-- @max_rows INT64
SELECT r.run_id, r.pipeline_id, r.pipeline_version, r.scheduled_time, r.trigger_type, r.status, r.started_at,
  r.finished_at, r.rows_processed, r.bytes_processed, r.error.code AS error_code, r.error.message AS error_message
FROM tenants.scheduled_pipeline_runs AS r
WHERE r.tenant_id = @tenant_id AND r.scheduled_time >= @since
ORDER BY r.scheduled_time DESC
LIMIT @max_rows
