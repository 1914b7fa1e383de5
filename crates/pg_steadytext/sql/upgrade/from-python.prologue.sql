-- Upgrade from the Python extension (pg_steadytext 2025.11.25, PL/Python) to this version.
--
-- scripts/upgrade-scripts.sh writes pg_steadytext--2025.11.25--<version>.sql as this prologue,
-- the version's own install script (the objects exactly as CREATE EXTENSION makes them), and
-- from-python.epilogue.sql (the rows copied back, converted). docs/upgrading.md describes the
-- result for users.
--
-- The script runs as a superuser, and public is a schema other roles may have created objects in
-- (the Python extension granted PUBLIC its tables and functions): every part of it resolves names
-- in pg_catalog only, and names the extension's objects by schema.
--
-- Here the Python extension's tables are moved aside into the schema _steadytext_python (with
-- their rows, indexes and sequences) and its views, aggregates and functions are dropped.
-- Nothing is dropped with CASCADE: if one of the user's objects depends on one of the
-- extension's, the upgrade stops with PostgreSQL's error naming it, and nothing has changed.

-- Names resolve in pg_catalog alone while this script runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE SCHEMA _steadytext_python;

DO $prologue$
DECLARE
    ext oid;
    obj record;
    left_over text;
BEGIN
    ext := (SELECT e.oid FROM pg_extension e WHERE e.extname = 'pg_steadytext');
    -- Views depend on tables and aggregates on their functions: those go first.
    FOR obj IN
        SELECT c.oid::regclass AS name, c.relkind
        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
        WHERE d.refobjid = ext AND d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
          AND c.relkind IN ('v', 'm')
    LOOP
        EXECUTE format('DROP %s %s',
                       CASE obj.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       obj.name);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS signature, p.prokind
        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
        WHERE d.refobjid = ext AND d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
        ORDER BY p.prokind = 'a' DESC, p.oid
    LOOP
        EXECUTE format('DROP %s %s',
                       CASE obj.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE'
                                        ELSE 'FUNCTION' END,
                       obj.signature);
    END LOOP;
    -- Tables take their indexes, constraints, triggers and SERIAL sequences along.
    FOR obj IN
        SELECT c.oid::regclass AS name, c.relkind
        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
        WHERE d.refobjid = ext AND d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
          AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('ALTER TABLE %s SET SCHEMA _steadytext_python', obj.name);
    END LOOP;
    FOR obj IN
        SELECT c.oid::regclass AS name
        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
        WHERE d.refobjid = ext AND d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
          AND c.relkind = 'S'
          AND c.relnamespace <> '_steadytext_python'::regnamespace
    LOOP
        EXECUTE format('ALTER SEQUENCE %s SET SCHEMA _steadytext_python', obj.name);
    END LOOP;
    FOR obj IN
        SELECT t.oid::regtype AS name
        FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_type t ON t.oid = d.objid
        WHERE d.refobjid = ext AND d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.classid = 'pg_catalog.pg_type'::regclass AND d.deptype = 'e'
    LOOP
        EXECUTE format('DROP TYPE %s', obj.name);
    END LOOP;
    -- Any other kind of member would stay a member of the new version unseen: stop instead.
    SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), ', ') INTO left_over
    FROM pg_depend d
    WHERE d.refobjid = ext AND d.refclassid = 'pg_catalog.pg_extension'::regclass
      AND d.deptype = 'e'
      AND NOT (d.classid = 'pg_catalog.pg_namespace'::regclass
               AND d.objid = '_steadytext_python'::regnamespace)
      AND NOT (d.classid = 'pg_catalog.pg_class'::regclass
               AND (SELECT c.relnamespace FROM pg_class c WHERE c.oid = d.objid)
                   = '_steadytext_python'::regnamespace);
    IF left_over IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'pg_steadytext: cannot upgrade: the installed extension has objects this '
                      'upgrade does not know how to replace: ' || left_over;
    END IF;
END
$prologue$;

-- ---------------------------------------------------------------------------------------------
-- This version's install script follows.
-- ---------------------------------------------------------------------------------------------
