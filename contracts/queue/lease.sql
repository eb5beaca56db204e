-- Run by: every pipeline worker, to take the most urgent due entry.
-- How often: every few seconds per idle worker.
-- @worker_id STRING
-- @lease_seconds INT64
UPDATE tenants.pipeline_execution_queue
SET state = 'LEASED', lease_owner = @worker_id,
  lease_expires_at = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL @lease_seconds SECOND),
  attempt = attempt + 1, updated_at = CURRENT_TIMESTAMP()
WHERE queue_entry_id = (
  SELECT q.queue_entry_id
  FROM tenants.pipeline_execution_queue AS q
  WHERE q.state = 'QUEUED' AND q.scheduled_time <= CURRENT_TIMESTAMP()
  ORDER BY q.priority DESC, q.scheduled_time
  LIMIT 1
)
AND state = 'QUEUED'
