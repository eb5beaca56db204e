-- Run by: the pipelines API (POST /v1/pipelines and every edit, which adds a version).
-- How often: whenever a tenant creates or edits a pipeline (a few hundred a day).
-- @tenant_id STRING
-- @pipeline_id STRING
-- @version INT64
-- @name STRING
-- @description STRING NULL
-- @source_connector_type STRING
-- @source_credential_id STRING NULL
-- @source_options JSON NULL
-- @destination_connector_type STRING
-- @destination_credential_id STRING NULL
-- @destination_options JSON NULL
-- @write_disposition STRING
-- @cron_expression STRING
-- @timezone STRING
-- @timeout_seconds INT64 NULL
-- @created_by STRING
INSERT INTO tenants.tenant_pipeline_configs (
  tenant_id, pipeline_id, version, name, description, status, source, destination, schedule, timeout_seconds,
  created_by, created_at, updated_at
)
VALUES (
  @tenant_id, @pipeline_id, @version, @name, @description, 'DRAFT',
  STRUCT(@source_connector_type AS connector_type, @source_credential_id AS credential_id, @source_options AS options),
  STRUCT(
    @destination_connector_type AS connector_type, @destination_credential_id AS credential_id,
    @destination_options AS options, @write_disposition AS write_disposition
  ),
  STRUCT(
    @cron_expression AS cron_expression, @timezone AS timezone, TRUE AS enabled,
    CAST(NULL AS TIMESTAMP) AS start_at, CAST(NULL AS TIMESTAMP) AS end_at
  ),
  @timeout_seconds, @created_by, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()
)
