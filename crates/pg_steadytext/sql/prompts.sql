-- The prompt registry: named Jinja2 templates with immutable versions, one of them active.
-- Writes go through steadytext_prompt_create/update/delete (src/prompts.rs), which record the
-- calling role and let only a prompt's creator (or steadytext_admin) change it; steadytext_user
-- reads every prompt.

-- Names resolve in pg_catalog alone while this file runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE TABLE @extschema@.steadytext_prompts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    slug TEXT UNIQUE NOT NULL
        CHECK (slug ~ '^[a-z0-9]+(?:-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 100),
    description TEXT CHECK (length(description) <= 500),
    created_at TIMESTAMPTZ DEFAULT now(),
    created_by TEXT DEFAULT session_user,
    updated_at TIMESTAMPTZ DEFAULT now(),
    updated_by TEXT DEFAULT session_user
);
CREATE INDEX idx_steadytext_prompts_slug ON @extschema@.steadytext_prompts (slug);
CREATE INDEX idx_steadytext_prompts_created_at ON @extschema@.steadytext_prompts (created_at DESC);

CREATE TABLE @extschema@.steadytext_prompt_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt_id UUID NOT NULL REFERENCES @extschema@.steadytext_prompts (id) ON DELETE CASCADE,
    version INT NOT NULL CHECK (version > 0),
    template TEXT NOT NULL CHECK (length(template) > 0),
    required_variables TEXT[],
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMPTZ DEFAULT now(),
    created_by TEXT DEFAULT session_user,
    is_active BOOLEAN DEFAULT false,
    UNIQUE (prompt_id, version)
);
-- One active version per prompt (the Python extension's index was not unique).
CREATE UNIQUE INDEX idx_steadytext_prompt_versions_active
    ON @extschema@.steadytext_prompt_versions (prompt_id) WHERE is_active;
CREATE INDEX idx_steadytext_prompt_versions_created_at
    ON @extschema@.steadytext_prompt_versions (created_at DESC);

-- A version's text never changes: only which version is active does.
CREATE FUNCTION @extschema@._steadytext_prompt_version_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (NEW.prompt_id, NEW.version, NEW.template, NEW.required_variables, NEW.metadata,
        NEW.created_at, NEW.created_by)
       IS DISTINCT FROM (OLD.prompt_id, OLD.version, OLD.template, OLD.required_variables,
                         OLD.metadata, OLD.created_at, OLD.created_by) THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'prompt versions are immutable: add a version with steadytext_prompt_update';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER steadytext_prompt_versions_immutable BEFORE UPDATE ON @extschema@.steadytext_prompt_versions
    FOR EACH ROW EXECUTE FUNCTION @extschema@._steadytext_prompt_version_immutable();

CREATE FUNCTION @extschema@._get_next_version(p_prompt_id uuid) RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(v.version), 0) + 1 FROM @extschema@.steadytext_prompt_versions v
    WHERE v.prompt_id = p_prompt_id
$$;

-- The Python extension prepared its Python runtime with it; kept so callers keep working.
CREATE FUNCTION @extschema@._steadytext_init_python() RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$ SELECT $$;

