-- Across connections: the same bytes from another backend; statement_timeout and
-- pg_cancel_backend stop a generation promptly and leave the backend usable; steadytext_info.
BEGIN;
SELECT plan(13);

SELECT test_helpers.same(
    (SELECT t FROM dblink(test_helpers.conn(), $$SELECT steadytext_generate('Write a haiku about PostgreSQL', 32, false)$$) AS r(t text)),
    steadytext_generate('Write a haiku about PostgreSQL', 32, false),
    'another connection generates the same bytes');
SELECT test_helpers.same(
    (SELECT v FROM dblink(test_helpers.conn(), $$SELECT steadytext_embed('hello', false)::text$$) AS r(v text)),
    steadytext_embed('hello', false)::text,
    'another connection embeds the same vector');

-- statement_timeout stops a long generation within a few hundred milliseconds
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS at;
SET LOCAL statement_timeout = '300ms';
SELECT is(test_helpers.try($$SELECT steadytext_generate('Write a long story about a dragon', 2000, false)$$),
          '57014: canceling statement due to statement timeout', 'statement_timeout cancels generation');
SET LOCAL statement_timeout = 0;
SELECT ok((SELECT clock_timestamp() - at < interval '2 seconds' FROM t0),
          'cancelled well before the 2000-token generation could finish');
SELECT test_helpers.same(steadytext_generate('Say hello', 4, false), steadytext_generate('Say hello', 4, false),
          'the backend is usable afterwards');

-- and in the backend (steadytext.use_daemon = off), where the engine checks for interrupts
-- between tokens
SET LOCAL steadytext.use_daemon = off;
CREATE TEMP TABLE t2 AS SELECT clock_timestamp() AS at;
SET LOCAL statement_timeout = '300ms';
SELECT is(test_helpers.try($$SELECT steadytext_generate('Write a long story about a dragon', 2000, false)$$),
          '57014: canceling statement due to statement timeout', 'statement_timeout cancels a generation in the backend');
SET LOCAL statement_timeout = 0;
SELECT ok((SELECT clock_timestamp() - at < interval '2 seconds' FROM t2), 'promptly there too');
RESET steadytext.use_daemon;

-- pg_cancel_backend from another session stops it too
SELECT is(dblink_connect('worker', test_helpers.conn()), 'OK', 'a second session');
SELECT is(dblink_send_query('worker', $$SELECT steadytext_generate('Write a long story about a dragon', 2000, false)$$), 1,
          'it starts a long generation');
SELECT pg_sleep(0.5);
CREATE TEMP TABLE t1 AS SELECT clock_timestamp() AS at;
SELECT ok(pg_cancel_backend((SELECT pid FROM pg_stat_activity
                             WHERE query LIKE '%Write a long story about a dragon%2000%' AND pid <> pg_backend_pid()
                               AND state = 'active' LIMIT 1)), 'pg_cancel_backend is delivered');
SELECT is(test_helpers.try($$SELECT * FROM dblink_get_result('worker') AS r(t text)$$),
          '57014: canceling statement due to user request', 'the generation ends with a cancellation');
SELECT ok((SELECT clock_timestamp() - at < interval '2 seconds' FROM t1), 'promptly');
-- drain the connection's end-of-results marker before the next query
DO $$ BEGIN PERFORM * FROM dblink_get_result('worker', false) AS r(t text); END $$;
SELECT test_helpers.same((SELECT t FROM dblink('worker', $$SELECT steadytext_generate('Say hello', 4, false)$$) AS r(t text)),
          steadytext_generate('Say hello', 4, false), 'the cancelled backend still works');

SELECT * FROM finish();
ROLLBACK;
