-- Tables, columns, the view, indexes and default rows of the schema.
BEGIN;
SELECT plan(33);

SELECT has_table('steadytext_cache');
SELECT has_table('steadytext_queue');
SELECT has_table('steadytext_config');
SELECT has_table('steadytext_daemon_health');
SELECT has_table('steadytext_rate_limits');
SELECT has_table('steadytext_audit_log');
SELECT has_view('steadytext_cache_with_frecency');

SELECT columns_are('steadytext_cache', ARRAY[
    'id', 'cache_key', 'prompt', 'response', 'embedding', 'access_count', 'last_accessed',
    'created_at', 'steadytext_cache_hit', 'model_name', 'model_size', 'seed', 'eos_string',
    'generation_params', 'response_size', 'generation_time_ms',
    -- beyond the reference: the role whose call wrote the row (row-level security)
    'created_by']);
SELECT col_type_is('steadytext_cache', 'embedding', 'vector(1024)');
SELECT col_is_unique('steadytext_cache', 'cache_key');
SELECT columns_are('steadytext_queue', ARRAY[
    'id', 'request_id', 'request_type', 'prompt', 'prompts', 'params', 'priority', 'user_id',
    'session_id', 'status', 'result', 'results', 'embedding', 'embeddings', 'error', 'created_at',
    'started_at', 'completed_at', 'processing_time_ms', 'retry_count', 'max_retries',
    'daemon_endpoint', 'worker_id', 'lease_until', 'next_attempt_at', 'wait_time_ms', 'claimed_by_pid']);
SELECT columns_are('steadytext_config', ARRAY['key', 'value', 'description', 'updated_at', 'updated_by']);
SELECT col_type_is('steadytext_config', 'value', 'jsonb');
SELECT columns_are('steadytext_audit_log', ARRAY[
    'id', 'event_id', 'event_type', 'user_id', 'request_id', 'details', 'created_at',
    'ip_address', 'success', 'error_message']);
SELECT columns_are('steadytext_rate_limits', ARRAY[
    'user_id', 'requests_per_minute', 'requests_per_hour', 'requests_per_day',
    'current_minute_count', 'current_hour_count', 'current_day_count', 'last_reset',
    'last_reset_minute', 'last_reset_hour', 'last_reset_day', 'created_at']);
SELECT has_column('steadytext_cache_with_frecency', 'frecency_score');

SELECT is(
    (SELECT indexdef ~ 'USING hnsw \(embedding vector_cosine_ops\)' FROM pg_indexes
     WHERE indexname = 'idx_steadytext_cache_embedding_hnsw'),
    true, 'an HNSW index serves the cache embeddings');
SELECT has_index('steadytext_queue', 'idx_steadytext_queue_status_priority_created');
SELECT has_index('steadytext_queue', 'idx_steadytext_queue_runnable');
SELECT has_view('steadytext_queue_status');

SELECT set_eq(
    'SELECT key, value FROM steadytext_config',
    $$VALUES ('daemon_host', '"localhost"'::jsonb), ('daemon_port', '5555'), ('daemon_auto_start', 'true'),
             ('default_max_tokens', '512'), ('default_seed', '42'), ('cache_enabled', 'false'),
             ('cache_eviction_enabled', 'true'), ('cache_max_entries', '10000'),
             ('cache_max_size_mb', '100'), ('queue_lease_seconds', '60'),
             ('queue_retry_base_seconds', '1')$$,
    'the default configuration rows');
SELECT results_eq(
    'SELECT daemon_id, endpoint, status, uptime_seconds FROM steadytext_daemon_health',
    $$VALUES ('default', 'tcp://localhost:5555', 'unknown', 0)$$,
    'the daemon health seed row');

SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'pg_steadytext'), false, 'not relocatable');
SELECT is((SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
           WHERE e.extname = 'pg_steadytext'), 'public', 'installed in public');
SELECT ok((SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext') ~ '^[0-9]{4}\.[0-9]+\.[0-9]+$'
          AND string_to_array((SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'), '.')::int[]
              > ARRAY[2025, 11, 25],
          'a date-based version above 2025.11.25');
SELECT is(steadytext_version(), (SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'),
          'steadytext_version() is the installed version');
SELECT ok(EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                  WHERE e.extname = 'pg_steadytext' AND d.objid = 'steadytext_cache'::regclass),
          'the tables belong to the extension');
SELECT is((SELECT count(*)::int FROM pg_extension WHERE extname = 'vector'), 1, 'requires vector');

-- The privilege model's roles, and row-level security on the tables that hold callers' data.
SELECT has_role('steadytext_user');
SELECT has_role('steadytext_admin');
SELECT has_role('steadytext_worker');
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'steadytext_cache'::regclass), true,
          'row-level security on steadytext_cache');
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'steadytext_queue'::regclass), true,
          'row-level security on steadytext_queue');

SELECT * FROM finish();
ROLLBACK;
