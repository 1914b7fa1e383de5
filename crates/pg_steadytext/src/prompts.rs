//! The prompt registry's writes and its template checks (sql/prompts.sql has the tables and
//! the reading functions).
//!
//! Roles have no write privilege on the registry's tables: these functions write as the
//! extension's owner, after checking that the calling role created the prompt (or is
//! steadytext_admin), and record the calling role. Versions are never changed once written; an
//! update adds the next version and makes it the active one. The prompt's row is locked for the
//! update, so concurrent updates of one prompt get consecutive versions.

use pgrx::datum::Uuid;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::Value;
use steadytext::template;

use crate::errors::{raise, raise_with, OrRaise};
use crate::privilege::{as_owner, has_role, identity_name};

const SLUG_RULE: &str =
    "Invalid slug format. Use lowercase letters, numbers, and hyphens only (3-100 chars)";

/// A template's variables, or SQLSTATE 42601 naming the line and column of its syntax error.
fn checked(template: &str) -> Vec<String> {
    template::check_size(template).or_raise();
    template::required_variables(template).unwrap_or_else(|e| {
        raise_with(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            &format!("Invalid Jinja2 template: {e}"),
        )
    })
}

fn valid_slug(slug: &str) -> bool {
    (3..=100).contains(&slug.len())
        && slug.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn not_found(slug: &str) -> ! {
    raise_with(
        PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
        &format!("Prompt with slug \"{slug}\" not found"),
    )
}

/// Whether `template` parses, the variables it reads, and the syntax error.
#[pg_extern(immutable, parallel_safe)]
fn _validate_jinja2_template(
    template: &str,
) -> TableIterator<
    'static,
    (
        name!(is_valid, bool),
        name!(required_variables, Option<Vec<String>>),
        name!(error_message, Option<String>),
    ),
> {
    template::check_size(template).or_raise();
    let row = match template::required_variables(template) {
        Ok(names) => (true, Some(names), None),
        Err(e) => (false, None, Some(e.to_string())),
    };
    TableIterator::once(row)
}

/// Renders a template with `variables` (see `steadytext::template::render`), in a child process
/// held to `steadytext.max_template_memory`.
#[pg_extern(immutable, parallel_safe)]
fn _steadytext_render_template(template: &str, variables: Option<JsonB>, strict: bool) -> String {
    let variables = variables.map_or_else(|| Value::Object(Default::default()), |v| v.0);
    crate::model::builder()
        .check_total([variables.to_string().as_str()])
        .or_raise();
    let memory = crate::guc::MAX_TEMPLATE_MEMORY_MB.get().max(1) as usize * (1 << 20);
    // SAFETY: reads flags PostgreSQL's signal handlers set. A cancel or a termination kills the
    // child, and check_for_interrupts below then raises the query's own error.
    let interrupted =
        || unsafe { pgrx::pg_sys::QueryCancelPending != 0 || pgrx::pg_sys::ProcDiePending != 0 };
    let rendered = template::render(
        template,
        &variables,
        strict,
        memory,
        "steadytext.max_template_memory",
        &interrupted,
    );
    pgrx::check_for_interrupts!();
    rendered.or_raise()
}

/// Creates a prompt with its first (active) version; returns the prompt's id.
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_prompt_create(
    slug: &str,
    template: &str,
    description: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonB>, "'{}'"),
) -> Uuid {
    let required = checked(template);
    if !valid_slug(slug) || description.is_some_and(|d| d.chars().count() > 500) {
        raise_with(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            SLUG_RULE,
        );
    }
    let me = identity_name();
    let metadata = metadata.unwrap_or(JsonB(Value::Object(Default::default())));
    crate::admission::bound_json("metadata", &metadata.0);
    crate::spi::require_writable("change the prompt registry");
    let id = as_owner(|| {
        let id = Spi::get_one_with_args::<Uuid>(
            "INSERT INTO public.steadytext_prompts (slug, description, created_by, updated_by) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (slug) DO NOTHING RETURNING id",
            &[slug.into(), description.into(), me.as_str().into()],
        )
        .ok()
        .flatten()?;
        Spi::run_with_args(
            "INSERT INTO public.steadytext_prompt_versions \
             (prompt_id, version, template, required_variables, metadata, created_by, is_active) \
             VALUES ($1, 1, $2, $3, $4, $5, true)",
            &[
                id.into(),
                template.into(),
                required.into(),
                metadata.into(),
                me.as_str().into(),
            ],
        )
        .ok()?;
        Some(id)
    });
    id.unwrap_or_else(|| {
        raise_with(
            PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
            &format!("Prompt with slug \"{slug}\" already exists"),
        )
    })
}

