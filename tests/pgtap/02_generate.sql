-- steadytext_generate: results, determinism, validation errors, the cache read path.
BEGIN;
SELECT plan(24);

SELECT isnt(steadytext_generate('Write a haiku about PostgreSQL', 32, false), NULL, 'generates text');
SELECT test_helpers.same(steadytext_generate('Write a haiku about PostgreSQL', 32, false),
          steadytext_generate('Write a haiku about PostgreSQL', 32, false), 'same input, same output');
SELECT test_helpers.same(steadytext_generate('Write a haiku about PostgreSQL', 32, false, 7),
          steadytext_generate('Write a haiku about PostgreSQL', 32, false, 8),
          'greedy decoding: the seed does not change the text');
SELECT ok(length(steadytext_generate('Write a long story about a dragon', 4, false))
          < length(steadytext_generate('Write a long story about a dragon', 48, false)),
          'max_tokens bounds the output');
SELECT ok(starts_with(steadytext_generate('Write a long story about a dragon', 48, false),
                      steadytext_generate('Write a long story about a dragon', 4, false)),
          'a shorter budget gives a prefix');

-- eos_string stops before it: take the fourth word of the full answer as the stop string
-- (which needs an answer of more than four words).
SELECT ok(cardinality(regexp_split_to_array(steadytext_generate('Write a haiku about PostgreSQL', 32, false), ' ')) > 4,
          'the answer has more than four words');
SELECT test_helpers.same(
    steadytext_generate('Write a haiku about PostgreSQL', 32, false, 42,
        split_part(steadytext_generate('Write a haiku about PostgreSQL', 32, false), ' ', 4)),
    rtrim(split_part(steadytext_generate('Write a haiku about PostgreSQL', 32, false),
          split_part(steadytext_generate('Write a haiku about PostgreSQL', 32, false), ' ', 4), 1)),
    'eos_string ends the text before it');

-- validation, with the Python extension's SQLSTATEs and texts (no PL/Python prefix)
SELECT throws_ok($$SELECT steadytext_generate(NULL)$$, 'P0001', 'Prompt cannot be null');
SELECT throws_ok($$SELECT steadytext_generate('   ')$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate('hi', 8, false, -1)$$, 'P0001', 'seed must be non-negative');
SELECT throws_ok($$SELECT steadytext_generate('hi', model => 'openai:gpt-4o-mini')$$,
                 'P0001', 'Remote models (containing '':'' ) require unsafe_mode=TRUE');
SELECT throws_ok($$SELECT steadytext_generate('hi', unsafe_mode => true)$$,
                 'P0001', 'unsafe_mode=TRUE requires a model parameter');
SELECT throws_like($$SELECT steadytext_generate('hi', model => 'openai:gpt-4o-mini', unsafe_mode => true)$$,
                   '%not run locally%steadytext.remote_base_url%', 'without an endpoint, remote providers are refused, naming the setting');
SELECT throws_ok($$SELECT steadytext_generate('hi', 0, false)$$, 'P0001', 'max_tokens must be at least 1');
-- a prompt longer than the model's window (but within steadytext.max_prompt_length)
SELECT throws_like($$SELECT steadytext_generate(repeat('9 ', 4900), 64, false)$$,
                   'prompt has % tokens but the model''s context window holds 4096%',
                   'a prompt that does not fit the window is refused before decoding');
SELECT throws_ok($$SELECT steadytext_generate(repeat('9 ', 4900), 64, false)$$, '54000');
-- a prompt longer than steadytext.max_prompt_length is refused before it is tokenized
SELECT throws_ok($$SELECT steadytext_generate(repeat('database ', 5000), 64, false)$$, '54000',
    'the prompt has at least 11250 characters, more than the limit of 10000 (steadytext.max_prompt_length)');
-- max_tokens beyond what the window leaves is clamped (with a NOTICE, checked by messages.sh)
SELECT isnt(steadytext_generate('Answer with one word: what colour is the sky?', 4096, false), NULL,
            'max_tokens 4096 with a short prompt returns text');

-- no model: NULL and a WARNING that says how to fix it
SET LOCAL steadytext.generation_model = '/nonexistent/model.gguf';
SELECT is(steadytext_generate('hi', 8, false), NULL, 'no model gives NULL');
-- (the WARNING's text is checked by tests/pgtap/messages.sh: pgTAP cannot capture warnings)
RESET steadytext.generation_model;

-- max_tokens NULL takes default_max_tokens from the config, also when it was set as text
DO $$ BEGIN PERFORM steadytext_config_set('default_max_tokens', '6'); END $$;
SELECT test_helpers.same(steadytext_generate('Write a long story about a dragon', NULL, false),
          steadytext_generate('Write a long story about a dragon', 6, false),
          'a number set as text is used as a number');

-- the cache read path: a row written by _cached is what use_cache => true returns
DO $$ BEGIN PERFORM steadytext_generate_cached('Name a colour', 8); END $$;
UPDATE steadytext_cache SET response = 'from the cache' WHERE prompt = 'Name a colour';
SELECT is(steadytext_generate('Name a colour', 8), 'from the cache', 'use_cache reads the cache');
SELECT isnt(steadytext_generate('Name a colour', 8, false), 'from the cache', 'use_cache => false does not');
SELECT isnt(steadytext_generate('Name a colour', 9), 'from the cache', 'max_tokens is part of the key');
SELECT isnt(steadytext_generate('Name a colour', 8, true, 42, 'x'), 'from the cache', 'eos_string is part of the key');

SELECT * FROM finish();
ROLLBACK;
