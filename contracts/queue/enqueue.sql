-- Run by: the scheduler, for each run it creates (after scheduler/record_run).
-- How often: once per pipeline run (tens of thousands a day).
-- @tenant_id STRING
-- @queue_entry_id STRING
-- @run_id STRING
-- @pipeline_id STRING
-- @pipeline_version INT64
-- @scheduled_time TIMESTAMP
-- @priority INT64
-- @max_attempts INT64
-- @payload JSON NULL
INSERT INTO tenants.pipeline_execution_queue (
  tenant_id, queue_entry_id, run_id, pipeline_id, pipeline_version, scheduled_time, priority, state, attempt,
  max_attempts, enqueued_at, payload, created_at, updated_at
)
VALUES (
  @tenant_id, @queue_entry_id, @run_id, @pipeline_id, @pipeline_version, @scheduled_time, @priority, 'QUEUED', 0,
  @max_attempts, CURRENT_TIMESTAMP(), @payload, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
)
