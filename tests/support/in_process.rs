//! The monitor run in the test's own process, for what only the SDK layer can inject (an
//! outage, the Managed Daemons APIs, a hook function): the adapters the binary builds, against
//! the emulator, with the test's replacements.

use ecs_watchdog::aws;
use ecs_watchdog::pipeline::Adapters;
use ecs_watchdog::{Config, Message, Monitor, Sweep};
use serde::Deserialize;
use serde_json::Value;

use crate::emulator::{Emulator, REGION};

/// Configuration from `(variable, value)` pairs, as the function would read them.
pub fn config(vars: &[(String, String)]) -> Config {
    Config::from_lookup(|name| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("a valid configuration")
}

/// The monitor as the binary builds it on the emulator, after `replace` changed its adapters.
pub fn monitor(emulator: &Emulator, config: Config, replace: impl FnOnce(&mut Adapters)) -> Monitor {
    let mut io = aws::adapters(&config, &emulator.sdk);
    replace(&mut io);
    Monitor::new(config, REGION, io)
}

/// The sweep as its binary builds it on the emulator, after `replace` changed its adapters.
pub fn sweep(emulator: &Emulator, config: Config, replace: impl FnOnce(&mut Adapters)) -> Sweep {
    let mut io = aws::adapters(&config, &emulator.sdk);
    ecs_watchdog::pipeline::keep_for_sweep(&mut io.steps, config.remediation.dry_run);
    replace(&mut io);
    Sweep::new(config, REGION, io)
}

/// SQS records as the monitor's messages.
pub fn messages(records: &[Value]) -> Vec<Message> {
    records
        .iter()
        .map(|r| Message::deserialize(r).expect("an SQS record"))
        .collect()
}