/// The prompt's id, locked for this transaction, after checking that the calling role may
/// change it (before locking: a role that may not never holds the owner's row).
fn lock_own(slug: &str, me: &str) -> Option<Uuid> {
    let creator = as_owner(|| {
        Spi::get_one_with_args::<String>(
            "SELECT p.created_by FROM public.steadytext_prompts p \
             WHERE p.slug OPERATOR(pg_catalog.=) $1",
            &[slug.into()],
        )
    });
    let Ok(creator) = creator else {
        return None;
    };
    if creator.as_deref() != Some(me) && !has_role("steadytext_admin") {
        raise_with(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            &format!(
                "prompt \"{slug}\" belongs to {}: only its creator or steadytext_admin may change it",
                creator.unwrap_or_else(|| "another role".into())
            ),
        );
    }
    as_owner(|| {
        Spi::get_one_with_args::<Uuid>(
            "SELECT p.id FROM public.steadytext_prompts p \
             WHERE p.slug OPERATOR(pg_catalog.=) $1 FOR UPDATE",
            &[slug.into()],
        )
    })
    .ok()
    .flatten()
}

/// Adds the next version of a prompt and makes it the active one; returns the version's id.
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_prompt_update(
    slug: &str,
    template: &str,
    metadata: default!(Option<JsonB>, "'{}'"),
) -> Uuid {
    let me = identity_name();
    let Some(prompt) = lock_own(slug, &me) else {
        not_found(slug)
    };
    let required = checked(template);
    let metadata = metadata.unwrap_or(JsonB(Value::Object(Default::default())));
    crate::admission::bound_json("metadata", &metadata.0);
    crate::spi::require_writable("change the prompt registry");
    as_owner(|| {
        Spi::run_with_args(
            "UPDATE public.steadytext_prompt_versions SET is_active = false \
             WHERE prompt_id OPERATOR(pg_catalog.=) $1 AND is_active",
            &[prompt.into()],
        )
        .ok()?;
        let version = Spi::get_one_with_args::<Uuid>(
            "INSERT INTO public.steadytext_prompt_versions \
             (prompt_id, version, template, required_variables, metadata, created_by, is_active) \
             SELECT $1, COALESCE(pg_catalog.max(v.version), 0) OPERATOR(pg_catalog.+) 1, \
                    $2, $3, $4, $5, true \
             FROM public.steadytext_prompt_versions v WHERE v.prompt_id OPERATOR(pg_catalog.=) $1 \
             RETURNING id",
            &[
                prompt.into(),
                template.into(),
                required.into(),
                metadata.into(),
                me.as_str().into(),
            ],
        )
        .ok()
        .flatten()?;
        Spi::run_with_args(
            "UPDATE public.steadytext_prompts SET updated_at = pg_catalog.now(), updated_by = $2 \
             WHERE id OPERATOR(pg_catalog.=) $1",
            &[prompt.into(), me.as_str().into()],
        )
        .ok()?;
        Some(version)
    })
    .unwrap_or_else(|| raise(&format!("could not add a version to prompt \"{slug}\"")))
}

/// Deletes a prompt and its versions; false when there is no such prompt.
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_prompt_delete(slug: &str) -> bool {
    crate::spi::require_writable("change the prompt registry");
    let me = identity_name();
    let Some(prompt) = lock_own(slug, &me) else {
        return false;
    };
    as_owner(|| {
        Spi::run_with_args(
            "DELETE FROM public.steadytext_prompts WHERE id OPERATOR(pg_catalog.=) $1",
            &[prompt.into()],
        )
    })
    .is_ok()
}
