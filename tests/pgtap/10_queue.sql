-- The async queue's SQL side: what each *_async function queues, every validation text,
-- reading results, cancelling, and the claim protocol workers use (priority order, leases,
-- retries with backoff, recovery of a dead worker's rows). Workers themselves run in
-- tests/queue (this cluster has none, so queued rows stay where the test puts them).
BEGIN;
SELECT plan(87);

DELETE FROM steadytext_queue;

-- What steadytext_generate_async queues
SELECT steadytext_generate_async('Say hi', 16) AS id \gset
SELECT results_eq(
    format($$SELECT request_type, prompt, params, status, priority, retry_count, max_retries
             FROM steadytext_queue WHERE request_id = %L$$, :'id'),
    $$VALUES ('generate', 'Say hi', '{"max_tokens": 16, "use_cache": true, "seed": 42}'::jsonb,
              'pending', 5, 0, 3)$$,
    'generate_async queues the prompt with max_tokens, use_cache and seed 42');
-- (each request is queued in a statement of its own: a query does not see rows its own
-- function calls insert)
SELECT steadytext_generate_async('x') AS r1, st_generate_async('x') AS r2 \gset
SELECT is((SELECT params->>'max_tokens' FROM steadytext_queue WHERE request_id = :'r1'), '512',
          'max_tokens defaults to 512');
SELECT is((SELECT params->>'max_tokens' FROM steadytext_queue WHERE request_id = :'r2'), '512',
          'st_generate_async''s NULL default becomes the configured default_max_tokens');
SELECT is((SELECT params ? 'model' FROM steadytext_queue WHERE request_id = :'r1'), false,
          'the server''s configured model is the worker''s business');
SET LOCAL steadytext.generation_model = '/models/other.gguf';
SELECT steadytext_generate_async('x') AS r3 \gset
SELECT is((SELECT params->>'model' FROM steadytext_queue WHERE request_id = :'r3'), '/models/other.gguf',
          'a model set in the session travels with the request');
RESET steadytext.generation_model;
SELECT throws_ok($$SELECT steadytext_generate_async(NULL)$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_async('  ')$$, 'P0001', 'Prompt cannot be empty',
                 'a blank prompt is empty');
SELECT throws_ok($$SELECT steadytext_generate_async('x', 0)$$, 'P0001',
                 'max_tokens must be between 1 and 4096');
SELECT throws_ok($$SELECT steadytext_generate_async('x', 4097)$$, 'P0001',
                 'max_tokens must be between 1 and 4096', 'above 4096 too');
-- The limit is steadytext.max_tokens_limit's, as for synchronous calls, not a number of its own.
SET steadytext.max_tokens_limit = 6000;
SELECT lives_ok($$SELECT steadytext_generate_async('x', 5000)$$, 'a raised limit admits more');
SELECT throws_ok($$SELECT steadytext_generate_async('x', 6001)$$, 'P0001',
                 'max_tokens must be between 1 and 6000', 'and names itself');
SELECT throws_ok($$SELECT steadytext_generate_json_async('x', '{"type":"object"}', 6001)$$, 'P0001',
                 'max_tokens must be between 1 and 6000', 'the structured queue functions too');
RESET steadytext.max_tokens_limit;

-- Batches
SELECT is(cardinality(steadytext_generate_batch_async(ARRAY['a', 'b', 'c'], 8)), 3, 'a batch queues one row per prompt');
SELECT steadytext_generate_batch_async(ARRAY['p1', 'p2'], 8) AS batch \gset
SELECT is((SELECT array_agg(q.prompt ORDER BY u.n) FROM unnest(:'batch'::uuid[]) WITH ORDINALITY u(id, n)
           JOIN steadytext_queue q ON q.request_id = u.id),
          ARRAY['p1', 'p2'], 'in order');
SELECT is(steadytext_generate_batch_async('{}'), '{}'::uuid[], 'an empty batch queues nothing');
SELECT throws_ok($$SELECT steadytext_generate_batch_async(NULL)$$, 'P0001', 'Batch cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_batch_async(array_fill('x'::text, ARRAY[101]))$$, 'P0001',
                 'Batch size exceeds maximum limit');
-- NULL and blank elements: one request each, failed with the text steadytext_generate raises,
-- while the others are queued (the whole batch is not refused)
SELECT steadytext_generate_batch_async(ARRAY['a', NULL, ' ']) AS gempty \gset
SELECT results_eq(
    format($$SELECT q.status, q.error FROM unnest(%L::uuid[]) WITH ORDINALITY u(id, n)
             JOIN steadytext_queue q ON q.request_id = u.id ORDER BY u.n$$, :'gempty'),
    $$VALUES ('pending', NULL::text), ('failed', 'Prompt cannot be null'), ('failed', 'Prompt cannot be empty')$$,
    'a NULL or blank prompt in a batch fails alone');
SELECT is((SELECT error FROM steadytext_check_async((:'gempty'::uuid[])[2])), 'Prompt cannot be null',
          'and check_async says why');

-- Embeddings queue their text (the Python extension queued NULL)
SELECT steadytext_embed_async('hello world') AS eid \gset
SELECT results_eq(
    format($$SELECT request_type, prompt, params->>'text_input', params->>'mode', params->>'use_cache'
             FROM steadytext_queue WHERE request_id = %L$$, :'eid'),
    $$VALUES ('embed', 'hello world', 'hello world', 'query', 'true')$$,
    'embed_async queues the text and the embedding mode');
SELECT steadytext_embed_async('x', model => '/m/e.gguf') AS r4 \gset
SELECT is((SELECT params->>'model' FROM steadytext_queue WHERE request_id = :'r4'), '/m/e.gguf',
          'and the model argument');
SELECT throws_ok($$SELECT steadytext_embed_async(NULL)$$, 'P0001', 'Text cannot be null');
SELECT throws_ok($$SELECT steadytext_embed_async(' ')$$, 'P0001', 'Text cannot be empty');
SELECT throws_ok($$SELECT steadytext_embed_async('x', model => 'openai:text-embedding-3-small')$$, 'P0001',
                 'Remote models (containing '':'' ) require unsafe_mode=TRUE');
SELECT throws_ok($$SELECT steadytext_embed_async('x', model => 'openai:e', unsafe_mode => true)$$, '0A000', NULL,
                 'remote models are refused even in unsafe mode');
SELECT is(cardinality(st_embed_batch_async(ARRAY['a', 'b'])), 2, 'embed_batch_async queues one row per text');
SELECT throws_ok($$SELECT steadytext_embed_batch_async(NULL)$$, 'P0001', 'texts array cannot be null or empty');
SELECT throws_ok($$SELECT steadytext_embed_batch_async('{}')$$, 'P0001', 'texts array cannot be null or empty',
                 'an empty array too');
-- NULL and blank texts: completed at once with the zero vector, as steadytext_embed_batch gives them
SELECT steadytext_embed_batch_async(ARRAY['a', NULL, '']) AS eempty \gset
SELECT results_eq(
    format($$SELECT q.status, vector_norm(q.embedding) FROM unnest(%L::uuid[]) WITH ORDINALITY u(id, n)
             JOIN steadytext_queue q ON q.request_id = u.id WHERE u.n > 1 ORDER BY u.n$$, :'eempty'),
    $$VALUES ('completed', 0::float8), ('completed', 0::float8)$$,
    'a NULL or blank text in an embedding batch gets the zero vector');

-- Reading results
SELECT results_eq(format($$SELECT status, result, request_type FROM steadytext_check_async(%L)$$, :'id'),
                  $$VALUES ('pending', NULL::text, 'generate')$$, 'check_async shows a pending request');
SELECT is_empty($$SELECT * FROM steadytext_check_async(gen_random_uuid())$$, 'an unknown id gives no row');
SELECT results_eq(
    format($$SELECT request_id FROM steadytext_check_async_batch(ARRAY[%L, gen_random_uuid(), %L]::uuid[])$$,
           :'eid', :'id'),
    format($$VALUES (%L::uuid), (%L::uuid)$$, :'eid', :'id'),
    'check_async_batch keeps the input order and leaves unknown ids out');
SELECT is((SELECT status FROM steadytext_check_async_batch(ARRAY[steadytext_generate_async('same statement')])),
          'pending', 'and sees requests queued in the same statement');
SELECT throws_ok(format($$SELECT steadytext_get_async_result(%L, -1)$$, :'id'), 'P0001', 'Timeout cannot be negative');
SELECT throws_ok($$SELECT steadytext_get_async_result('00000000-0000-0000-0000-000000000001')$$, 'P0001',
                 'Request ID 00000000-0000-0000-0000-000000000001 not found');
SELECT throws_ok(format($$SELECT steadytext_get_async_result(%L, 5)$$, :'id'), 'P0001',
                 format('Async request %s was queued in this transaction; commit before waiting for it', :'id'),
                 'waiting in the queueing transaction fails at once instead of timing out');

-- Cancelling
SELECT steadytext_generate_async('to cancel') AS cid \gset
SELECT is(steadytext_cancel_async(:'cid'), true, 'cancel_async cancels a pending request');
SELECT is(steadytext_cancel_async(:'cid'), false, 'a second cancel changes nothing');
SELECT is((SELECT status FROM steadytext_check_async(:'cid')), 'cancelled', 'the request is cancelled');
SELECT throws_ok(format($$SELECT steadytext_get_async_result(%L, 30)$$, :'cid'), 'P0001',
                 format('Async request %s was cancelled', :'cid'), 'waiting for it fails at once');
SELECT is(st_cancel_async(gen_random_uuid()), false, 'cancelling an unknown id returns false');

-- The claim protocol: priority, then age
DELETE FROM steadytext_queue;
SELECT steadytext_generate_async('low') AS low, steadytext_generate_async('high') AS high,
       steadytext_generate_async('mid') AS mid \gset
SELECT is(steadytext_set_async_priority(:'high', 10), true, 'set_async_priority changes a pending request');
SELECT is(steadytext_set_async_priority(:'low', 1), true, 'to 1 as well');
SELECT throws_ok(format($$SELECT steadytext_set_async_priority(%L, 11)$$, :'mid'), 'P0001',
                 'priority must be between 1 and 10');
SELECT is((SELECT array_agg(prompt) FROM (SELECT (steadytext_queue_claim('w1')).prompt
                                           FROM generate_series(1, 3)) c),
          ARRAY['high', 'mid', 'low'], 'claims come in priority order');
SELECT is((SELECT count(*)::int FROM steadytext_queue_claim('w2')), 0, 'a claimed row is not claimed again');
SELECT throws_ok($$SELECT steadytext_queue_claim('')$$, 'P0001', 'worker cannot be empty');
SELECT ok((SELECT lease_until > now() AND worker_id = 'w1' AND started_at IS NOT NULL AND wait_time_ms >= 0
           FROM steadytext_queue WHERE request_id = :'high'), 'a claim records the worker, its lease and the wait');

-- Heartbeats, completion and the cache row
SELECT id AS hid FROM steadytext_queue WHERE request_id = :'high' \gset
SELECT is(steadytext_queue_heartbeat(:hid, 'w1'), true, 'the owner renews its lease');
SELECT is(steadytext_queue_heartbeat(:hid, 'w2'), false, 'another worker cannot');
SELECT is(steadytext_queue_complete(:hid, 'w2', 'stolen'), false, 'nor complete the row');
SELECT is(steadytext_queue_complete(:hid, 'w1', 'the answer', NULL, 'generate:test-key', 'm.gguf'), true,
          'the owner completes it');
SELECT results_eq(format($$SELECT status, result, error FROM steadytext_check_async(%L)$$, :'high'),
                  $$VALUES ('completed', 'the answer', NULL::text)$$, 'the result is stored');
SELECT is(steadytext_get_async_result(:'high'), 'the answer', 'get_async_result returns it');
SELECT is((SELECT count(*)::int FROM steadytext_cache WHERE cache_key = 'generate:test-key'), 0,
          'a connection that is not a background worker of this server does not write the shared cache');
SELECT ok((SELECT processing_time_ms >= 0 AND completed_at >= started_at FROM steadytext_queue
           WHERE request_id = :'high'), 'with its timings');
SELECT is(steadytext_cancel_async(:'high'), false, 'a completed request cannot be cancelled');

-- A cancel while processing: the worker's heartbeat says stop, and its result is not stored
SELECT id AS mid_id FROM steadytext_queue WHERE request_id = :'mid' \gset
SELECT is(steadytext_cancel_async(:'mid'), true, 'cancel_async cancels a processing request');
SELECT is(steadytext_queue_heartbeat(:mid_id, 'w1'), false, 'after a cancel the heartbeat tells the worker to stop');
SELECT is(steadytext_queue_complete(:mid_id, 'w1', 'late'), false, 'and a late result is dropped');

-- Failures: retries with backoff, then 'failed' with the last error
SELECT id AS low_id FROM steadytext_queue WHERE request_id = :'low' \gset
SELECT is(steadytext_queue_fail(:low_id, 'w1', 'daemon unreachable'), 'pending', 'a retryable failure is retried');
SELECT ok((SELECT retry_count = 1 AND next_attempt_at > clock_timestamp() AND error = 'daemon unreachable'
           FROM steadytext_queue WHERE id = :low_id), 'after a backoff, counting the retry');
SELECT is((SELECT count(*)::int FROM steadytext_queue_claim('w1')), 0, 'it is not claimed before its backoff ends');
UPDATE steadytext_queue SET next_attempt_at = now(), retry_count = max_retries WHERE id = :low_id;
SELECT is((SELECT (steadytext_queue_claim('w1')).id), :low_id, 'then it is claimed again');
SELECT is(steadytext_queue_fail(:low_id, 'w1', 'still unreachable'), 'failed', 'after max_retries it fails');
SELECT throws_ok(format($$SELECT steadytext_get_async_result(%L)$$, :'low'), 'P0001',
                 'Async request failed: still unreachable', 'get_async_result reports the last error');
SELECT steadytext_generate_async('bad row') AS bad \gset
SELECT is(steadytext_queue_fail((steadytext_queue_claim('w1')).id, 'w1', 'Prompt cannot be empty', false), 'failed',
          'a permanent failure is not retried');

-- A dead worker's rows return to the queue once its lease expires
DELETE FROM steadytext_queue;
SELECT steadytext_generate_async('orphan') AS orphan \gset
SELECT (steadytext_queue_claim('dead-worker', 1, 0)).id AS oid \gset
SELECT is((SELECT (steadytext_queue_claim('w2')).id), :oid, 'an expired lease: another worker gets the row');
SELECT ok((SELECT retry_count = 1 AND worker_id = 'w2' AND error LIKE 'worker dead-worker stopped%'
           FROM steadytext_queue WHERE id = :oid), 'counted as a retry, with the reason');
SELECT is(steadytext_queue_complete(:oid, 'dead-worker', 'zombie'), false, 'the dead worker cannot complete it');
-- A background worker owns its rows while its process lives; pid 1 is not one
UPDATE steadytext_queue SET worker_id = 'pg_steadytext:1', lease_until = NULL WHERE id = :oid;
SELECT is((SELECT (steadytext_queue_claim('w3')).id), :oid, 'a row of a background worker that is gone returns too');
SELECT is(steadytext_queue_release(:oid, 'w3'), true, 'release gives a row back');
SELECT ok((SELECT status = 'pending' AND retry_count = 2 AND worker_id IS NULL FROM steadytext_queue WHERE id = :oid),
          'without counting a retry');

-- Observability
SELECT steadytext_generate_async('one more') \gset
SELECT results_eq($$SELECT request_type, status, requests FROM steadytext_queue_status ORDER BY 1, 2$$,
                  $$VALUES ('generate', 'pending', 2::bigint)$$, 'steadytext_queue_status counts per type and status');
SELECT ok((SELECT oldest_pending_seconds >= 0 FROM steadytext_queue_status), 'with the oldest pending age');

-- Structured and rerank requests (their handlers run in tests/queue)
DELETE FROM steadytext_queue;
SELECT steadytext_generate_json_async('Give a person', '{"type": "object"}', 64) AS j,
       steadytext_generate_regex_async('A code', '[A-Z]{3}') AS r,
       st_rerank_async('What is PostgreSQL?', ARRAY['a database', 'a fruit']) AS rr \gset
SELECT steadytext_generate_choice_async('Yes or no?', ARRAY['yes', 'no']) AS c \gset
SELECT results_eq($$SELECT request_type, params->>'max_tokens', params ? 'schema' OR params ? 'pattern' OR params ? 'choices'
                    FROM steadytext_queue WHERE request_type LIKE 'generate_%' ORDER BY id$$,
                  $$VALUES ('generate_json', '64', true), ('generate_regex', '512', true), ('generate_choice', '512', true)$$,
                  'the structured *_async functions queue their constraint');
SELECT is((SELECT params->'documents' FROM steadytext_queue WHERE request_id = :'rr'), '["a database", "a fruit"]'::jsonb,
          'rerank_async queues the query and documents');
SELECT steadytext_rerank_batch_async(ARRAY['q1', 'q2'], ARRAY['d']) AS rb \gset
SELECT is((SELECT array_agg(params->>'query' ORDER BY id) FROM steadytext_queue WHERE request_type = 'batch_rerank'),
          ARRAY['q1', 'q2'], 'rerank_batch_async queues one batch_rerank row per query');
SET LOCAL steadytext.reranking_model = '/models/reranker.gguf';
SELECT steadytext_rerank_async('q', ARRAY['d']) AS rm \gset
RESET steadytext.reranking_model;
SELECT is((SELECT params->>'model' FROM steadytext_queue WHERE request_id = :'rm'), '/models/reranker.gguf',
          'a reranking model set in the session travels with the request');
SELECT throws_ok($$SELECT steadytext_generate_json_async('x', NULL)$$, 'P0001', 'Schema cannot be null');
SELECT throws_like($$SELECT steadytext_generate_json_async('x', '[1]')$$, 'Invalid JSON schema:%',
                   'an invalid schema is refused before queueing');
SELECT throws_ok($$SELECT steadytext_generate_regex_async('x', '')$$, 'P0001', 'Pattern cannot be null or empty');
SELECT throws_like($$SELECT steadytext_generate_regex_async('x', '(a)\1')$$, '%backreferences%', 'so is an unsupported regex');
SELECT throws_ok($$SELECT steadytext_generate_choice_async('x', ARRAY['a'])$$, 'P0001', 'Must provide at least 2 choices');
SELECT throws_ok($$SELECT steadytext_generate_choice_async(NULL, ARRAY['a', 'b'])$$, 'P0001', 'Prompt cannot be null');
SELECT throws_ok($$SELECT steadytext_rerank_async('q', ARRAY['a', NULL])$$, 'P0001', 'Documents cannot contain null elements');
SELECT throws_ok($$SELECT steadytext_rerank_batch_async('{}', ARRAY['a'])$$, 'P0001', 'Queries cannot be empty');

SELECT * FROM finish();
ROLLBACK;
