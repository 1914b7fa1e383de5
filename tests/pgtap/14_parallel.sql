-- The inference functions are PARALLEL SAFE: inside parallel queries they run in parallel
-- workers (fresh processes) and in a leader in parallel mode, where nothing may take a
-- transaction id. Each query runs in a fresh session (dblink) whose transaction has written
-- nothing, so a hidden write would fail here as it does for users; the bytes equal a serial run.
BEGIN;
SELECT plan(11);

CREATE FUNCTION pg_temp.conn() RETURNS text LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=postgres',
                  current_setting('unix_socket_directories'), current_setting('port'), current_database())
$$;

-- Rows another session can read (committed by dblink_exec, dropped at the end).
SELECT is(dblink_exec(pg_temp.conn(), $$
    DROP TABLE IF EXISTS parallel_rows;
    CREATE TABLE parallel_rows AS
        SELECT i, format('Order %s shipped %s units. The customer rated it %s stars.', i, i * 7, i % 5 + 1) AS t
        FROM generate_series(1, 6) i;
    ANALYZE parallel_rows$$), 'ANALYZE', 'six committed rows');

-- `query` in a new session with a forced parallel plan; `workers` parallel workers at most
-- (0: the leader runs the plan itself, in parallel mode).
CREATE FUNCTION pg_temp.in_parallel(query text, workers int) RETURNS text LANGUAGE sql AS $$
    SELECT v FROM dblink(pg_temp.conn(), format(
        'SET force_parallel_mode = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; '
        'SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; '
        'SET max_parallel_workers = %s; %s', workers, query)) AS r(v text)
$$;

CREATE FUNCTION pg_temp.serial(query text) RETURNS text LANGUAGE sql AS $$
    SELECT v FROM dblink(pg_temp.conn(), 'SET max_parallel_workers_per_gather = 0; ' || query) AS r(v text)
$$;

CREATE TEMP TABLE cases(name text, query text);
INSERT INTO cases VALUES
 ('steadytext_generate', $$SELECT string_agg(g, '|' ORDER BY i) FROM (SELECT i, steadytext_generate(t, 12, false) AS g FROM parallel_rows) s$$),
 ('steadytext_embed', $$SELECT string_agg(e::text, '|' ORDER BY i) FROM (SELECT i, steadytext_embed(t, false) AS e FROM parallel_rows) s$$),
 ('steadytext_generate_regex', $$SELECT string_agg(g, '|' ORDER BY i) FROM (SELECT i, steadytext_generate_regex(t, '[a-z]{2,8}', 12, false) AS g FROM parallel_rows) s$$),
 ('steadytext_rerank', $$SELECT string_agg(d || ':' || round(s::numeric, 6), '|' ORDER BY i, d) FROM parallel_rows, steadytext_rerank(t, ARRAY['shipping', 'a cat']) AS r(d, s) WHERE i <= 2$$),
 ('steadytext_summarize', $$SELECT steadytext_summarize(t, '{}') FROM parallel_rows$$);

-- The plan does use parallel workers (the control for the checks below).
SELECT matches(
    (SELECT string_agg(v, E'\n') FROM dblink(pg_temp.conn(),
        'SET force_parallel_mode = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; '
        'SET min_parallel_table_scan_size = 0; '
        'EXPLAIN (ANALYZE, COSTS OFF) SELECT steadytext_generate(t, 4, false) FROM parallel_rows') AS r(v text)),
    'Workers Launched: [1-9]', 'a forced parallel plan launches workers that call the functions');

SELECT test_helpers.same(pg_temp.in_parallel(c.query, 2), pg_temp.serial(c.query),
                         c.name || ' in parallel workers: the serial bytes')
FROM cases c ORDER BY c.name;
SELECT test_helpers.same(pg_temp.in_parallel(c.query, 0), pg_temp.serial(c.query),
                         c.name || ' in a leader in parallel mode, first call of its session: the serial bytes')
FROM cases c WHERE c.name IN ('steadytext_generate', 'steadytext_embed', 'steadytext_summarize')
ORDER BY c.name;

SELECT is(dblink_exec(pg_temp.conn(), 'DROP TABLE parallel_rows'), 'DROP TABLE', 'the rows are dropped');
SELECT * FROM finish();
ROLLBACK;
