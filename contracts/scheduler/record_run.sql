-- Run by: the scheduler, when a schedule fires or a run is requested (MANUAL, API, RETRY).
-- How often: once per pipeline run (tens of thousands a day).
-- @tenant_id STRING
-- @run_id STRING
-- @pipeline_id STRING
-- @pipeline_version INT64
-- @scheduled_time TIMESTAMP
-- @trigger_type STRING
-- @triggered_by STRING NULL
-- @retry_of_run_id STRING NULL
-- @attempt INT64
INSERT INTO tenants.scheduled_pipeline_runs (
  tenant_id, run_id, pipeline_id, pipeline_version, scheduled_time, trigger_type, triggered_by, retry_of_run_id,
  attempt, status, created_at, updated_at
)
VALUES (
  @tenant_id, @run_id, @pipeline_id, @pipeline_version, @scheduled_time, @trigger_type, @triggered_by,
  @retry_of_run_id, @attempt, 'QUEUED', CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
)
