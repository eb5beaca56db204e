-- Run by: the pipelines API (POST /v1/pipelines/{id}/versions/{version}:activate).
-- How often: whenever a tenant activates a pipeline version (a few hundred a day).
-- @tenant_id STRING
-- @pipeline_id STRING
-- @version INT64
-- @updated_by STRING
UPDATE tenants.tenant_pipeline_configs
SET status = IF(version = @version, 'ACTIVE', 'ARCHIVED'), updated_by = @updated_by, updated_at = CURRENT_TIMESTAMP()
WHERE tenant_id = @tenant_id AND pipeline_id = @pipeline_id
  AND (version = @version OR status = 'ACTIVE')
