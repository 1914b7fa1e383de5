//! The daemon's cache in front of the engine: a hit is the computed value, and a request with
//! `use_cache` off neither reads nor writes it.

use steadytext::cache::{FrecencyCache, Kind};
use steadytext::cached::Cached;
use steadytext::execute::{self, Quiet};
use steadytext::request::{EmbedSpec, GenerateSpec, Spec};
use steadytext::Local;

use crate::common::{builder, spec};

fn cache() -> (FrecencyCache, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "st-cache-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cache.sqlite3");
    let _ = std::fs::remove_file(&path);
    (FrecencyCache::open(&path).unwrap(), dir)
}

#[test]
fn a_hit_is_the_computed_value_and_use_cache_off_bypasses_the_cache() {
    let (cache, dir) = cache();
    let cached = Cached {
        inner: Local::new(2),
        cache: Some(&cache),
    };
    let generate = |use_cache: bool| {
        let s = GenerateSpec {
            use_cache: Some(use_cache),
            ..spec("Name three colours", 24)
        };
        let request = Spec::Generate(s).build(&builder()).unwrap();
        execute::run(&cached, request, false, &mut Quiet)
            .unwrap()
            .into_text()
            .unwrap()
    };
    let off = generate(false);
    assert_eq!(
        cache.stats(Kind::Generation).entries,
        0,
        "use_cache off writes nothing"
    );
    let first = generate(true);
    assert_eq!(cache.stats(Kind::Generation).entries, 1);
    let hit = generate(true);
    assert_eq!(cache.stats(Kind::Generation).hits, 1);
    assert_eq!(first, off);
    assert_eq!(hit, first);

    let texts = vec![
        "cached text".to_string(),
        "".to_string(),
        "another".to_string(),
    ];
    let embed = |texts: Vec<String>| {
        let s = EmbedSpec {
            texts: Some(texts),
            ..EmbedSpec::default()
        };
        let request = Spec::Embed(s).build(&builder()).unwrap();
        execute::run(&cached, request, false, &mut Quiet)
            .unwrap()
            .into_embeddings()
            .unwrap()
    };
    let computed = embed(texts.clone());
    // Zero vectors are not kept: two entries for three texts.
    assert_eq!(cache.stats(Kind::Embedding).entries, 2);
    let from_cache = embed(texts);
    assert_eq!(computed, from_cache);
    assert_eq!(cache.stats(Kind::Embedding).hits, 2);
    std::fs::remove_dir_all(dir).unwrap();
}
