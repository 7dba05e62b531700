//! ecs-watchdog: confirms ECS agent and daemon failures after a grace period, then reports them.
//!
//! The crate is split the way the work flows: [`event`] reads what the queue delivers,
//! [`inventory`] describes what ECS and EC2 say now, [`kinds`] holds what each kind of problem
//! means (the events it parses, its verdict in [`verdict`]'s words, its alert), [`alert`] and
//! [`metrics`] render, [`incident`] keeps a problem to one alert, and [`pipeline`] runs one batch
//! through all of it, stage by stage. Only the modules under
//! [`aws`] name an `aws_sdk_*` type; everything else is plain data and pure functions.

pub mod alert;
pub mod aws;
pub mod config;
pub mod event;
pub mod finding;
pub mod incident;
pub mod inventory;
pub mod key;
pub mod kind;
pub mod kinds;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod remediation;
#[cfg(test)]
pub(crate) mod seeded;
pub mod silence;
pub mod verdict;

pub use config::{Config, ConfigError};
pub use pipeline::{BatchReport, Message, Monitor, SqsBatch, Sweep, SweepReport};
