-- pg_steadytext 2026.11.29 -> 2026.12.1 (tests/upgrade/run.sh compares the result with a fresh
-- install of 2026.12.1).

-- Names resolve in pg_catalog alone while this script runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- The tables that hold users' rows are dumped with the database (see the end of functions.sql).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_prompts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_prompt_versions', '');

-- Queue rows waiting or running for more than 24.8 days overflowed the int columns wait_time_ms
-- and processing_time_ms and stopped every claim; retry backoff is at most a day.
CREATE OR REPLACE FUNCTION @extschema@.steadytext_queue_claim(worker text, max_rows int DEFAULT 1,
                                       lease_seconds int DEFAULT NULL)
RETURNS SETOF @extschema@.steadytext_queue LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lease interval := @extschema@._steadytext_queue_lease(worker, lease_seconds);
BEGIN
    IF worker IS NULL OR worker = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('worker cannot be empty'::text);
    END IF;
    PERFORM @extschema@._steadytext_queue_recover();
    RETURN QUERY
    WITH next AS (
        SELECT q.id FROM @extschema@.steadytext_queue q
        WHERE q.status = 'pending'
          AND coalesce(q.next_attempt_at, q.created_at) <= clock_timestamp()
        ORDER BY q.priority DESC, q.created_at, q.id
        LIMIT greatest(coalesce(max_rows, 1), 1)
        FOR UPDATE SKIP LOCKED)
    UPDATE @extschema@.steadytext_queue q
    SET status = 'processing',
        worker_id = worker,
        claimed_by_pid = pg_backend_pid(),
        started_at = clock_timestamp(),
        lease_until = clock_timestamp() + lease,
        -- Capped: a row queued more than 24.8 days ago would overflow the int column.
        wait_time_ms = coalesce(q.wait_time_ms,
            least(extract(epoch FROM clock_timestamp() - q.created_at) * 1000, 2147483647)::int)
    FROM next WHERE q.id = next.id
    RETURNING q.*;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_queue_complete(job_id int, worker text,
                                          result_text text DEFAULT NULL,
                                          result_embedding @extschema@.vector DEFAULT NULL,
                                          cache_key text DEFAULT NULL,
                                          model_name text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r @extschema@.steadytext_queue;
BEGIN
    UPDATE @extschema@.steadytext_queue q
    SET status = 'completed', result = result_text, embedding = result_embedding, error = NULL,
        completed_at = clock_timestamp(), lease_until = NULL, claimed_by_pid = NULL,
        processing_time_ms =
            least(extract(epoch FROM clock_timestamp() - q.started_at) * 1000, 2147483647)::int
    WHERE q.id = job_id AND q.worker_id = worker AND q.status = 'processing'
      AND q.claimed_by_pid = pg_backend_pid()
    RETURNING q.* INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF cache_key IS NOT NULL AND coalesce((r.params ->> 'use_cache')::boolean, true)
       AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()
                   AND a.backend_type = 'pg_steadytext queue worker') THEN
        INSERT INTO @extschema@.steadytext_cache AS c (cache_key, prompt, response, embedding,
            model_name, seed, generation_params, response_size, generation_time_ms, created_by)
        VALUES ($5, r.prompt, result_text, result_embedding, coalesce($6, 'unknown'),
                (r.params ->> 'seed')::int, r.params, length(result_text),
                r.processing_time_ms, coalesce(r.user_id, current_user))
        ON CONFLICT ON CONSTRAINT steadytext_cache_cache_key_key DO NOTHING;
    END IF;
    RETURN true;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_queue_fail(job_id int, worker text, error_message text,
                                      retryable boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base float8 := @extschema@._steadytext_config_number('queue_retry_base_seconds'::text,
                                                         1::float8);
    new_status text;
BEGIN
    UPDATE @extschema@.steadytext_queue q
    SET status = CASE WHEN retryable AND q.retry_count < q.max_retries THEN 'pending'
                      ELSE 'failed' END,
        retry_count = q.retry_count
            + CASE WHEN retryable AND q.retry_count < q.max_retries THEN 1 ELSE 0 END,
        -- At most a day: a row's max_retries may be large (rows from the Python extension).
        next_attempt_at = clock_timestamp()
            + make_interval(secs => least(base * power(2, least(q.retry_count, 30)), 86400)),
        completed_at = CASE WHEN retryable AND q.retry_count < q.max_retries THEN NULL
                            ELSE clock_timestamp() END,
        processing_time_ms =
            least(extract(epoch FROM clock_timestamp() - q.started_at) * 1000, 2147483647)::int,
        error = error_message, worker_id = NULL, lease_until = NULL, claimed_by_pid = NULL
    WHERE q.id = job_id AND q.worker_id = worker AND q.status = 'processing'
      AND q.claimed_by_pid = pg_backend_pid()
    RETURNING q.status INTO new_status;
    RETURN new_status;
END;
$$;

-- Database-side counters for monitoring, one row per value, named like the daemon's Prometheus
-- metrics (the daemon's /metrics covers inference; these the queue, the cache table and the
-- rate limits). Counts over every role's rows, never their texts: steadytext_admin only.
CREATE FUNCTION @extschema@.steadytext_metrics()
RETURNS TABLE(metric text, labels jsonb, value float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'steadytext_queue_requests', jsonb_build_object('status', s.status), count(q.id)::float8
    FROM unnest(ARRAY['pending', 'processing', 'completed', 'failed', 'cancelled']) s(status)
    LEFT JOIN @extschema@.steadytext_queue q ON q.status = s.status
    GROUP BY s.status
    UNION ALL
    SELECT 'steadytext_queue_oldest_pending_seconds', '{}',
           COALESCE(extract(epoch FROM now() - min(q.created_at)), 0)::float8
    FROM @extschema@.steadytext_queue q WHERE q.status = 'pending'
    UNION ALL
    SELECT 'steadytext_cache_table_entries', '{}', count(*)::float8
    FROM @extschema@.steadytext_cache
    UNION ALL
    SELECT 'steadytext_cache_table_lookups_total', jsonb_build_object('result', r.result),
           r.n::float8
    FROM (SELECT COALESCE(sum(l.hits), 0) AS hits, COALESCE(sum(l.misses), 0) AS misses
          FROM @extschema@.steadytext_cache_lookups l) t,
         LATERAL (VALUES ('hit', t.hits), ('miss', t.misses)) r(result, n)
    UNION ALL
    SELECT 'steadytext_cache_table_hit_rate', '{}', st.cache_hit_rate
    FROM @extschema@.steadytext_cache_stats() st
    UNION ALL
    SELECT 'steadytext_rate_limit_refusals_total', '{}', count(*)::float8
    FROM @extschema@._steadytext_audit_file() f WHERE f.event_type = 'rate_limit_refused'
$$;
REVOKE ALL ON FUNCTION @extschema@.steadytext_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.steadytext_metrics() TO steadytext_admin;

-- Eviction to an entry target took whole batches, emptying a small cache: a batch now takes no
-- more rows than the excess.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_evict(
    target_entries int, target_size_mb float8, batch_size int, min_age_hours int,
    min_access_count int, order_by text, eviction_type text)
RETURNS TABLE(evicted_count int, freed_size_mb float8, remaining_entries bigint,
              remaining_size_mb float8)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_entries bigint := COALESCE(target_entries,
        @extschema@._steadytext_config_number('cache_max_entries'::text, 10000::float8)::bigint);
    max_mb float8 := COALESCE(target_size_mb,
        @extschema@._steadytext_config_number('cache_max_size_mb'::text, 100::float8));
    entries bigint;
    size_mb float8;
    batch_count int;
    batch_mb float8;
    batch_limit bigint;
BEGIN
    IF COALESCE(batch_size, 0) < 1 THEN
        PERFORM @extschema@._steadytext_raise_p0001('batch_size must be at least 1'::text);
    END IF;
    evicted_count := 0;
    freed_size_mb := 0;
    LOOP
        SELECT count(*), COALESCE(sum(@extschema@._steadytext_cache_row_size(c)), 0) / 1048576.0
          INTO entries, size_mb FROM @extschema@.steadytext_cache c;
        EXIT WHEN entries <= max_entries AND size_mb <= max_mb;
        batch_limit := CASE WHEN size_mb <= max_mb THEN LEAST(batch_size, entries - max_entries)
                            ELSE batch_size END;
        EXECUTE format(
            'WITH victims AS (
                 SELECT id FROM @extschema@.steadytext_cache_with_frecency
                 WHERE created_at < now() - make_interval(hours => $1)
                   AND ($2 IS NULL OR access_count < $2)
                 ORDER BY %s LIMIT $3),
             deleted AS (
                 DELETE FROM @extschema@.steadytext_cache c USING victims v WHERE c.id = v.id
                 RETURNING @extschema@._steadytext_cache_row_size(c) AS bytes)
             SELECT count(*)::int, COALESCE(sum(bytes), 0) / 1048576.0 FROM deleted', order_by)
          INTO batch_count, batch_mb
          USING COALESCE(min_age_hours, 0), min_access_count, batch_limit;
        EXIT WHEN batch_count = 0;
        evicted_count := evicted_count + batch_count;
        freed_size_mb := freed_size_mb + batch_mb;
        PERFORM @extschema@._steadytext_audit('cache_eviction'::text, jsonb_build_object(
            'evicted_count', batch_count, 'freed_size_mb', batch_mb,
            'eviction_type', eviction_type));
    END LOOP;
    remaining_entries := entries;
    remaining_size_mb := size_mb;
    RETURN NEXT;
END;
$$;

-- st cache sync: the table's side (src/cache_sync.rs says who may call them).
CREATE FUNCTION @extschema@.steadytext_cache_export(after_key text DEFAULT '', max_rows int DEFAULT 1000)
RETURNS TABLE(cache_key text, kind text, response text, embedding real[], access_count int,
              last_access_us bigint)
STRICT VOLATILE PARALLEL UNSAFE LANGUAGE c
AS 'MODULE_PATHNAME', 'steadytext_cache_export_wrapper';
CREATE FUNCTION @extschema@.steadytext_cache_import(entries jsonb) RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE LANGUAGE c
AS 'MODULE_PATHNAME', 'steadytext_cache_import_wrapper';
REVOKE ALL ON FUNCTION @extschema@.steadytext_cache_export(text, int), @extschema@.steadytext_cache_import(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.steadytext_cache_export(text, int), @extschema@.steadytext_cache_import(jsonb)
    TO steadytext_worker, steadytext_admin;
