-- Run by: the queue sweeper, putting back entries whose worker let the lease lapse.
-- How often: every minute.
UPDATE tenants.pipeline_execution_queue
SET state = IF(attempt >= max_attempts, 'DEAD_LETTER', 'QUEUED'),
  completed_at = IF(attempt >= max_attempts, CURRENT_TIMESTAMP(), NULL),
  lease_owner = NULL, lease_expires_at = NULL,
  last_error = STRUCT('LEASE_EXPIRED' AS code, 'the worker let its lease lapse' AS message),
  updated_at = CURRENT_TIMESTAMP()
WHERE state = 'LEASED' AND lease_expires_at < CURRENT_TIMESTAMP()
