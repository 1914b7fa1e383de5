-- pg_steadytext async queue: the *_async functions (the Python extension's signatures and
-- texts), the claim protocol every worker uses (background workers and `st worker`), and the
-- steadytext_queue_status view.
--
-- Row life cycle:
--   pending --claim--> processing --complete--> completed
--                          |--fail (retryable, retries left)--> pending (after a backoff)
--                          |--fail (permanent or no retries left)--> failed
--                          |--lease expired / worker process gone--> pending or failed
--                          |--release (worker shutting down)--> pending
--   pending/processing --cancel--> cancelled (the worker notices at its next heartbeat)
--
-- Rows are written only by functions: _steadytext_enqueue (Rust: checks the request as the
-- synchronous function would, records the calling role), steadytext_cancel_async and
-- steadytext_set_async_priority (Rust: the calling role's rows only), and the claim protocol
-- (SECURITY DEFINER, for steadytext_worker). Every function pins its search_path.

-- Names resolve in pg_catalog alone while this file runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

---------------------------------------------------------------------------------------------
-- Enqueueing (the Python extension's texts, then _steadytext_enqueue's checks)
---------------------------------------------------------------------------------------------

-- The remote-model gate of the synchronous functions.
CREATE FUNCTION @extschema@._steadytext_check_remote_model(model text, unsafe_mode boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF model LIKE '%:%' THEN
        IF NOT coalesce(unsafe_mode, false) THEN
            PERFORM @extschema@._steadytext_raise_p0001(
                'Remote models (containing '':'' ) require unsafe_mode=TRUE'::text);
        END IF;
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = format(
            'remote model ''%s'' is not supported: pg_steadytext runs local GGUF models only; '
            'set the model to a registry name or a GGUF path', model);
    END IF;
END;
$$;

-- A model set for this session (SET by a superuser, ALTER ROLE ... SET), captured at enqueue
-- time so that a worker, which has the server's settings, uses the model the caller would have
-- used synchronously. The server's own setting is left to the worker: `st worker` on another
-- host has its own model paths.
CREATE FUNCTION @extschema@._steadytext_session_model(setting_name text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN $1 <> ALL (ARRAY['steadytext.generation_model', 'steadytext.embedding_model',
                                      'steadytext.reranking_model'])
                THEN '{}'::jsonb
                WHEN nullif(trim(s.value), '') IS NULL
                  OR s.source IN ('default', 'configuration file', 'override')
                THEN '{}'::jsonb
                ELSE jsonb_build_object('model', trim(s.value)) END
    FROM (SELECT current_setting($1, true) AS value,
                 (SELECT p.source FROM pg_settings p WHERE p.name = $1) AS source) s
$$;

CREATE FUNCTION @extschema@.steadytext_generate_async(prompt text, max_tokens int DEFAULT 512)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF prompt IS NULL OR trim(prompt) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Prompt cannot be empty'::text);
    END IF;
    -- The limit is steadytext.max_tokens_limit, as for synchronous calls (4096 by default,
    -- the Python extension's fixed limit and message); loading the library defines it.
    PERFORM @extschema@.steadytext_version();
    IF max_tokens IS NOT NULL AND (max_tokens < 1
            OR max_tokens > current_setting('steadytext.max_tokens_limit')::int) THEN
        PERFORM @extschema@._steadytext_raise_p0001(format('max_tokens must be between 1 and %s',
            current_setting('steadytext.max_tokens_limit')));
    END IF;
    RETURN @extschema@._steadytext_enqueue('generate'::text, prompt,
        jsonb_build_object(
            'max_tokens', coalesce(max_tokens,
                @extschema@._steadytext_config_number('default_max_tokens'::text, 512::float8)::int),
            'use_cache', true,
            -- steadytext_generate(prompt, max_tokens)'s seed, its signature's default: the
            -- queued result equals the synchronous one.
            'seed', 42)
        || @extschema@._steadytext_session_model('steadytext.generation_model'::text), 5::int);
END;
$$;

CREATE FUNCTION @extschema@.steadytext_generate_batch_async(prompts text[], max_tokens int DEFAULT 512)
RETURNS uuid[] LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p text;
    ids uuid[] := '{}';
BEGIN
    IF prompts IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Batch cannot be empty'::text);
    END IF;
    IF array_length(prompts, 1) > 100 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Batch size exceeds maximum limit'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_lengths('prompt'::text, prompts);
    -- One request per element: a NULL or blank prompt gets a request that has already failed
    -- with the text steadytext_generate would give, so the rest of the batch still runs.
    FOREACH p IN ARRAY prompts LOOP
        IF p IS NULL OR trim(p) = '' THEN
            ids := ids || @extschema@._steadytext_enqueue_empty('generate'::text, p);
        ELSE
            ids := ids || @extschema@.steadytext_generate_async(p, max_tokens);
        END IF;
    END LOOP;
    RETURN ids;
END;
$$;

-- Unlike the Python extension (which queued NULL and stored a zero vector), the text is
-- validated as steadytext_embed validates it and is what the worker embeds.
CREATE FUNCTION @extschema@.steadytext_embed_async(text_input text, use_cache boolean DEFAULT true,
                                       seed int DEFAULT 42, model text DEFAULT NULL,
                                       unsafe_mode boolean DEFAULT false)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF text_input IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Text cannot be null'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_lengths('text'::text, ARRAY[text_input]::text[]);
    IF trim(text_input) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Text cannot be empty'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_remote_model(model, unsafe_mode);
    PERFORM @extschema@.steadytext_version();
    RETURN @extschema@._steadytext_enqueue('embed'::text, text_input,
        jsonb_build_object(
            'text_input', text_input,
            'use_cache', coalesce(use_cache, true),
            'seed', coalesce(seed, @extschema@._steadytext_config_number('default_seed'::text, 42::float8)::int),
            'unsafe_mode', coalesce(unsafe_mode, false),
            'mode', coalesce(nullif(current_setting('steadytext.embedding_mode', true), ''),
                             'query'))
        || CASE WHEN model IS NULL
                THEN @extschema@._steadytext_session_model('steadytext.embedding_model'::text)
                ELSE jsonb_build_object('model', model) END, 5::int);
END;
$$;

-- One row per element, in order. A NULL or blank element gets a request that has already
-- completed with the zero vector (what steadytext_embed_batch gives it, and what the Python
-- extension stored).
CREATE FUNCTION @extschema@.steadytext_embed_batch_async(texts text[])
RETURNS uuid[] LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    ids uuid[] := '{}';
BEGIN
    IF texts IS NULL OR cardinality(texts) = 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('texts array cannot be null or empty'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_lengths('text'::text, texts);
    -- steadytext_embed_async checks each text; an error rolls back the rows queued before it.
    FOREACH t IN ARRAY texts LOOP
        IF t IS NULL OR trim(t) = '' THEN
            ids := ids || @extschema@._steadytext_enqueue_empty('embed'::text, t);
        ELSE
            ids := ids || @extschema@.steadytext_embed_async(t);
        END IF;
    END LOOP;
    RETURN ids;
END;
$$;

---------------------------------------------------------------------------------------------
-- Reading results (the calling role's rows: row-level security)
---------------------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.steadytext_check_async(request_id uuid)
RETURNS TABLE(status text, result text, results text[], embedding @extschema@.vector, embeddings @extschema@.vector[],
              error text, created_at timestamptz, completed_at timestamptz,
              processing_time_ms int, request_type text)
LANGUAGE sql STABLE PARALLEL SAFE LEAKPROOF SET search_path = pg_catalog, pg_temp AS $$
    SELECT q.status, q.result, q.results, q.embedding, q.embeddings, q.error, q.created_at,
           q.completed_at, q.processing_time_ms, q.request_type
    FROM @extschema@.steadytext_queue q WHERE q.request_id = $1
$$;

-- VOLATILE (the Python extension's was STABLE) so that it sees requests queued earlier in the
-- same statement.
CREATE FUNCTION @extschema@.steadytext_check_async_batch(request_ids uuid[])
RETURNS TABLE(request_id uuid, status text, result text, error text, completed_at timestamptz)
LANGUAGE sql VOLATILE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT q.request_id, q.status, q.result, q.error, q.completed_at
    FROM unnest($1) WITH ORDINALITY AS u(id, ord)
    JOIN @extschema@.steadytext_queue q ON q.request_id = u.id
    ORDER BY u.ord
$$;

-- Waits for a request: its text (the vector's text form for embeddings). A cancelled request
-- fails at once, and so does waiting in the transaction that queued it (the workers only see
-- the row once it commits). A timeout on a request no worker has claimed says so, and how to
-- get a worker.
CREATE FUNCTION @extschema@.steadytext_get_async_result(request_id uuid, timeout_seconds int DEFAULT 30)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wait int := coalesce(timeout_seconds, 30);
    deadline timestamptz;
    r record;
BEGIN
    IF wait < 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Timeout cannot be negative'::text);
    END IF;
    deadline := clock_timestamp() + wait * interval '1 second';
    LOOP
        SELECT q.status, q.result, q.embedding, q.error, q.started_at IS NULL AS unclaimed,
               q.xmin = xid(pg_current_xact_id_if_assigned()) AS mine
        INTO r FROM @extschema@.steadytext_queue q
        WHERE q.request_id = $1 ORDER BY q.id DESC LIMIT 1;
        IF NOT FOUND THEN
            PERFORM @extschema@._steadytext_raise_p0001(format('Request ID %s not found', $1));
        END IF;
        CASE r.status
            WHEN 'completed' THEN RETURN coalesce(r.result, r.embedding::text);
            WHEN 'failed' THEN
                PERFORM @extschema@._steadytext_raise_p0001(('Async request failed: ' || r.error)::text);
            WHEN 'cancelled' THEN
                PERFORM @extschema@._steadytext_raise_p0001(
                    format('Async request %s was cancelled', $1));
            ELSE NULL;
        END CASE;
        IF r.mine THEN
            PERFORM @extschema@._steadytext_raise_p0001(format(
                'Async request %s was queued in this transaction; commit before waiting for it',
                $1));
        END IF;
        IF clock_timestamp() >= deadline THEN
            -- The Python extension's message word for word (callers match on it); why and
            -- how to fix it go into DETAIL and HINT.
            IF r.unclaimed THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001',
                    MESSAGE = format('Timeout waiting for async result (%s seconds)', wait),
                    DETAIL = 'No worker has claimed the request.',
                    HINT = 'Queue workers run when pg_steadytext is in shared_preload_libraries '
                           '(steadytext.queue_workers, steadytext.queue_databases), or run '
                           '`st worker --dsn ...` on any host.';
            END IF;
            PERFORM @extschema@._steadytext_raise_p0001(
                format('Timeout waiting for async result (%s seconds)', wait));
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END;
$$;

---------------------------------------------------------------------------------------------
-- The claim protocol (workers: steadytext_worker; SECURITY DEFINER)
--
-- A worker names itself (`worker`): background workers are 'pg_steadytext:<pid>' and own
-- their rows for as long as that process lives; every other worker holds a lease that it
-- renews with steadytext_queue_heartbeat.
---------------------------------------------------------------------------------------------

-- Returns rows whose worker is gone to the queue, counting the attempt as a retry.
CREATE FUNCTION @extschema@._steadytext_queue_recover() RETURNS int
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    recovered int;
BEGIN
    WITH lost AS (
        SELECT q.id FROM @extschema@.steadytext_queue q
        WHERE q.status = 'processing'
          AND (q.lease_until < clock_timestamp()
               OR (q.lease_until IS NULL AND NOT EXISTS (
                       SELECT 1 FROM pg_stat_activity a
                       WHERE q.worker_id = 'pg_steadytext:' || a.pid
                         AND a.backend_type = 'pg_steadytext queue worker')))
        FOR UPDATE SKIP LOCKED)
    UPDATE @extschema@.steadytext_queue q
    SET status = CASE WHEN q.retry_count < q.max_retries THEN 'pending' ELSE 'failed' END,
        retry_count = q.retry_count + CASE WHEN q.retry_count < q.max_retries THEN 1 ELSE 0 END,
        error = format('worker %s stopped before finishing the request', q.worker_id),
        completed_at = CASE WHEN q.retry_count < q.max_retries THEN NULL
                            ELSE clock_timestamp() END,
        next_attempt_at = clock_timestamp(),
        worker_id = NULL,
        lease_until = NULL,
        claimed_by_pid = NULL
    FROM lost WHERE q.id = lost.id;
    GET DIAGNOSTICS recovered = ROW_COUNT;
    RETURN recovered;
END;
$$;

-- The lease a non-background worker gets.
-- The lease of a claim. A background worker (named pg_steadytext:PID) runs a job in one
-- transaction and cannot renew a lease while it runs: its rows have none and are recovered when
-- that process is gone. The name is reserved for that process: anyone else claiming under it is
-- refused, so every other claim has a lease, of at most a day.
CREATE FUNCTION @extschema@._steadytext_queue_lease(worker text, lease_seconds int) RETURNS interval
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    seconds int := coalesce(lease_seconds,
        @extschema@._steadytext_config_number('queue_lease_seconds'::text, 60::float8)::int);
BEGIN
    IF worker LIKE 'pg_steadytext:%' THEN
        IF worker = 'pg_steadytext:' || pg_backend_pid() AND EXISTS (
               SELECT 1 FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()
                 AND a.backend_type = 'pg_steadytext queue worker') THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'the worker name %s is reserved for pg_steadytext''s background worker of that '
            'process id; give st worker another name', worker);
    END IF;
    IF seconds NOT BETWEEN 0 AND 86400 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format(
            'lease_seconds must be between 0 and 86400, got %s', seconds);
    END IF;
    RETURN make_interval(secs => seconds);
END;
$$;

-- Claims up to max_rows runnable rows: highest priority first, then oldest. Rows locked by
-- another claim are skipped, so concurrent workers never get the same row.
CREATE FUNCTION @extschema@.steadytext_queue_claim(worker text, max_rows int DEFAULT 1,
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

-- Renews the lease; false when the row is no longer this worker's (cancelled, or taken over
-- after the lease expired), in which case the worker must stop working on it.
CREATE FUNCTION @extschema@.steadytext_queue_heartbeat(job_id int, worker text,
                                           lease_seconds int DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lease interval := @extschema@._steadytext_queue_lease(worker, lease_seconds);
BEGIN
    UPDATE @extschema@.steadytext_queue q SET lease_until = clock_timestamp() + lease
    WHERE q.id = job_id AND q.worker_id = worker AND q.status = 'processing'
      AND q.claimed_by_pid = pg_backend_pid();
    RETURN FOUND;
END;
$$;

-- Stores the result; false (and nothing stored) when the row is no longer this connection's.
-- The cache row is written only for a background worker of this server (whose own code computed
-- the key and the result): a worker elsewhere could send any key, and other roles would be
-- served what it sent.
CREATE FUNCTION @extschema@.steadytext_queue_complete(job_id int, worker text,
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

-- Records a failed attempt: back to the queue after 2^retry_count times the base backoff
-- while retries remain and the error is retryable, otherwise 'failed'. Returns the new status
-- (NULL when the row is no longer this worker's).
CREATE FUNCTION @extschema@.steadytext_queue_fail(job_id int, worker text, error_message text,
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

-- Gives a claimed row back untouched (a worker shutting down); not counted as a retry.
CREATE FUNCTION @extschema@.steadytext_queue_release(job_id int, worker text)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE @extschema@.steadytext_queue q
    SET status = 'pending', worker_id = NULL, lease_until = NULL, started_at = NULL,
        claimed_by_pid = NULL
    WHERE q.id = job_id AND q.worker_id = worker AND q.status = 'processing'
      AND q.claimed_by_pid = pg_backend_pid();
    RETURN FOUND;
END;
$$;

---------------------------------------------------------------------------------------------
-- Observability (a role sees its own requests; steadytext_admin all)
---------------------------------------------------------------------------------------------

CREATE VIEW @extschema@.steadytext_queue_status WITH (security_invoker = true) AS
SELECT q.request_type,
       q.status,
       count(*) AS requests,
       round(extract(epoch FROM now() - min(q.created_at) FILTER (WHERE q.status = 'pending')),
             1) AS oldest_pending_seconds,
       count(*) FILTER (WHERE q.completed_at > now() - interval '1 minute'
                          AND q.status = 'completed') AS completed_last_minute,
       round(avg(q.processing_time_ms) FILTER (WHERE q.status = 'completed'), 1)
           AS mean_processing_ms,
       round(avg(q.wait_time_ms), 1) AS mean_wait_ms,
       sum(q.retry_count) AS retries
FROM @extschema@.steadytext_queue q
GROUP BY q.request_type, q.status;

GRANT SELECT ON @extschema@.steadytext_queue_status TO steadytext_user;

---------------------------------------------------------------------------------------------
-- st_* aliases
---------------------------------------------------------------------------------------------

-- As in the Python extension, the alias's max_tokens defaults to NULL (the configured default).
CREATE FUNCTION @extschema@.st_generate_async(prompt text, max_tokens int DEFAULT NULL)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_async(prompt, max_tokens)
$$;

CREATE FUNCTION @extschema@.st_generate_batch_async(prompts text[], max_tokens int DEFAULT 512)
RETURNS uuid[] LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_batch_async(prompts, max_tokens)
$$;

-- PARALLEL UNSAFE: it writes (the Python extension's alias was marked SAFE).
CREATE FUNCTION @extschema@.st_embed_async(text_input text, use_cache boolean DEFAULT true,
                               seed int DEFAULT 42, model text DEFAULT NULL,
                               unsafe_mode boolean DEFAULT false)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_embed_async(text_input, use_cache, seed, model, unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_embed_batch_async(texts text[])
RETURNS uuid[] LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_embed_batch_async(texts)
$$;

CREATE FUNCTION @extschema@.st_check_async(request_id uuid)
RETURNS TABLE(status text, result text, results text[], embedding @extschema@.vector, embeddings @extschema@.vector[],
              error text, created_at timestamptz, completed_at timestamptz,
              processing_time_ms int, request_type text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_check_async(request_id)
$$;

CREATE FUNCTION @extschema@.st_check_async_batch(request_ids uuid[])
RETURNS TABLE(request_id uuid, status text, result text, error text, completed_at timestamptz)
LANGUAGE sql VOLATILE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_check_async_batch(request_ids)
$$;

CREATE FUNCTION @extschema@.st_get_async_result(request_id uuid, timeout_seconds int DEFAULT 30)
RETURNS text LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_get_async_result(request_id, timeout_seconds)
$$;

CREATE FUNCTION @extschema@.st_cancel_async(request_id uuid)
RETURNS boolean LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_cancel_async(request_id)
$$;

SELECT pg_catalog.set_config('search_path', '@extschema@', true);
