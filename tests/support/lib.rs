//! The local test bed: moto on a free loopback port, a Lambda Runtime API that runs the real
//! `monitor` binary, an ECS fleet seeded through the real SDK clients, and the
//! EventBridge → SQS path the events take in AWS.

pub mod clock;
pub mod cost;
pub mod emulator;
pub mod fleet;
pub mod in_process;
pub mod ledger;
pub mod pagerduty;
pub mod pipeline;
pub mod runtime;
pub mod samples;
pub mod template;

use std::path::PathBuf;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}
