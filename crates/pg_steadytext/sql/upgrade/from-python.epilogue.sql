-- ---------------------------------------------------------------------------------------------
-- The Python extension's rows, copied into this version's tables (see from-python.prologue.sql).
-- ---------------------------------------------------------------------------------------------
--
--   steadytext_config         every row; for this version's numeric and boolean keys, JSON
--                             strings (what the Python steadytext_config_set stored for every
--                             value) become numbers and booleans; a value this version refuses
--                             keeps the default and is named in a WARNING
--   steadytext_queue          every row; 'processing' rows go back to 'pending' (the Python
--                             worker that held them cannot finish them any more); embed rows
--                             get their text in `prompt`, where this version's workers read it;
--                             pending rows naming a model by path fail (see below)
--   steadytext_cache          dropped, counted in a WARNING: their keys are the prompt alone,
--                             without max_tokens, seed or model, so serving them would answer
--                             one request with another's result; they are recomputed on demand
--   the other tables          every row as it was; of several active versions of one prompt,
--                             the newest stays active (this version allows one)
--
-- Every role could write these tables under the Python extension. Rows are copied as data only
-- (no dynamic SQL is built from them), and the one place where a row decides what a worker
-- opens, a queued request's model, is checked as the *_async functions check it now.
--
-- Ids and sequences continue where they were. One audit row records the upgrade and its
-- counts. The messages are WARNINGs: PostgreSQL raises client_min_messages to WARNING while an
-- extension script runs, so a NOTICE would never be shown.

-- Names resolve in pg_catalog alone while this script runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

DO $epilogue$
DECLARE
    r record;
    numeric_keys text[] := ARRAY['daemon_port', 'default_max_tokens', 'default_seed',
                                 'cache_max_entries', 'cache_max_size_mb'];
    boolean_keys text[] := ARRAY['daemon_auto_start', 'cache_enabled', 'cache_eviction_enabled'];
    config_kept int := 0;
    config_converted int := 0;
    config_refused text[] := '{}';
    converted jsonb;
    queue_rows int;
    queue_requeued int;
    queue_refused int;
    cache_dropped bigint;
    prompts_kept int;
    versions_kept int;
    versions_deactivated int;
    health_kept int;
    limits_kept int;
    audit_kept int;
