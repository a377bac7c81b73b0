//! Integration tests of `kestrel-model` through its public API only (one test binary, STYLE.md
//! 2.6):
//!
//! - `num`: property tests of `Price`/`Qty`/`Notional` (round-trips, arithmetic identities,
//!   no-panic parsing, directional rounding) against a `rust_decimal` oracle.
//! - `book`: property tests of `OrderBook` against a naive reference over random snapshot and
//!   update sequences.
//! - `filters`: the filter validator against Binance's documented filter and `exchangeInfo`
//!   payloads in `testdata/binance/`, at and around every boundary.
//!
//! Property-test failures are persisted under `crates/kestrel-model/proptest-regressions/it/`
//! (see [`proptest_config`] and that directory's README) and re-run first on every later run.
#![allow(clippy::unwrap_used)]

mod book;
mod filters;
mod num;

use proptest::test_runner::{Config, FileFailurePersistence};

/// The proptest configuration every property test here uses: `cases` random cases (overridable
/// with the `PROPTEST_CASES` environment variable), and failures persisted in the crate-level
/// `proptest-regressions/it/<module>.txt`.
///
/// proptest's default, `SourceParallel("proptest-regressions")`, walks up from the test's source
/// file to the first directory holding a `main.rs`/`lib.rs` and writes next to it. For
/// `tests/it/num.rs` that directory is `tests/it` itself, which would put the file in
/// `tests/proptest-regressions/`; the `../` prefix below lifts it to the crate root, where
/// `src/` tests would also put theirs. The path is derived from `file!()`, not from the working
/// directory, so it is the same however the test is run.
pub fn proptest_config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "../proptest-regressions/it",
        ))),
        ..Config::with_cases(cases)
    }
}