-- The id of the prompt called `slug`; an unknown slug is the reference's P0002 error.
CREATE FUNCTION @extschema@._steadytext_prompt_id(slug text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pid uuid;
BEGIN
    SELECT p.id INTO pid FROM @extschema@.steadytext_prompts p WHERE p.slug = $1;
    IF pid IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('Prompt with slug "%s" not found', $1);
    END IF;
    RETURN pid;
END;
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_get(slug text, version int DEFAULT NULL)
RETURNS TABLE(prompt_id uuid, version_num int, template text, required_variables text[],
              metadata jsonb, created_at timestamptz, created_by text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pid uuid;
BEGIN
    pid := @extschema@._steadytext_prompt_id($1);
    RETURN QUERY
    SELECT v.prompt_id, v.version, v.template, v.required_variables, v.metadata, v.created_at,
           v.created_by
    FROM @extschema@.steadytext_prompt_versions v
    WHERE v.prompt_id = pid AND (CASE WHEN $2 IS NULL THEN v.is_active ELSE v.version = $2 END);
    IF NOT FOUND THEN
        IF $2 IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'P0002',
                MESSAGE = format('Prompt "%s" has no active version', $1);
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'P0002',
            MESSAGE = format('Version %s not found for prompt "%s"', $2, $1);
    END IF;
END;
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_render(slug text, variables jsonb, version int DEFAULT NULL,
                                         strict boolean DEFAULT true)
RETURNS text LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@._steadytext_render_template(g.template, variables, coalesce(strict, true))
    FROM @extschema@.steadytext_prompt_get(slug, version) g
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_list()
RETURNS TABLE(prompt_id uuid, slug text, description text, latest_version_num int,
              total_versions int, created_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.id, p.slug, p.description, max(v.version)::int, count(v.id)::int, p.created_at,
           p.updated_at
    FROM @extschema@.steadytext_prompts p
    LEFT JOIN @extschema@.steadytext_prompt_versions v ON v.prompt_id = p.id
    GROUP BY p.id
    ORDER BY p.created_at DESC
$$;

CREATE FUNCTION @extschema@.steadytext_prompt_versions(slug text)
RETURNS TABLE(version_num int, template text, required_variables text[], metadata jsonb,
              created_at timestamptz, created_by text, is_active boolean)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pid uuid;
BEGIN
    pid := @extschema@._steadytext_prompt_id($1);
    RETURN QUERY
    SELECT v.version, v.template, v.required_variables, v.metadata, v.created_at, v.created_by,
           v.is_active
    FROM @extschema@.steadytext_prompt_versions v WHERE v.prompt_id = pid
    ORDER BY v.version DESC;
END;
$$;

-- Beyond the reference: generate from a prompt (render strictly, then steadytext_generate).
CREATE FUNCTION @extschema@.steadytext_generate_from_prompt(slug text, variables jsonb,
                                                max_tokens int DEFAULT NULL,
                                                version int DEFAULT NULL)
RETURNS text LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate(
        @extschema@.steadytext_prompt_render(slug, variables, version, true::boolean), max_tokens)
$$;

CREATE FUNCTION @extschema@.st_prompt_create(slug text, template text, description text DEFAULT NULL,
                                 metadata jsonb DEFAULT '{}')
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_prompt_create(slug, template, description, metadata)
$$;
CREATE FUNCTION @extschema@.st_prompt_update(slug text, template text, metadata jsonb DEFAULT '{}')
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_prompt_update(slug, template, metadata)
$$;
CREATE FUNCTION @extschema@.st_prompt_get(slug text, version int DEFAULT NULL)
RETURNS TABLE(prompt_id uuid, version_num int, template text, required_variables text[],
              metadata jsonb, created_at timestamptz, created_by text)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_prompt_get(slug, version)
$$;
CREATE FUNCTION @extschema@.st_prompt_render(slug text, variables jsonb, version int DEFAULT NULL,
                                 strict boolean DEFAULT true)
RETURNS text LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_prompt_render(slug, variables, version, strict)
$$;
CREATE FUNCTION @extschema@.st_prompt_list()
RETURNS TABLE(prompt_id uuid, slug text, description text, latest_version_num int,
              total_versions int, created_at timestamptz, updated_at timestamptz)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_prompt_list()
$$;
CREATE FUNCTION @extschema@.st_prompt_versions(slug text)
RETURNS TABLE(version_num int, template text, required_variables text[], metadata jsonb,
              created_at timestamptz, created_by text, is_active boolean)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_prompt_versions(slug)
$$;
CREATE FUNCTION @extschema@.st_prompt_delete(slug text)
RETURNS boolean LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_prompt_delete(slug)
$$;

SELECT pg_catalog.set_config('search_path', '@extschema@', true);
