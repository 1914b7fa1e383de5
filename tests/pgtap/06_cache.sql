-- Cache management: stats with a real hit rate, clear, eviction by age and by frecency,
-- preview, usage analysis, scheduled eviction.
BEGIN;
SELECT plan(21);

DELETE FROM steadytext_cache;
UPDATE steadytext_cache_lookups SET hits = 0, misses = 0;

-- rows with known ages and uses
INSERT INTO steadytext_cache (cache_key, prompt, response, access_count, last_accessed, created_at) VALUES
    ('old-hot',   'old and hot',    'r', 50, now() - interval '1 minute', now() - interval '30 days'),
    ('old-cold',  'old and cold',   'r', 1,  now() - interval '20 days',  now() - interval '20 days'),
    ('mid-warm',  'middle, warm',   'r', 5,  now() - interval '2 hours',  now() - interval '5 days'),
    ('new-cold',  'new and cold',   'r', 1,  now() - interval '3 days',   now() - interval '3 days'),
    ('fresh',     'fresh',          'r', 1,  now(),                       now());

SELECT is((SELECT total_entries FROM steadytext_cache_stats()), 5::bigint, 'stats count the rows');
SELECT ok((SELECT total_size_mb > 0 FROM steadytext_cache_stats()), 'stats measure text-only rows too');
SELECT is((SELECT avg_access_count FROM steadytext_cache_stats()), 11.6::float8, 'average access count');
SELECT is((SELECT cache_hit_rate FROM steadytext_cache_stats()), 0::float8, 'no lookups yet: hit rate 0');

-- frecency: access count weighted by recency
SELECT results_eq(
    $$SELECT cache_key FROM steadytext_cache_with_frecency ORDER BY frecency_score DESC$$,
    ARRAY['fresh', 'old-hot', 'mid-warm', 'new-cold', 'old-cold'],
    'frecency ranks recent and frequent rows first');
SELECT results_eq(
    $$SELECT cache_key FROM steadytext_cache_preview_eviction(3)$$,
    ARRAY['old-cold', 'new-cold', 'mid-warm'],
    'preview lists what frecency eviction takes first (older than an hour)');
SELECT is((SELECT prompt FROM steadytext_cache_preview_eviction(1)), 'old and cold', 'preview shows the prompt');

SELECT results_eq(
    $$SELECT age_bucket, entry_count FROM steadytext_cache_analyze_usage()$$,
    $$VALUES ('< 1 hour', 1::bigint), ('1 day - 7 days', 2::bigint), ('7 days - 30 days', 1::bigint), ('> 30 days', 1::bigint)$$,
    'usage by age bucket');

-- frecency eviction to 3 entries: the two lowest scores go, the young row is protected
SELECT results_eq(
    $$SELECT evicted_count, remaining_entries FROM steadytext_cache_evict_by_frecency(3, NULL, 1, NULL)$$,
    $$VALUES (2, 3::bigint)$$, 'evicts two rows, one per batch');
SELECT set_eq($$SELECT cache_key FROM steadytext_cache$$, ARRAY['fresh', 'old-hot', 'mid-warm'],
              'the lowest-frecency rows were evicted, the hot old row kept');
SELECT is((SELECT count(*)::int FROM steadytext_audit_log WHERE event_type = 'cache_eviction'
           AND details->>'eviction_type' = 'frecency' AND created_at = now()), 2, 'one audit row per batch');

-- min_access_count protects rows used that often
SELECT results_eq(
    $$SELECT evicted_count FROM steadytext_cache_evict_by_frecency(0, NULL, 10, 5)$$,
    $$VALUES (0)$$, 'rows used at least min_access_count times are kept; the fresh row is too young');

-- age eviction: oldest first, regardless of use
SELECT results_eq(
    $$SELECT evicted_count FROM steadytext_cache_evict_by_age(2, NULL, 1)$$, $$VALUES (1)$$,
    'age eviction removes one row');
SELECT set_eq($$SELECT cache_key FROM steadytext_cache$$, ARRAY['fresh', 'mid-warm'], 'the oldest row went first');
SELECT results_eq($$SELECT evicted_count FROM steadytext_cache_evict_by_age(0)$$, $$VALUES (1)$$,
                  'min_age_hours protects the fresh row');
SELECT throws_ok($$SELECT * FROM steadytext_cache_evict_by_age(0, NULL, 0)$$, 'P0001', 'batch_size must be at least 1');

-- scheduled eviction obeys cache_eviction_enabled and the configured targets
INSERT INTO steadytext_cache (cache_key, prompt, response, created_at) VALUES ('old2', 'p', 'r', now() - interval '2 days');
DO $$ BEGIN PERFORM steadytext_config_set('cache_max_entries', '1'); END $$;
DO $$ BEGIN PERFORM steadytext_config_set('cache_eviction_enabled', 'false'); END $$;
SELECT steadytext_cache_scheduled_eviction();
SELECT is((SELECT count(*)::int FROM steadytext_cache), 2, 'disabled: nothing evicted');
DO $$ BEGIN PERFORM steadytext_config_set('cache_eviction_enabled', 'true'); END $$;
SELECT steadytext_cache_scheduled_eviction();
SELECT is((SELECT count(*)::int FROM steadytext_cache), 1, 'enabled: evicted to cache_max_entries (set as text)');

-- hit rate from counted lookups
DO $$ BEGIN PERFORM steadytext_generate_cached('Name a fruit', 4); PERFORM steadytext_generate_cached('Name a fruit', 4);
             PERFORM steadytext_generate_cached('Name a fruit', 4); END $$;
SELECT is((SELECT cache_hit_rate FROM steadytext_cache_stats()), (2.0 / 3)::float8, 'two hits out of three lookups');

SELECT is(steadytext_cache_clear(), 2::bigint, 'clear returns how many rows it deleted');
SELECT is((SELECT count(*)::int FROM steadytext_cache), 0, 'and the cache is empty');

SELECT * FROM finish();
ROLLBACK;
