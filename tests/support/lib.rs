//! The local test bed: moto on a free loopback port, a Lambda Runtime API that runs the real
//! `monitor` binary, an ECS fleet seeded through the real SDK clients, and the
//! EventBridge → SQS path the events take in AWS.

pub mod bed;
pub mod clock;
pub mod cost;
pub mod emulator;
pub mod fleet;
pub mod in_process;
pub mod ledger;
pub mod markdown;
pub mod pagerduty;
pub mod pipeline;
pub mod runtime;
pub mod samples;
pub mod template;

use std::path::PathBuf;

/// The repository's root directory: from the variable cargo and nextest set when they run a test,
/// before the path compiled in, which a target directory reused from another checkout (a cache
/// restored in CI) would point elsewhere.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}
