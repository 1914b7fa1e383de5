-- The prompt registry: versions, required variables, strict rendering, error codes, and who
-- may change a prompt. (Concurrent updates: messages.sh, as they must commit.)
BEGIN;
SELECT plan(31);

SELECT isnt(steadytext_prompt_create('welcome-email', 'Hello {{ name }}, welcome to {{ product | default("SteadyText") }}!',
                                     'A greeting', '{"owner": "docs"}'), NULL, 'create returns the prompt id');
SELECT results_eq($$SELECT version_num, required_variables, metadata FROM steadytext_prompt_get('welcome-email')$$,
                  $$VALUES (1, ARRAY['name', 'product'], '{"owner": "docs"}'::jsonb)$$,
                  'version 1, active, with the variables the template reads');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Ann"}'), 'Hello Ann, welcome to SteadyText!',
          'strict rendering accepts a missing variable that has a default');
SELECT throws_ok($$SELECT steadytext_prompt_render('welcome-email', '{}')$$, 'P0001', 'Missing required variables: name',
                 'and refuses one without');
SELECT is(steadytext_prompt_render('welcome-email', '{}', strict => false), 'Hello , welcome to SteadyText!',
          'non-strict rendering leaves it empty');
SELECT throws_ok($$SELECT steadytext_prompt_render('welcome-email', '[1, 2]')$$, 'P0001',
                 'variables must be a JSON object, got [1,2]');
SELECT throws_ok($$SELECT steadytext_prompt_create('too-long', repeat('x', 70000))$$, '54000', NULL,
                 'a template over 64 KiB is refused');
SELECT throws_like($$SELECT _steadytext_render_template('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', '{}', false)$$,
                   'Template rendering error: the template runs more than % steps', 'a template that runs too long is stopped');

SELECT throws_like($$SELECT steadytext_prompt_create('broken', 'Hi {{ name ')$$,
                   'Invalid Jinja2 template: % (line 1, column %)', 'a syntax error names line and column');
SELECT throws_ok($$SELECT steadytext_prompt_create('broken', E'ok\n{% if x %}')$$, '42601', NULL, 'with SQLSTATE 42601');
SELECT throws_ok($$SELECT steadytext_prompt_create('welcome-email', 'x')$$, '23505',
                 'Prompt with slug "welcome-email" already exists');
SELECT throws_ok($$SELECT steadytext_prompt_create('Bad_Slug', 'x')$$, '22P02',
                 'Invalid slug format. Use lowercase letters, numbers, and hyphens only (3-100 chars)');
SELECT throws_ok($$SELECT steadytext_prompt_create('ok-slug', 'x', repeat('d', 501))$$, '22P02', NULL,
                 'a description over 500 characters too');

SELECT isnt(steadytext_prompt_update('welcome-email', 'Hi {{ name }}!'), NULL, 'update returns the version id');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Bo"}'), 'Hi Bo!', 'the new version is active');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Bo"}', 1), 'Hello Bo, welcome to SteadyText!',
          'the old one is still there, unchanged');
SELECT results_eq($$SELECT version_num, is_active FROM steadytext_prompt_versions('welcome-email')$$,
                  $$VALUES (2, true), (1, false)$$, 'versions, newest first, one active');
SELECT results_eq($$SELECT slug, latest_version_num, total_versions FROM steadytext_prompt_list() WHERE slug = 'welcome-email'$$,
                  $$VALUES ('welcome-email', 2, 2)$$, 'the list counts them');
SELECT throws_ok($$SELECT * FROM steadytext_prompt_get('nope')$$, 'P0002', 'Prompt with slug "nope" not found');
SELECT throws_ok($$SELECT * FROM steadytext_prompt_get('welcome-email', 9)$$, 'P0002', 'Version 9 not found for prompt "welcome-email"');
SELECT throws_ok($$SELECT steadytext_prompt_update('nope', 'x')$$, 'P0002', 'Prompt with slug "nope" not found');
SELECT throws_ok($$UPDATE steadytext_prompt_versions SET template = 'changed'$$, '55000',
                 'prompt versions are immutable: add a version with steadytext_prompt_update');
SELECT isnt(steadytext_generate_from_prompt('welcome-email', '{"name": "Cy"}', 8), NULL, 'generate from a prompt');
SELECT is(st_prompt_render('welcome-email', '{"name": "Bo"}'), 'Hi Bo!', 'the st_ alias renders too');

-- Only its creator or an admin may change a prompt; every user may read and render it. Each role
-- in a session of its own (run.sh makes the login roles): a prompt belongs to the login role.
CREATE TEMP TABLE as_roles(label text, outcome text);
INSERT INTO as_roles VALUES ('create', test_helpers.error_as('pt_alice', $$SELECT steadytext_prompt_create('alice-prompt', 'Dear {{ who }}')$$));
INSERT INTO as_roles VALUES
    ('update', test_helpers.error_as('pt_bob', $$SELECT steadytext_prompt_update('alice-prompt', 'Hacked')$$)),
    ('delete', test_helpers.error_as('pt_bob', $$SELECT steadytext_prompt_delete('alice-prompt')$$)),
    ('insert', test_helpers.error_as('pt_bob', $$INSERT INTO steadytext_prompt_versions (prompt_id, version, template) SELECT id, 9, 'x' FROM steadytext_prompts$$)),
    ('render', (SELECT r FROM dblink(test_helpers.conn('pt_bob'),
                                     $$SELECT steadytext_prompt_render('alice-prompt', '{"who": "Bob"}')$$) AS d(r text)));
SELECT is((SELECT outcome FROM as_roles WHERE label = 'create'), 'ok', 'a user creates a prompt');
SELECT is((SELECT outcome FROM as_roles WHERE label = 'update'),
          '42501: prompt "alice-prompt" belongs to pt_alice: only its creator or steadytext_admin may change it',
          'another user cannot update it');
SELECT matches((SELECT outcome FROM as_roles WHERE label = 'delete'), '^42501: ', 'nor delete it');
SELECT matches((SELECT outcome FROM as_roles WHERE label = 'insert'), '^42501: permission denied', 'nor write the tables');
SELECT is((SELECT outcome FROM as_roles WHERE label = 'render'), 'Dear Bob', 'but may render it');
SELECT is((SELECT created_by FROM steadytext_prompts WHERE slug = 'alice-prompt'), 'pt_alice', 'the creator is recorded');
SELECT ok(steadytext_prompt_delete('alice-prompt') AND NOT steadytext_prompt_delete('alice-prompt'),
          'delete (here by a superuser): true, then false');

SELECT * FROM finish();
ROLLBACK;
