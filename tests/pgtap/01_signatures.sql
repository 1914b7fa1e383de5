-- Every function's exact signature (names, defaults, result), volatility and parallel label.
BEGIN;

CREATE TEMP TABLE expected(fn text, args text, result text, vol "char", par "char", strict bool, leak bool);
INSERT INTO expected VALUES
 ('steadytext_generate', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'text', 'i', 's', false, false),
 ('steadytext_generate_stream', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'SETOF text', 'i', 's', false, false),
 ('steadytext_generate_cached', 'prompt text, max_tokens integer DEFAULT NULL::integer, seed integer DEFAULT 42', 'text', 'v', 'u', false, false),
 ('steadytext_embed', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'i', 's', false, false),
 ('steadytext_embed_cached', 'text_input text, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'v', 'u', false, false),
 ('steadytext_embed_batch', 'texts text[]', 'TABLE(index integer, embedding vector)', 'i', 's', false, false),
 ('steadytext_version', '', 'text', 'i', 's', true, true),
 ('steadytext_info', '', 'jsonb', 'v', 'u', true, false),
 ('steadytext_config_get', 'config_key text', 'text', 's', 's', true, false),
 ('steadytext_config_set', 'config_key text, config_value text', 'void', 'v', 'u', true, false),
 ('steadytext_cache_stats', '', 'TABLE(total_entries bigint, total_size_mb double precision, cache_hit_rate double precision, avg_access_count double precision, oldest_entry timestamp with time zone, newest_entry timestamp with time zone)', 's', 's', false, false),
 ('steadytext_cache_clear', '', 'bigint', 'v', 'u', false, false),
 ('steadytext_cache_evict_by_age', 'target_entries integer DEFAULT NULL::integer, target_size_mb double precision DEFAULT NULL::double precision, batch_size integer DEFAULT 100, min_age_hours integer DEFAULT 1', 'TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)', 'v', 'u', false, false),
 ('steadytext_cache_evict_by_frecency', 'target_entries integer DEFAULT NULL::integer, target_size_mb double precision DEFAULT NULL::double precision, batch_size integer DEFAULT 100, min_access_count integer DEFAULT 2, min_age_hours integer DEFAULT 1', 'TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)', 'v', 'u', false, false),
 ('steadytext_cache_scheduled_eviction', '', 'void', 'v', 'u', false, false),
 ('steadytext_cache_preview_eviction', 'preview_count integer DEFAULT 10', 'TABLE(cache_key text, prompt text, access_count integer, last_accessed timestamp with time zone, created_at timestamp with time zone, age_days double precision, size_bytes bigint)', 's', 's', false, false),
 ('steadytext_cache_analyze_usage', '', 'TABLE(age_bucket text, entry_count bigint, avg_access_count double precision, total_size_mb double precision, percentage_of_cache double precision)', 's', 's', false, false),
 ('steadytext_semantic_search', 'query_text text, limit_results integer DEFAULT 10, similarity_threshold double precision DEFAULT 0.7', 'TABLE(content text, similarity double precision, generated_text text)', 's', 's', false, false),
 ('_steadytext_raise_p0001', 'message text', 'void', 'v', 'u', false, false),
 ('steadytext_daemon_start', '', 'boolean', 'v', 'u', true, false),
 ('steadytext_daemon_stop', '', 'boolean', 'v', 'u', true, false),
 ('steadytext_daemon_status', '', 'TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamp with time zone, uptime_seconds integer)', 'v', 'u', true, false),
 ('st_daemon_start', '', 'boolean', 'v', 'u', false, false),
 ('st_daemon_stop', '', 'boolean', 'v', 'u', false, false),
 ('st_daemon_status', '', 'TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamp with time zone, uptime_seconds integer)', 's', 'u', false, false),
 -- aliases, with the Python extension's quirks except one: functions that write (or start and
 -- stop processes) are PARALLEL UNSAFE, where the Python extension labelled several SAFE
 ('st_generate', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'text', 'i', 's', false, false),
 ('st_generate_stream', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'SETOF text', 'i', 's', false, false),
 ('st_generate_cached', 'prompt text, max_tokens integer DEFAULT NULL::integer, seed integer DEFAULT 42', 'text', 'v', 'u', false, false),
 ('st_embed', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'i', 's', false, false),
 ('st_embed_cached', 'text_input text, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'v', 'u', false, false),
 ('st_embed_batch', 'texts text[]', 'TABLE(index integer, embedding vector)', 'i', 's', false, false),
 ('st_version', '', 'text', 'i', 's', false, false),
 ('st_info', '', 'jsonb', 'v', 'u', false, false),
 ('st_config_get', 'key text', 'text', 's', 's', true, false),
 ('st_config_set', 'key text, value text', 'void', 'v', 'u', true, false),
 ('st_cache_stats', '', 'TABLE(total_entries bigint, total_size_mb double precision, cache_hit_rate double precision, avg_access_count double precision, oldest_entry timestamp with time zone, newest_entry timestamp with time zone)', 's', 's', false, false),
 ('st_cache_clear', '', 'bigint', 'v', 'u', false, false),
 ('st_cache_evict_by_age', 'target_entries integer DEFAULT NULL::integer, target_size_mb double precision DEFAULT NULL::double precision, batch_size integer DEFAULT 100, min_age_hours integer DEFAULT 1', 'TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)', 'v', 'u', false, false),
 ('st_cache_preview_eviction', 'preview_count integer DEFAULT 10', 'TABLE(cache_key text, prompt text, access_count integer, last_accessed timestamp with time zone, created_at timestamp with time zone, age_days double precision, size_bytes bigint)', 's', 's', false, false),
 ('st_cache_analyze_usage', '', 'TABLE(age_bucket text, entry_count bigint, avg_access_count double precision, total_size_mb double precision, percentage_of_cache double precision)', 's', 's', false, false),
 ('st_cache_scheduled_eviction', '', 'void', 'v', 'u', false, false),
 ('st_cancel_async', 'request_id uuid', 'boolean', 'v', 'u', false, false),
 ('st_check_async', 'request_id uuid', 'TABLE(status text, result text, results text[], embedding vector, embeddings vector[], error text, created_at timestamp with time zone, completed_at timestamp with time zone, processing_time_ms integer, request_type text)', 's', 's', false, false),
 ('st_check_async_batch', 'request_ids uuid[]', 'TABLE(request_id uuid, status text, result text, error text, completed_at timestamp with time zone)', 'v', 's', false, false),
 ('st_embed_async', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'uuid', 'v', 'u', false, false),
 ('st_embed_batch_async', 'texts text[]', 'uuid[]', 'v', 'u', false, false),
 ('st_generate_async', 'prompt text, max_tokens integer DEFAULT NULL::integer', 'uuid', 'v', 'u', false, false),
 ('st_generate_batch_async', 'prompts text[], max_tokens integer DEFAULT 512', 'uuid[]', 'v', 'u', false, false),
 ('st_get_async_result', 'request_id uuid, timeout_seconds integer DEFAULT 30', 'text', 'v', 'u', false, false),
 ('steadytext_cancel_async', 'request_id uuid', 'boolean', 'v', 'u', true, false),
 ('steadytext_check_async', 'request_id uuid', 'TABLE(status text, result text, results text[], embedding vector, embeddings vector[], error text, created_at timestamp with time zone, completed_at timestamp with time zone, processing_time_ms integer, request_type text)', 's', 's', false, true),
 ('steadytext_check_async_batch', 'request_ids uuid[]', 'TABLE(request_id uuid, status text, result text, error text, completed_at timestamp with time zone)', 'v', 's', false, false),
 ('steadytext_embed_async', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'uuid', 'v', 'u', false, false),
 ('steadytext_embed_batch_async', 'texts text[]', 'uuid[]', 'v', 'u', false, false),
 ('steadytext_generate_async', 'prompt text, max_tokens integer DEFAULT 512', 'uuid', 'v', 'u', false, false),
 ('steadytext_generate_batch_async', 'prompts text[], max_tokens integer DEFAULT 512', 'uuid[]', 'v', 'u', false, false),
 ('steadytext_get_async_result', 'request_id uuid, timeout_seconds integer DEFAULT 30', 'text', 'v', 'u', false, false),
 ('steadytext_queue_claim', 'worker text, max_rows integer DEFAULT 1, lease_seconds integer DEFAULT NULL::integer', 'SETOF steadytext_queue', 'v', 'u', false, false),
 ('steadytext_queue_complete', 'job_id integer, worker text, result_text text DEFAULT NULL::text, result_embedding vector DEFAULT NULL::vector, cache_key text DEFAULT NULL::text, model_name text DEFAULT NULL::text', 'boolean', 'v', 'u', false, false),
 ('steadytext_queue_fail', 'job_id integer, worker text, error_message text, retryable boolean DEFAULT true', 'text', 'v', 'u', false, false),
 ('steadytext_queue_heartbeat', 'job_id integer, worker text, lease_seconds integer DEFAULT NULL::integer', 'boolean', 'v', 'u', false, false),
 ('steadytext_queue_release', 'job_id integer, worker text', 'boolean', 'v', 'u', false, false),
 ('steadytext_set_async_priority', 'request_id uuid, priority integer', 'boolean', 'v', 'u', false, false),
 ('_steadytext_rerank_params', 'query text, documents text[], task text, return_scores boolean, seed integer', 'jsonb', 'v', 'u', false, false),
 ('st_generate_choice', 'prompt text, choices text[], max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false', 'text', 'i', 's', false, false),
 ('st_generate_json', 'prompt text, schema jsonb, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false', 'text', 'i', 's', false, false),
 ('st_generate_regex', 'prompt text, pattern text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false', 'text', 'i', 's', false, false),
 ('st_rerank', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'i', 's', false, false),
 ('st_rerank_async', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'v', 'u', false, false),
 ('st_rerank_batch', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(query_index integer, document text, score double precision)', 'i', 's', false, false),
 ('st_rerank_batch_async', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid[]', 'v', 'u', false, false),
 ('st_rerank_docs_only', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, seed integer DEFAULT 42', 'TABLE(document text)', 'i', 's', false, false),
 ('st_rerank_top_k', 'query text, documents text[], k integer DEFAULT 5, task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'i', 's', false, false),
 ('steadytext_generate_choice', 'prompt text, choices text[], max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false, model text DEFAULT NULL::text', 'text', 'i', 's', false, false),
 ('steadytext_generate_choice_async', 'prompt text, choices text[], max_tokens integer DEFAULT 512, use_cache boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'v', 'u', false, false),
 ('steadytext_generate_json', 'prompt text, schema jsonb, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false, model text DEFAULT NULL::text', 'text', 'i', 's', false, false),
 ('steadytext_generate_json_async', 'prompt text, schema jsonb, max_tokens integer DEFAULT 512, use_cache boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'v', 'u', false, false),
 ('steadytext_generate_regex', 'prompt text, pattern text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false, model text DEFAULT NULL::text', 'text', 'i', 's', false, false),
 ('steadytext_generate_regex_async', 'prompt text, pattern text, max_tokens integer DEFAULT 512, use_cache boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'v', 'u', false, false),
 ('steadytext_rerank', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'i', 's', false, false),
 ('steadytext_rerank_async', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'v', 'u', false, false),
 ('steadytext_rerank_batch', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(query_index integer, document text, score double precision)', 'i', 's', false, false),
 ('steadytext_rerank_batch_async', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid[]', 'v', 'u', false, false),
 ('steadytext_rerank_docs_only', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, seed integer DEFAULT 42', 'TABLE(document text)', 'i', 's', false, false),
 ('steadytext_rerank_top_k', 'query text, documents text[], top_k integer, task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'i', 's', false, false),
 ('st_semantic_search', 'query_text text, limit_results integer DEFAULT 10, similarity_threshold double precision DEFAULT 0.7', 'TABLE(content text, similarity double precision, generated_text text)', 's', 's', false, false);

-- The Python extension's 93 functions and 4 aggregates (2025.11.25), each by name, argument
-- list and result, as pg_get_function_arguments / pg_get_function_result print them.
CREATE TEMP TABLE reference(fn text, args text, result text, kind "char");
INSERT INTO reference VALUES
 -- 1.1 Text generation
 ('steadytext_generate', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 ('steadytext_generate_stream', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'SETOF text', 'f'),
 ('steadytext_generate_cached', 'prompt text, max_tokens integer DEFAULT NULL::integer, seed integer DEFAULT 42', 'text', 'f'),
 -- 1.2 Structured generation
 ('steadytext_generate_json', 'prompt text, schema jsonb, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false, model text DEFAULT NULL::text', 'text', 'f'),
 ('steadytext_generate_regex', 'prompt text, pattern text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false, model text DEFAULT NULL::text', 'text', 'f'),
 ('steadytext_generate_choice', 'prompt text, choices text[], max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false, model text DEFAULT NULL::text', 'text', 'f'),
 -- 1.3 Embeddings
 ('steadytext_embed', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'f'),
 ('steadytext_embed_cached', 'text_input text, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'f'),
 -- 1.4 Reranking
 ('steadytext_rerank', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'f'),
 ('steadytext_rerank_docs_only', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, seed integer DEFAULT 42', 'TABLE(document text)', 'f'),
 ('steadytext_rerank_top_k', 'query text, documents text[], top_k integer, task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'f'),
 ('steadytext_rerank_batch', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(query_index integer, document text, score double precision)', 'f'),
 -- 1.5 Async queue
 ('steadytext_generate_async', 'prompt text, max_tokens integer DEFAULT 512', 'uuid', 'f'),
 ('steadytext_generate_batch_async', 'prompts text[], max_tokens integer DEFAULT 512', 'uuid[]', 'f'),
 ('steadytext_embed_async', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'uuid', 'f'),
 ('steadytext_embed_batch_async', 'texts text[]', 'uuid[]', 'f'),
 ('steadytext_rerank_async', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'f'),
 ('steadytext_rerank_batch_async', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid[]', 'f'),
 ('steadytext_check_async', 'request_id uuid', 'TABLE(status text, result text, results text[], embedding vector, embeddings vector[], error text, created_at timestamp with time zone, completed_at timestamp with time zone, processing_time_ms integer, request_type text)', 'f'),
 ('steadytext_check_async_batch', 'request_ids uuid[]', 'TABLE(request_id uuid, status text, result text, error text, completed_at timestamp with time zone)', 'f'),
 ('steadytext_get_async_result', 'request_id uuid, timeout_seconds integer DEFAULT 30', 'text', 'f'),
 ('steadytext_cancel_async', 'request_id uuid', 'boolean', 'f'),
 -- 1.6 Cache management
 ('steadytext_cache_stats', '', 'TABLE(total_entries bigint, total_size_mb double precision, cache_hit_rate double precision, avg_access_count double precision, oldest_entry timestamp with time zone, newest_entry timestamp with time zone)', 'f'),
 ('steadytext_cache_clear', '', 'bigint', 'f'),
 ('steadytext_cache_evict_by_age', 'target_entries integer DEFAULT NULL::integer, target_size_mb double precision DEFAULT NULL::double precision, batch_size integer DEFAULT 100, min_age_hours integer DEFAULT 1', 'TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)', 'f'),
 ('steadytext_cache_evict_by_frecency', 'target_entries integer DEFAULT NULL::integer, target_size_mb double precision DEFAULT NULL::double precision, batch_size integer DEFAULT 100, min_access_count integer DEFAULT 2, min_age_hours integer DEFAULT 1', 'TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)', 'f'),
 ('steadytext_cache_scheduled_eviction', '', 'void', 'f'),
 ('steadytext_cache_preview_eviction', 'preview_count integer DEFAULT 10', 'TABLE(cache_key text, prompt text, access_count integer, last_accessed timestamp with time zone, created_at timestamp with time zone, age_days double precision, size_bytes bigint)', 'f'),
 ('steadytext_cache_analyze_usage', '', 'TABLE(age_bucket text, entry_count bigint, avg_access_count double precision, total_size_mb double precision, percentage_of_cache double precision)', 'f'),
 -- 1.7 Daemon management
 ('steadytext_daemon_start', '', 'boolean', 'f'),
 ('steadytext_daemon_status', '', 'TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamp with time zone, uptime_seconds integer)', 'f'),
 ('steadytext_daemon_stop', '', 'boolean', 'f'),
 -- 1.8 Configuration
 ('steadytext_config_set', 'config_key text, config_value text', 'void', 'f'),
 ('steadytext_config_get', 'config_key text', 'text', 'f'),
 -- 1.9 Summarization
 ('steadytext_extract_facts', 'input_text text, max_facts integer DEFAULT 10', 'jsonb', 'f'),
 ('steadytext_deduplicate_facts', 'facts_array jsonb, similarity_threshold double precision DEFAULT 0.85', 'jsonb', 'f'),
 ('steadytext_summarize_accumulate', 'state jsonb, value text, metadata jsonb DEFAULT ''{}''::jsonb', 'jsonb', 'f'),
 ('steadytext_summarize_combine', 'state1 jsonb, state2 jsonb', 'jsonb', 'f'),
 ('steadytext_summarize_finalize', 'state jsonb', 'text', 'f'),
 ('steadytext_summarize_combine_states', 'state1 jsonb, partial_state jsonb', 'jsonb', 'f'),
 ('steadytext_summarize', 'text, jsonb', 'text', 'a'),
 ('steadytext_summarize_partial', 'text, jsonb', 'jsonb', 'a'),
 ('steadytext_summarize_final', 'jsonb', 'text', 'a'),
 ('steadytext_summarize_text', 'input_text text, metadata jsonb DEFAULT ''{}''::jsonb, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 -- 1.10 Prompt registry
 ('_get_next_version', 'p_prompt_id uuid', 'integer', 'f'),
 ('_validate_jinja2_template', 'template text', 'TABLE(is_valid boolean, required_variables text[], error_message text)', 'f'),
 ('steadytext_prompt_create', 'slug text, template text, description text DEFAULT NULL::text, metadata jsonb DEFAULT ''{}''::jsonb', 'uuid', 'f'),
 ('steadytext_prompt_update', 'slug text, template text, metadata jsonb DEFAULT ''{}''::jsonb', 'uuid', 'f'),
 ('steadytext_prompt_get', 'slug text, version integer DEFAULT NULL::integer', 'TABLE(prompt_id uuid, version_num integer, template text, required_variables text[], metadata jsonb, created_at timestamp with time zone, created_by text)', 'f'),
 ('steadytext_prompt_render', 'slug text, variables jsonb, version integer DEFAULT NULL::integer, strict boolean DEFAULT true', 'text', 'f'),
 ('steadytext_prompt_list', '', 'TABLE(prompt_id uuid, slug text, description text, latest_version_num integer, total_versions integer, created_at timestamp with time zone, updated_at timestamp with time zone)', 'f'),
 ('steadytext_prompt_versions', 'slug text', 'TABLE(version_num integer, template text, required_variables text[], metadata jsonb, created_at timestamp with time zone, created_by text, is_active boolean)', 'f'),
 ('steadytext_prompt_delete', 'slug text', 'boolean', 'f'),
 -- 1.12 Version and internal helpers
 ('steadytext_version', '', 'text', 'f'),
 ('_steadytext_raise_p0001', 'message text', 'void', 'f'),
 ('_steadytext_init_python', '', 'void', 'f'),
 -- 1.13 st_* aliases (40 sql functions + 1 aggregate)
 ('st_generate', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 ('st_embed', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'f'),
 ('st_rerank', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'f'),
 ('st_rerank_docs_only', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, seed integer DEFAULT 42', 'TABLE(document text)', 'f'),
 ('st_rerank_batch', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(query_index integer, document text, score double precision)', 'f'),
 ('st_generate_stream', 'prompt text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, eos_string text DEFAULT ''[EOS]''::text, model text DEFAULT NULL::text, model_repo text DEFAULT NULL::text, model_filename text DEFAULT NULL::text, size text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'SETOF text', 'f'),
 ('st_generate_json', 'prompt text, schema jsonb, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 ('st_generate_regex', 'prompt text, pattern text, max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 ('st_generate_choice', 'prompt text, choices text[], max_tokens integer DEFAULT NULL::integer, use_cache boolean DEFAULT true, seed integer DEFAULT 42, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 ('st_generate_cached', 'prompt text, max_tokens integer DEFAULT NULL::integer, seed integer DEFAULT 42', 'text', 'f'),
 ('st_embed_cached', 'text_input text, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'vector', 'f'),
 ('st_embed_async', 'text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'uuid', 'f'),
 ('st_generate_async', 'prompt text, max_tokens integer DEFAULT NULL::integer', 'uuid', 'f'),
 ('st_rerank_top_k', 'query text, documents text[], k integer DEFAULT 5, task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'TABLE(document text, score double precision)', 'f'),
 ('st_rerank_async', 'query text, documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid', 'f'),
 ('st_rerank_batch_async', 'queries text[], documents text[], task text DEFAULT ''Given a web search query, retrieve relevant passages that answer the query''::text, return_scores boolean DEFAULT true, seed integer DEFAULT 42', 'uuid[]', 'f'),
 ('st_check_async', 'request_id uuid', 'TABLE(status text, result text, results text[], embedding vector, embeddings vector[], error text, created_at timestamp with time zone, completed_at timestamp with time zone, processing_time_ms integer, request_type text)', 'f'),
 ('st_get_async_result', 'request_id uuid, timeout_seconds integer DEFAULT 30', 'text', 'f'),
 ('st_cache_stats', '', 'TABLE(total_entries bigint, total_size_mb double precision, cache_hit_rate double precision, avg_access_count double precision, oldest_entry timestamp with time zone, newest_entry timestamp with time zone)', 'f'),
 ('st_cache_clear', '', 'bigint', 'f'),
 ('st_cache_evict_by_age', 'target_entries integer DEFAULT NULL::integer, target_size_mb double precision DEFAULT NULL::double precision, batch_size integer DEFAULT 100, min_age_hours integer DEFAULT 1', 'TABLE(evicted_count integer, freed_size_mb double precision, remaining_entries bigint, remaining_size_mb double precision)', 'f'),
 ('st_cache_preview_eviction', 'preview_count integer DEFAULT 10', 'TABLE(cache_key text, prompt text, access_count integer, last_accessed timestamp with time zone, created_at timestamp with time zone, age_days double precision, size_bytes bigint)', 'f'),
 ('st_cache_analyze_usage', '', 'TABLE(age_bucket text, entry_count bigint, avg_access_count double precision, total_size_mb double precision, percentage_of_cache double precision)', 'f'),
 ('st_cache_scheduled_eviction', '', 'void', 'f'),
 ('st_daemon_start', '', 'boolean', 'f'),
 ('st_daemon_stop', '', 'boolean', 'f'),
 ('st_daemon_status', '', 'TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamp with time zone, uptime_seconds integer)', 'f'),
 ('st_config_get', 'key text', 'text', 'f'),
 ('st_config_set', 'key text, value text', 'void', 'f'),
 ('st_version', '', 'text', 'f'),
 ('st_summarize_text', 'input_text text, metadata jsonb DEFAULT ''{}''::jsonb, model text DEFAULT NULL::text, unsafe_mode boolean DEFAULT false', 'text', 'f'),
 ('st_extract_facts', 'input_text text, max_facts integer DEFAULT 10', 'jsonb', 'f'),
 ('st_deduplicate_facts', 'facts jsonb, similarity_threshold double precision DEFAULT 0.8', 'jsonb', 'f'),
 ('st_summarize', 'text, jsonb', 'text', 'a'),
 ('st_prompt_create', 'slug text, template text, description text DEFAULT NULL::text, metadata jsonb DEFAULT ''{}''::jsonb', 'uuid', 'f'),
 ('st_prompt_update', 'slug text, template text, metadata jsonb DEFAULT ''{}''::jsonb', 'uuid', 'f'),
 ('st_prompt_get', 'slug text, version integer DEFAULT NULL::integer', 'TABLE(prompt_id uuid, version_num integer, template text, required_variables text[], metadata jsonb, created_at timestamp with time zone, created_by text)', 'f'),
 ('st_prompt_render', 'slug text, variables jsonb, version integer DEFAULT NULL::integer, strict boolean DEFAULT true', 'text', 'f'),
 ('st_prompt_list', '', 'TABLE(prompt_id uuid, slug text, description text, latest_version_num integer, total_versions integer, created_at timestamp with time zone, updated_at timestamp with time zone)', 'f'),
 ('st_prompt_versions', 'slug text', 'TABLE(version_num integer, template text, required_variables text[], metadata jsonb, created_at timestamp with time zone, created_by text, is_active boolean)', 'f'),
 ('st_prompt_delete', 'slug text', 'boolean', 'f');

SELECT plan((SELECT count(*)::int FROM expected) + 13 + (SELECT count(*)::int FROM reference) + 1);


-- Overloads share a name, so a function is its name and argument list.
CREATE TEMP VIEW actual AS
SELECT p.oid, p.proname::text AS fn, pg_get_function_arguments(p.oid) AS args,
       pg_get_function_result(p.oid) AS result, p.provolatile AS vol, p.proparallel AS par,
       p.proisstrict AS strict, p.proleakproof AS leak
FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace;

-- has_function with argument types, for every function above
SELECT has_function('public', e.fn,
    COALESCE((SELECT array_agg(format_type(t, NULL) ORDER BY ord)
              FROM actual a, pg_proc p, unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u(t, ord)
              WHERE a.fn = e.fn AND a.args = e.args AND p.oid = a.oid), '{}'::name[]),
    'has ' || e.fn || '(' || e.args || ')')
FROM expected e ORDER BY e.fn, e.args;

-- results and labels, all at once per function
SELECT is(
    (SELECT format('%s %s%s strict=%s leakproof=%s', a.result, a.vol, a.par, a.strict, a.leak)
     FROM actual a WHERE a.fn = e.fn AND a.args = e.args),
    format('%s %s%s strict=%s leakproof=%s', e.result, e.vol, e.par, e.strict, e.leak),
    e.fn || ' signature and labels')
FROM expected e WHERE e.fn IN ('steadytext_generate', 'steadytext_generate_stream',
    'steadytext_generate_cached', 'steadytext_embed', 'steadytext_embed_cached', 'steadytext_embed_batch',
    'steadytext_version', 'steadytext_config_get', 'steadytext_config_set', 'steadytext_semantic_search',
    'steadytext_cache_evict_by_frecency')
ORDER BY e.fn, e.args;

SELECT is(
    (SELECT count(*)::int FROM expected e JOIN actual a USING (fn, args, result, vol, par, strict, leak)),
    (SELECT count(*)::int FROM expected),
    'every function and alias matches its expected signature and labels');

-- The temperature overloads never make a reference call ambiguous: a 7-type DROP/has_function
-- sees the reference form only.
SELECT is(
    (SELECT count(*)::int FROM actual WHERE fn IN ('steadytext_generate_json', 'steadytext_generate_regex',
        'steadytext_generate_choice') AND args NOT LIKE '%temperature%' AND args LIKE '%model text DEFAULT NULL::text'),
    3, 'the structured functions keep their 7-argument reference forms');

SELECT is((SELECT count(*)::int FROM reference), 97, 'the reference has 93 functions and 4 aggregates');
SELECT ok(EXISTS (SELECT 1 FROM pg_proc p
                  WHERE p.pronamespace = 'public'::regnamespace AND p.proname = r.fn
                    AND p.prokind = r.kind
                    AND pg_get_function_arguments(p.oid) = r.args
                    AND pg_get_function_result(p.oid) = r.result),
          format('reference %s %s(%s) -> %s', CASE r.kind WHEN 'a' THEN 'aggregate' ELSE 'function' END,
                 r.fn, r.args, r.result))
FROM reference r ORDER BY r.fn, r.args;

SELECT * FROM finish();
ROLLBACK;