BEGIN
    -- Configuration: written through the checks of this version (not its audit trigger: the
    -- upgrade is one audit event, below), then the rows' own update times and roles restored.
    ALTER TABLE @extschema@.steadytext_config DISABLE TRIGGER steadytext_config_audit;
    FOR r IN SELECT o.key, o.value, o.description, o.updated_at, o.updated_by
             FROM _steadytext_python.steadytext_config o ORDER BY o.key LOOP
        converted := CASE
            WHEN jsonb_typeof(r.value) = 'string' AND lower(r.key) = ANY (numeric_keys)
                 AND btrim(r.value #>> '{}') ~ '^-?[0-9]+(\.[0-9]+)?$'
                THEN to_jsonb(btrim(r.value #>> '{}')::numeric)
            WHEN jsonb_typeof(r.value) = 'string' AND lower(r.key) = ANY (boolean_keys)
                 AND lower(btrim(r.value #>> '{}')) IN ('true', 'false')
                THEN to_jsonb(lower(btrim(r.value #>> '{}'))::boolean)
            ELSE r.value END;
        BEGIN
            INSERT INTO @extschema@.steadytext_config AS c (key, value, description)
            VALUES (r.key, converted, r.description)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                description = coalesce(c.description, EXCLUDED.description);
            ALTER TABLE @extschema@.steadytext_config DISABLE TRIGGER steadytext_config_check;
            UPDATE @extschema@.steadytext_config c
            SET updated_at = r.updated_at, updated_by = r.updated_by WHERE c.key = r.key;
            ALTER TABLE @extschema@.steadytext_config ENABLE TRIGGER steadytext_config_check;
            config_kept := config_kept + 1;
            IF converted IS DISTINCT FROM r.value THEN
                config_converted := config_converted + 1;
            END IF;
        EXCEPTION WHEN raise_exception THEN
            config_refused := config_refused || format('%s = %s (%s)', r.key, r.value, SQLERRM);
        END;
    END LOOP;
    ALTER TABLE @extschema@.steadytext_config ENABLE TRIGGER steadytext_config_audit;

    INSERT INTO @extschema@.steadytext_queue (
        id, request_id, request_type, prompt, prompts, params, priority, user_id, session_id,
        status, result, results, embedding, embeddings, error, created_at, started_at,
        completed_at, processing_time_ms, retry_count, max_retries, daemon_endpoint)
    SELECT o.id, o.request_id, o.request_type,
           CASE WHEN o.request_type = 'embed' AND o.prompt IS NULL
                THEN o.params ->> 'text_input' ELSE o.prompt END,
           o.prompts, o.params, coalesce(o.priority, 5), o.user_id, o.session_id,
           CASE WHEN o.status = 'processing' THEN 'pending' ELSE coalesce(o.status, 'pending') END,
           o.result, o.results, o.embedding, o.embeddings, o.error, coalesce(o.created_at, now()),
           CASE WHEN o.status = 'processing' THEN NULL ELSE o.started_at END,
           o.completed_at, o.processing_time_ms, coalesce(o.retry_count, 0),
           coalesce(o.max_retries, 3), o.daemon_endpoint
    FROM _steadytext_python.steadytext_queue o ORDER BY o.id;
    GET DIAGNOSTICS queue_rows = ROW_COUNT;
    SELECT count(*) INTO queue_requeued
    FROM _steadytext_python.steadytext_queue o WHERE o.status = 'processing';
    -- This version's workers trust a row's model because the *_async functions checked it when
    -- they queued it: a model given by path (which only a superuser may name) is not accepted
    -- from a row any role could have written.
    UPDATE @extschema@.steadytext_queue q
    SET status = 'failed', completed_at = now(),
        error = format('model ''%s'' names a file by path; this version accepts a model path '
                       'from the *_async functions only: queue the request again',
                       q.params ->> 'model')
    WHERE q.status = 'pending' AND q.params ? 'model'
      AND (q.params ->> 'model' LIKE '%/%' OR q.params ->> 'model' LIKE '%\\%'
           OR q.params ->> 'model' LIKE '%..%');
    GET DIAGNOSTICS queue_refused = ROW_COUNT;

    SELECT count(*) INTO cache_dropped FROM _steadytext_python.steadytext_cache;

    DELETE FROM @extschema@.steadytext_daemon_health;
    INSERT INTO @extschema@.steadytext_daemon_health (
        daemon_id, endpoint, last_heartbeat, uptime_seconds, status, version, models_loaded,
        memory_usage_mb, active_connections, total_requests, error_count, avg_response_time_ms)
    SELECT o.daemon_id, o.endpoint, o.last_heartbeat, o.uptime_seconds, o.status, o.version,
           o.models_loaded, o.memory_usage_mb, o.active_connections, o.total_requests,
           o.error_count, o.avg_response_time_ms
    FROM _steadytext_python.steadytext_daemon_health o;
    GET DIAGNOSTICS health_kept = ROW_COUNT;
    IF health_kept = 0 THEN
        INSERT INTO @extschema@.steadytext_daemon_health (daemon_id, endpoint, status, uptime_seconds)
        VALUES ('default', 'tcp://localhost:5555', 'unknown', 0);
    END IF;

    INSERT INTO @extschema@.steadytext_rate_limits (
        user_id, requests_per_minute, requests_per_hour, requests_per_day, current_minute_count,
        current_hour_count, current_day_count, last_reset, last_reset_minute, last_reset_hour,
        last_reset_day, created_at)
    SELECT o.user_id, o.requests_per_minute, o.requests_per_hour, o.requests_per_day,
           o.current_minute_count, o.current_hour_count, o.current_day_count, o.last_reset,
           o.last_reset_minute, o.last_reset_hour, o.last_reset_day, o.created_at
    FROM _steadytext_python.steadytext_rate_limits o;
    GET DIAGNOSTICS limits_kept = ROW_COUNT;

    INSERT INTO @extschema@.steadytext_audit_log (
        id, event_id, event_type, user_id, request_id, details, created_at, ip_address, success,
        error_message)
    SELECT o.id, o.event_id, o.event_type, o.user_id, o.request_id, o.details, o.created_at,
           o.ip_address, o.success, o.error_message
    FROM _steadytext_python.steadytext_audit_log o ORDER BY o.id;
    GET DIAGNOSTICS audit_kept = ROW_COUNT;

    INSERT INTO @extschema@.steadytext_prompts (
        id, slug, description, created_at, created_by, updated_at, updated_by)
    SELECT o.id, o.slug, o.description, o.created_at, o.created_by, o.updated_at, o.updated_by
    FROM _steadytext_python.steadytext_prompts o;
    GET DIAGNOSTICS prompts_kept = ROW_COUNT;
    INSERT INTO @extschema@.steadytext_prompt_versions (
        id, prompt_id, version, template, required_variables, metadata, created_at, created_by,
        is_active)
    SELECT v.id, v.prompt_id, v.version, v.template, v.required_variables, v.metadata,
           v.created_at, v.created_by,
           v.is_active AND v.version = max(v.version) FILTER (WHERE v.is_active)
                                           OVER (PARTITION BY v.prompt_id)
    FROM _steadytext_python.steadytext_prompt_versions v;
    GET DIAGNOSTICS versions_kept = ROW_COUNT;
    SELECT count(*) - count(DISTINCT v.prompt_id) INTO versions_deactivated
    FROM _steadytext_python.steadytext_prompt_versions v WHERE v.is_active;

    -- Ids go on after both the Python sequences' last values and the highest id copied.
    PERFORM setval('@extschema@.steadytext_queue_id_seq', n, true)
    FROM (SELECT greatest((SELECT CASE WHEN s.is_called THEN s.last_value END
                           FROM _steadytext_python.steadytext_queue_id_seq s),
                          (SELECT max(q.id) FROM @extschema@.steadytext_queue q)) AS n) m
    WHERE n IS NOT NULL;
    PERFORM setval('@extschema@.steadytext_cache_id_seq', n, true)
    FROM (SELECT CASE WHEN s.is_called THEN s.last_value END AS n
          FROM _steadytext_python.steadytext_cache_id_seq s) m
    WHERE n IS NOT NULL;
    PERFORM setval('@extschema@.steadytext_audit_log_id_seq', n, true)
    FROM (SELECT greatest((SELECT CASE WHEN s.is_called THEN s.last_value END
                           FROM _steadytext_python.steadytext_audit_log_id_seq s),
                          (SELECT max(a.id) FROM @extschema@.steadytext_audit_log a)) AS n) m
    WHERE n IS NOT NULL;

    -- Without CASCADE: a view of the user's on one of these tables stops the upgrade here.
    DROP TABLE _steadytext_python.steadytext_prompt_versions;
    DROP TABLE _steadytext_python.steadytext_prompts;
    DROP TABLE _steadytext_python.steadytext_cache, _steadytext_python.steadytext_queue,
               _steadytext_python.steadytext_config, _steadytext_python.steadytext_daemon_health,
               _steadytext_python.steadytext_rate_limits, _steadytext_python.steadytext_audit_log;
    DROP SCHEMA _steadytext_python;

    PERFORM @extschema@._steadytext_audit('extension_upgrade'::text, jsonb_build_object(
        'from', '2025.11.25', 'to', '@VERSION@',
        'config_rows', config_kept, 'config_converted', config_converted,
        'config_refused', to_jsonb(config_refused),
        'queue_rows', queue_rows, 'queue_requeued', queue_requeued,
        'queue_refused', queue_refused, 'cache_rows_dropped', cache_dropped,
        'prompts', prompts_kept, 'prompt_versions', versions_kept,
        'prompt_versions_deactivated', versions_deactivated,
        'daemon_health_rows', health_kept, 'rate_limit_rows', limits_kept,
        'audit_rows', audit_kept));
    RAISE WARNING USING MESSAGE = format(
        'pg_steadytext: upgraded from the Python extension 2025.11.25 to @VERSION@: kept %s config '
        'rows (%s converted to numbers or booleans), %s queue rows (%s of them were processing and '
        'are pending again), %s prompts with %s versions, %s daemon health rows, %s rate limit rows, '
        '%s audit rows',
        config_kept, config_converted, queue_rows, queue_requeued, prompts_kept, versions_kept,
        health_kept, limits_kept, audit_kept);
    IF cache_dropped > 0 THEN
        RAISE WARNING USING MESSAGE = format(
            'pg_steadytext: dropped %s cache rows: the Python extension keyed them by the prompt '
            'alone (not max_tokens, seed or model), so they could answer a request with another''s '
            'result; they are recomputed on demand', cache_dropped);
    END IF;
    IF cardinality(config_refused) > 0 THEN
        RAISE WARNING USING MESSAGE = format(
            'pg_steadytext: config values refused, kept at this version''s default (%s): %s',
            cardinality(config_refused), array_to_string(config_refused, '; '));
    END IF;
    IF queue_refused > 0 THEN
        RAISE WARNING USING MESSAGE = format(
            'pg_steadytext: pending queue requests failed because they name a model by path (%s): '
            'queue them again with the *_async functions', queue_refused);
    END IF;
    IF versions_deactivated > 0 THEN
        RAISE WARNING USING MESSAGE = format(
            'pg_steadytext: prompt versions made inactive (%s): they were active beside a newer '
            'active version of the same prompt (one active version per prompt)',
            versions_deactivated);
    END IF;
    IF limits_kept > 0 THEN
        RAISE WARNING USING MESSAGE = format(
            'pg_steadytext: rate limit rows kept (%s): they are enforced from now on (the Python '
            'extension never read them, and every role could write them): review them with '
            'SELECT * FROM steadytext_rate_limits', limits_kept);
    END IF;
END
$epilogue$;

COMMENT ON EXTENSION pg_steadytext IS
    'Deterministic text generation and embeddings on local GGUF models (Rust)';
