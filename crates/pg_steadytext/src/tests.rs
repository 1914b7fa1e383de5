// Rust-level tests inside PostgreSQL (`cargo pgrx test`), included into `mod tests` in lib.rs.
// The SQL contract is tested by the pgTAP suite in tests/pgtap/.

use pgrx::prelude::*;

#[pg_test]
fn embed_returns_a_unit_vector_of_1024() {
    let dims = Spi::get_one::<i32>("SELECT vector_dims(steadytext_embed('hello'))").unwrap();
    assert_eq!(dims, Some(1024));
    let norm = Spi::get_one::<f64>("SELECT vector_norm(steadytext_embed('hello'))").unwrap().unwrap();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
}

#[pg_test]
fn vectors_survive_a_round_trip_through_a_table() {
    Spi::run("CREATE TEMP TABLE v AS SELECT steadytext_embed('round trip') AS e").unwrap();
    let same = Spi::get_one::<bool>("SELECT e = steadytext_embed('round trip', false) FROM v").unwrap();
    assert_eq!(same, Some(true));
}

#[pg_test]
fn generation_is_deterministic() {
    let q = "SELECT steadytext_generate('Say hi', 16, false)";
    let a = Spi::get_one::<String>(q).unwrap().unwrap();
    assert!(!a.is_empty());
    assert_eq!(Spi::get_one::<String>(q).unwrap().unwrap(), a);
}

#[pg_test]
fn a_number_set_as_text_is_a_number() {
    Spi::run("SELECT steadytext_config_set('default_max_tokens', '4')").unwrap();
    let stored = Spi::get_one::<pgrx::JsonB>("SELECT value FROM steadytext_config WHERE key = 'default_max_tokens'")
        .unwrap()
        .unwrap();
    assert_eq!(stored.0, serde_json::json!("4"));
    let short = Spi::get_one::<String>("SELECT steadytext_generate('Count to twenty', NULL, false)")
        .unwrap()
        .unwrap();
    let long = Spi::get_one::<String>("SELECT steadytext_generate('Count to twenty', 64, false)")
        .unwrap()
        .unwrap();
    assert!(short.len() < long.len() && long.starts_with(&short), "{short:?} vs {long:?}");
}

#[pg_test]
fn cached_generation_writes_then_hits() {
    let q = "SELECT steadytext_generate_cached('Name a fruit', 8)";
    let first = Spi::get_one::<String>(q).unwrap().unwrap();
    let rows = Spi::get_one::<i64>("SELECT count(*) FROM steadytext_cache WHERE prompt = 'Name a fruit'").unwrap();
    assert_eq!(rows, Some(1));
    assert_eq!(Spi::get_one::<String>(q).unwrap().unwrap(), first);
    let (count, hits) = Spi::get_two::<i32, i64>(
        "SELECT c.access_count, (SELECT sum(l.hits)::bigint FROM steadytext_cache_lookups l) \
         FROM steadytext_cache c WHERE c.prompt = 'Name a fruit'",
    )
    .unwrap();
    assert_eq!(count, Some(2));
    assert_eq!(hits, Some(1));
}

#[pg_test(error = "Prompt cannot be empty")]
fn empty_prompt_is_rejected() {
    Spi::run("SELECT steadytext_generate('   ')").unwrap();
}
