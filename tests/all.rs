//! Every end-to-end and contract test, in one binary: each test binary links the AWS SDK, so one
//! binary instead of five is minutes less on a cold build.

mod accounts;
mod agent;
mod anywhere;
mod capacity;
mod daemon;
mod deploy;
mod digest;
mod fits;
mod iam;
mod incidents;
mod redrive;
mod remediation;
mod routing;
mod signals;
mod sweep;
mod template;
