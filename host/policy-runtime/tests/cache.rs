//! Restart uses the on-disk compile cache: the second runtime over the same
//! cache directory deserializes instead of compiling.

mod common;

use common::*;
use vibesync_policy_runtime::{Budgets, CacheOutcome, Runtime, RuntimeConfig};
use vibesync_policy_types::Verdict;

fn runtime_with_cache(dir: &std::path::Path, budgets: Budgets) -> Runtime {
    Runtime::new(RuntimeConfig {
        budgets,
        cache_dir: Some(dir.to_owned()),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn second_load_does_not_compile() {
    let cache = tempfile::tempdir().unwrap();
    let first = runtime_with_cache(cache.path(), Budgets::default());
    let p = first
        .load_for_review("counter", fixture("counter"))
        .unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Miss);
    drop((p, first));

    // A "restart": a new engine, same configuration, same cache directory.
    let second = runtime_with_cache(cache.path(), Budgets::default());
    let p = second
        .load_for_review("counter", fixture("counter"))
        .unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(
        eval(&second, &p, 1).verdict,
        Verdict::Allow,
        "the cached artifact runs"
    );
}

#[test]
fn engine_configuration_is_part_of_the_key() {
    let cache = tempfile::tempdir().unwrap();
    let a = runtime_with_cache(cache.path(), Budgets::default());
    assert_eq!(
        a.load_for_review("counter", fixture("counter"))
            .unwrap()
            .cache_outcome(),
        CacheOutcome::Miss
    );
    let b = runtime_with_cache(
        cache.path(),
        Budgets {
            max_stack_bytes: 256 << 10,
            ..Default::default()
        },
    );
    assert_eq!(
        b.load_for_review("counter", fixture("counter"))
            .unwrap()
            .cache_outcome(),
        CacheOutcome::Miss
    );
}

#[test]
fn corrupt_artifact_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let a = runtime_with_cache(cache.path(), Budgets::default());
    a.load_for_review("counter", fixture("counter")).unwrap();
    for e in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(e.unwrap().path(), b"not an artifact").unwrap();
    }
    let p = a.load_for_review("counter", fixture("counter")).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Miss);
    assert_eq!(eval(&a, &p, 1).verdict, Verdict::Allow);
}
