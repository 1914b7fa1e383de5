-- Inference through the st daemon (started on demand by the first call): the same bytes as in
-- the backend, and the fallback and its refusal when the daemon cannot be reached.
BEGIN;
SELECT plan(17);

SELECT isnt(steadytext_generate('Say hello', 8, false), NULL, 'a first call starts the daemon on demand');
SELECT is(steadytext_info()->'inference'->>'location', 'daemon', 'inference runs in the daemon');
SELECT is(steadytext_info()->'inference'->>'daemon_endpoint',
          'ipc://' || current_setting('data_directory') || '/pg_steadytext/daemon.sock',
          'on the cluster''s private socket');

-- no silent fallback to the backend: this side must come from the daemon
SET LOCAL steadytext.inprocess_fallback = off;
CREATE TEMP TABLE via_daemon AS
    SELECT steadytext_generate('Write a haiku about PostgreSQL', 32, false) AS t,
           steadytext_embed('hello', false) AS v,
           (SELECT string_agg(p, '' ORDER BY n) FROM steadytext_generate_stream('Name three colours', 24, false)
                WITH ORDINALITY AS s(p, n)) AS streamed;
RESET steadytext.inprocess_fallback;
SET LOCAL steadytext.use_daemon = off;
CREATE TEMP TABLE in_backend AS
    SELECT steadytext_generate('Write a haiku about PostgreSQL', 32, false) AS t,
           steadytext_embed('hello', false) AS v,
           (SELECT string_agg(p, '' ORDER BY n) FROM steadytext_generate_stream('Name three colours', 24, false)
                WITH ORDINALITY AS s(p, n)) AS streamed;
SELECT is(steadytext_info()->'inference'->>'location', 'in-process', 'steadytext.use_daemon = off runs here');
SET LOCAL steadytext.use_daemon = on;
SELECT test_helpers.same((SELECT t FROM via_daemon), (SELECT t FROM in_backend), 'daemon and backend generate the same bytes');
SELECT test_helpers.same((SELECT v FROM via_daemon), (SELECT v FROM in_backend), 'and the same embedding');
SELECT test_helpers.same((SELECT streamed FROM via_daemon), (SELECT streamed FROM in_backend), 'and stream the same pieces');

-- the daemon functions act on the daemon itself and keep the health row current
SELECT results_eq($$SELECT daemon_id, status, endpoint FROM steadytext_daemon_status()$$,
    $$VALUES ('default', 'healthy', 'ipc://' || current_setting('data_directory') || '/pg_steadytext/daemon.sock')$$,
    'status reports the running daemon');
SELECT ok((SELECT uptime_seconds IS NOT NULL AND uptime_seconds >= 0 AND last_heartbeat IS NOT NULL FROM st_daemon_status()),
          'with its real uptime');
SELECT is((SELECT status FROM steadytext_daemon_health WHERE daemon_id = 'default'), 'healthy', 'and records it');
SELECT is(steadytext_daemon_start(), true, 'start is a no-op when it already runs');
SELECT ok((SELECT array_length(models_loaded, 1) >= 1 FROM steadytext_daemon_health WHERE daemon_id = 'default'),
          'the health row lists the loaded models');

-- an interrupted stream tells the daemon to stop decoding: the next request does not wait
-- behind it. First the whole story, timed: it runs to its 400-token budget (no early end).
CREATE TEMP TABLE t_full AS SELECT clock_timestamp() AS at;
CREATE TEMP TABLE full_story AS
    SELECT steadytext_generate('Write a very long story about a dragon', 400, false) AS t, clock_timestamp() AS done;
SELECT ok((SELECT length(t) > 1400 FROM full_story), 'the story is long: the model does not end it early');
SET LOCAL statement_timeout = '300ms';
SELECT is(test_helpers.try($$SELECT count(*) FROM (SELECT steadytext_generate_stream('Write a very long story about a dragon', 400, false)) s$$),
          '57014: canceling statement due to statement timeout', 'statement_timeout interrupts a stream');
SET LOCAL statement_timeout = 0;
CREATE TEMP TABLE t_next AS SELECT clock_timestamp() AS at;
SELECT ok(steadytext_generate('Say goodbye', 4, false) IS NOT NULL
          AND clock_timestamp() - (SELECT at FROM t_next)
              < ((SELECT done FROM full_story) - (SELECT at FROM t_full)) / 2,
          'the daemon stopped decoding the abandoned stream');

-- an unreachable daemon: fall back, or refuse when the fallback is off
UPDATE steadytext_config SET value = 'false' WHERE key = 'daemon_auto_start';
SET LOCAL steadytext.daemon_endpoint = 'tcp://127.0.0.1:9';
SELECT isnt(steadytext_generate('Say hello', 8, false), NULL, 'with inprocess_fallback the backend answers');

SET LOCAL steadytext.inprocess_fallback = off;
SELECT throws_like($$SELECT steadytext_generate('Say goodbye', 8, false)$$,
                   'no st daemon answers at tcp://127.0.0.1:9%', 'without it the call fails clearly');

SELECT * FROM finish();
ROLLBACK;
