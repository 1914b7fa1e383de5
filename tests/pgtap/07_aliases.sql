-- The st_* aliases give the same results as the functions they stand for.
BEGIN;
SELECT plan(10);

SELECT test_helpers.same(st_generate('Say hello', 8, false), steadytext_generate('Say hello', 8, false), 'st_generate');
SELECT test_helpers.same(st_embed('hello', false), steadytext_embed('hello', false), 'st_embed');
SELECT test_helpers.same(st_embed_cached('alias row'), steadytext_embed('alias row', false), 'st_embed_cached');
SELECT test_helpers.same(st_generate_cached('Say hi', 4), steadytext_generate('Say hi', 4, false), 'st_generate_cached');
SELECT test_helpers.same((SELECT embedding FROM st_embed_batch(ARRAY['a', 'b']) WHERE index = 2), steadytext_embed('b', false), 'st_embed_batch');
SELECT test_helpers.same(st_version(), steadytext_version(), 'st_version');
SELECT test_helpers.same(st_info()->>'version', steadytext_version(), 'st_info');
DO $$ BEGIN PERFORM st_config_set('default_seed', '7'); END $$;
SELECT is(st_config_get('default_seed'), '7', 'st_config_set / st_config_get');
SELECT results_eq('SELECT total_entries FROM st_cache_stats()', 'SELECT total_entries FROM steadytext_cache_stats()', 'st_cache_stats');
SELECT throws_ok($$SELECT st_generate(NULL)$$, 'P0001', 'Prompt cannot be null');

SELECT * FROM finish();
ROLLBACK;
