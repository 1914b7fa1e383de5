-- The inference functions are PARALLEL SAFE: inside parallel queries they run in parallel
-- workers (fresh processes) and in a leader in parallel mode, where nothing may take a
-- transaction id. Each query runs in a fresh session (dblink) whose transaction has written
-- nothing, so a hidden write fails here as it would for users; the bytes equal a serial run.
-- The calling role has a rate limit, so the counting runs in the workers too.
BEGIN;
SELECT plan(13);

-- Committed by dblink_exec (another session must see them), undone at the end.
SELECT is(dblink_exec(test_helpers.conn(), $$
    DROP TABLE IF EXISTS parallel_rows;
    CREATE TABLE parallel_rows AS
        SELECT i, format('Order %s shipped %s units. The customer rated it %s stars.', i, i * 7, i % 5 + 1) AS t
        FROM generate_series(1, 6) i;
    ANALYZE parallel_rows;
    INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('postgres', 1000000)
        ON CONFLICT (user_id) DO NOTHING$$), 'INSERT 0 1', 'six committed rows and a rate limit');

-- Settings that force a parallel plan. With workers, the leader does not run the scan itself, so
-- the functions in the scan's output run in the workers only; with none, the leader runs the
-- plan in parallel mode.
CREATE FUNCTION pg_temp.parallel(workers int) RETURNS text LANGUAGE sql AS $$
    SELECT format('SET force_parallel_mode = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; '
                  'SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; '
                  'SET max_parallel_workers = %s; SET parallel_leader_participation = %s; ',
                  workers, CASE WHEN workers > 0 THEN 'off' ELSE 'on' END)
$$;

-- `expr` of each row, computed by a fresh session under `settings`, joined in row order here.
CREATE FUNCTION pg_temp.per_row(settings text, expr text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(v, '|' ORDER BY i)
    FROM dblink(test_helpers.conn(), settings || format('SELECT i, (%s)::text FROM parallel_rows', expr))
         AS r(i int, v text)
$$;

CREATE TEMP TABLE cases(name text, expr text);
INSERT INTO cases VALUES
 ('steadytext_generate', $$steadytext_generate(t, 12, false)$$),
 ('steadytext_embed', $$steadytext_embed(t, false)$$),
 ('steadytext_generate_regex', $$steadytext_generate_regex(t, '[a-z]{2,8}', 12, false)$$),
 ('steadytext_rerank', $$(SELECT string_agg(d || ':' || round(s::numeric, 6), ',' ORDER BY d)
                          FROM steadytext_rerank(t, ARRAY['shipping', 'a cat']) AS r(d, s))$$);

-- The control: the workers, not the leader, compute the function.
SELECT matches(
    (SELECT string_agg(v, E'\n') FROM dblink(test_helpers.conn(), pg_temp.parallel(2) ||
        'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF) SELECT i, steadytext_generate(t, 4, false) FROM parallel_rows') AS r(v text)),
    'Seq Scan on public.parallel_rows[^\n]*\n\s*Output: i, steadytext_generate\(t.*Worker 0: [^\n]*rows=[1-9]',
    'the parallel scan computes steadytext_generate, in a worker');

SELECT test_helpers.same(pg_temp.per_row(pg_temp.parallel(2), c.expr),
                         pg_temp.per_row('SET max_parallel_workers_per_gather = 0; ', c.expr),
                         c.name || ' in parallel workers: the serial bytes')
FROM cases c ORDER BY c.name;
SELECT test_helpers.same(pg_temp.per_row(pg_temp.parallel(0), c.expr),
                         pg_temp.per_row('SET max_parallel_workers_per_gather = 0; ', c.expr),
                         c.name || ' in a leader in parallel mode, first call of its session: the serial bytes')
FROM cases c WHERE c.name IN ('steadytext_generate', 'steadytext_embed', 'steadytext_rerank')
ORDER BY c.name;

-- The summary's final step (generation, embeddings) runs in the leader, in parallel mode; the
-- workers accumulate.
CREATE TEMP TABLE summaries AS
SELECT (SELECT v FROM dblink(test_helpers.conn(), pg_temp.parallel(2) ||
            'SELECT steadytext_summarize(t, ''{}'') FROM parallel_rows') AS r(v text)) AS in_parallel,
       (SELECT v FROM dblink(test_helpers.conn(),
            'SET max_parallel_workers_per_gather = 0; SELECT steadytext_summarize(t, ''{}'') FROM parallel_rows')
            AS r(v text)) AS serial;
SELECT test_helpers.same((SELECT in_parallel FROM summaries), (SELECT serial FROM summaries),
                         'steadytext_summarize with parallel workers, first call of the leader''s session: the serial bytes');
SELECT isnt((SELECT serial FROM summaries), 'Unable to generate summary', 'the summary was generated');

SELECT ok((SELECT minute_count > 0 FROM dblink(test_helpers.conn(),
               'SELECT minute_count FROM steadytext_check_rate_limit()') AS r(minute_count bigint)),
          'the calls were counted against the rate limit');

SELECT is(dblink_exec(test_helpers.conn(),
              $$DROP TABLE parallel_rows; DELETE FROM steadytext_rate_limits WHERE user_id = 'postgres'$$),
          'DELETE 1', 'the rows and the limit are removed');
SELECT * FROM finish();
ROLLBACK;
