-- pg_steadytext 2026.11.29 -> 2026.12.1 (tests/upgrade/run.sh compares the result with a fresh
-- install of 2026.12.1).

-- The tables that hold users' rows are dumped with the database (see the end of functions.sql).
SELECT pg_catalog.pg_extension_config_dump('steadytext_queue', '');
SELECT pg_catalog.pg_extension_config_dump('steadytext_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('steadytext_rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump('steadytext_audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('steadytext_audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('steadytext_prompts', '');
SELECT pg_catalog.pg_extension_config_dump('steadytext_prompt_versions', '');

-- Queue rows waiting or running for more than 24.8 days overflowed the int columns wait_time_ms
-- and processing_time_ms and stopped every claim; retry backoff is at most a day.
CREATE OR REPLACE FUNCTION steadytext_queue_claim(worker text, max_rows int DEFAULT 1,
                                       lease_seconds int DEFAULT NULL)
RETURNS SETOF steadytext_queue LANGUAGE plpgsql VOLATILE SECURITY DEFINER
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

CREATE OR REPLACE FUNCTION steadytext_queue_complete(job_id int, worker text,
                                          result_text text DEFAULT NULL,
                                          result_embedding vector DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION steadytext_queue_fail(job_id int, worker text, error_message text,
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
