//! Every end-to-end and contract test, in one binary: each test binary links the AWS SDK, so one
//! binary instead of five is minutes less on a cold build.

mod accounts;
mod agent;
mod anywhere;
mod capacity;
mod cost;
mod daemon;
mod deploy;
mod digest;
mod docs;
mod docs_commands;
mod docs_schema;
mod fits;
mod flapping;
mod iam;
mod incidents;
mod outbox;
mod package;
mod pagerduty;
mod records;
mod redrive;
mod remediation;
mod restart;
mod routing;
mod services;
mod signals;
mod silences;
mod sweep;
mod template;
mod unregistered;
