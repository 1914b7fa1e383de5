-- Summarization: facts, deduplication, the aggregates' independence of row order and plan,
-- bounded states, steadytext_summarize_text.
BEGIN;
SELECT plan(24);

-- summaries generate with default_max_tokens: keep them short here
DO $$ BEGIN PERFORM steadytext_config_set('default_max_tokens', '24'); END $$;

SELECT is(steadytext_extract_facts('Short. This is a longer sentence here!'),
          '{"facts": ["Short. This is a longer sentence here!"]}'::jsonb,
          'a sentence ends only after ten characters (the reference''s rule)');
SELECT is(steadytext_extract_facts('Sales rose in May. Costs fell in June. Staff grew too.', 2),
          '{"facts": ["Sales rose in May.", "Costs fell in June."]}'::jsonb, 'max_facts keeps the first ones');
SELECT is(steadytext_extract_facts(NULL), '{"facts": []}'::jsonb, 'NULL text: no facts');
SELECT is(steadytext_extract_facts('   '), '{"facts": []}'::jsonb, 'blank text: no facts');
SELECT throws_ok($$SELECT steadytext_extract_facts('x', 0)$$, 'P0001', 'max_facts must be between 1 and 50');
SELECT throws_ok($$SELECT steadytext_extract_facts('x', 51)$$, 'P0001', 'max_facts must be between 1 and 50');

SELECT is(steadytext_deduplicate_facts('["The cat sat on the mat.", "Stocks fell sharply today.", "The cat sat on the mat!"]'),
          '["The cat sat on the mat.", "Stocks fell sharply today."]'::jsonb,
          'a near-duplicate is dropped, the first kept, the order kept');
SELECT is(steadytext_deduplicate_facts('[{"text": "The cat sat on the mat."}, {"fact": "x"}, {"text": "The cat sat on the mat!"}, 7]'),
          '[{"text": "The cat sat on the mat."}, {"fact": "x"}, 7]'::jsonb,
          'objects compare by "text"; other elements pass through');
SELECT is(steadytext_deduplicate_facts('["only one"]'), '["only one"]'::jsonb, 'one text: unchanged');
SELECT is(steadytext_deduplicate_facts('[]'), '[]'::jsonb, 'empty: empty');
SELECT throws_ok($$SELECT steadytext_deduplicate_facts('["a", "b"]', 1.5)$$, 'P0001',
                 'similarity_threshold must be between 0 and 1');

-- 40 rows, summarised in ascending and descending order, in parallel, and partial/final
CREATE TABLE summary_rows AS
    SELECT i, format('Order %s shipped %s units to the %s warehouse. The customer rated it %s stars.',
                     i, i * 3, (ARRAY['north', 'south', 'east', 'west'])[i % 4 + 1], i % 5 + 1) AS body
    FROM generate_series(1, 40) i;
ANALYZE summary_rows;
CREATE TEMP TABLE summaries AS
SELECT 'ascending' AS way, (SELECT steadytext_summarize(body, '{"topic": "orders"}') FROM (SELECT body FROM summary_rows ORDER BY i) s) AS summary,
       (SELECT steadytext_summarize_partial(body, '{"topic": "orders"}') FROM (SELECT body FROM summary_rows ORDER BY i) s) AS state
UNION ALL
SELECT 'descending', (SELECT steadytext_summarize(body, '{"topic": "orders"}') FROM (SELECT body FROM summary_rows ORDER BY i DESC) s),
       (SELECT steadytext_summarize_partial(body, '{"topic": "orders"}') FROM (SELECT body FROM summary_rows ORDER BY i DESC) s);
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT matches(test_helpers.plan_of($$(ANALYZE) SELECT steadytext_summarize_partial(body, '{"topic": "orders"}') FROM summary_rows$$),
               'Workers Launched: [1-9]', 'the parallel plan runs workers that aggregate and combine their states');
-- a plain SELECT (a statement that writes runs serially)
SELECT steadytext_summarize(body, '{"topic": "orders"}') AS par_summary,
       steadytext_summarize_partial(body, '{"topic": "orders"}') AS par_state FROM summary_rows \gset
INSERT INTO summaries VALUES ('parallel', :'par_summary', :'par_state'::jsonb);
RESET force_parallel_mode; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
INSERT INTO summaries
SELECT 'partial/final', (SELECT steadytext_summarize_final(p) FROM (SELECT steadytext_summarize_partial(body, '{"topic": "orders"}') p
                                                                  FROM summary_rows GROUP BY i % 4) parts), NULL;
SELECT ok((SELECT bool_and(summary IS NOT NULL AND summary NOT IN ('No data to summarize', 'Unable to generate summary'))
           FROM summaries), 'every way gives a generated summary');
SELECT is((SELECT count(DISTINCT summary)::int FROM summaries), 1,
          'ascending, descending, parallel and partial/final give the same bytes');
SELECT is((SELECT count(DISTINCT (state->'facts')::text || (state->'samples')::text)::int FROM summaries WHERE state IS NOT NULL), 1,
          'and the same facts and samples in their states');
SELECT is((SELECT (state->'stats'->>'row_count')::int FROM summaries WHERE way = 'ascending'), 40, 'the state counts the rows');

-- bounded state
SET LOCAL steadytext.summary_max_facts = 5;
SELECT is((SELECT jsonb_array_length(steadytext_summarize_partial(body, '{}')->'facts') FROM summary_rows), 5,
          'steadytext.summary_max_facts bounds the facts kept');
RESET steadytext.summary_max_facts;
SELECT is((SELECT jsonb_array_length(steadytext_summarize_partial(body, '{}')->'samples') FROM summary_rows), 10,
          'and at most 10 samples are kept');

SELECT is((SELECT steadytext_summarize(body, '{}') FROM summary_rows WHERE false), 'No data to summarize', 'no rows');
SELECT throws_ok($$SELECT steadytext_summarize(body, '{"model": "openai:gpt-4o-mini"}') FROM summary_rows$$, 'P0001',
                 'Remote models (containing '':'' ) require unsafe_mode=TRUE', 'the model comes from the metadata');

SELECT is(steadytext_summarize_text(''), 'No text to summarize', 'summarize_text: empty');
SELECT ok(steadytext_summarize_text('PostgreSQL is an open source relational database with over 35 years of development. It is known for reliability and performance.')
          NOT LIKE 'Summary: %', 'summarize_text generates with the default model');
SELECT throws_ok($$SELECT steadytext_summarize_text('x', '{}', 'openai:gpt-4o-mini')$$, 'P0001',
                 'Remote models (containing '':'' ) require unsafe_mode=TRUE', 'a remote model is refused clearly');
SET LOCAL steadytext.generation_model = '/nonexistent/model.gguf';
SELECT is(steadytext_summarize_text(repeat('abcd ', 30)), 'Summary: ' || left(repeat('abcd ', 30), 100) || '...',
          'without a usable model: the first 100 characters');

SELECT * FROM finish();
ROLLBACK;
