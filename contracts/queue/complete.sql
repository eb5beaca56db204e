-- Run by: a pipeline worker when its run ends, successfully or not.
-- How often: once per pipeline run.
-- @queue_entry_id STRING
-- @worker_id STRING
-- @state STRING
-- @error_code STRING NULL
-- @error_message STRING NULL
UPDATE tenants.pipeline_execution_queue
SET state = @state, completed_at = CURRENT_TIMESTAMP(), lease_owner = NULL, lease_expires_at = NULL,
  last_error = IF(@error_code IS NULL, last_error, STRUCT(@error_code AS code, @error_message AS message)),
  updated_at = CURRENT_TIMESTAMP()
WHERE queue_entry_id = @queue_entry_id AND lease_owner = @worker_id AND state = 'LEASED'
