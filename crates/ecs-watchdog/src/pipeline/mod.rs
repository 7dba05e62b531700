//! One batch of queue messages, as a pipeline: intake → scope → evidence → decide → act →
//! ledger → report. Each stage is a module with one job; only evidence, act, ledger and report
//! do I/O, through the ports. A failed call leaves only the messages that needed it undecided:
//! they go back to the queue, nothing else does.

mod act;
mod batched;
mod decide;
mod deployments;
mod evidence;
mod gauges;
mod group;
mod hold;
mod hub;
mod impaired;
mod intake;
mod ledger;
mod looks;
mod monitor;
mod places;
mod plan;
mod replace;
mod report;
mod restart;
mod run;
mod scope;
mod services;
mod snapshot;
mod survey;
mod sweep;
mod unregistered;
mod watched;

pub use batched::{DESCRIBE_LIMIT, MANAGED_NODE_LIMIT};
pub use hub::{Hub, HubSweep, PLACE_UNREACHABLE, Reach};
pub use intake::{Message, SqsBatch};
pub use monitor::Monitor;
pub use places::{CLUSTER_DELETED, NOT_MONITORED};
pub use replace::{REPLACE_STEP, keep_for_sweep};
pub use restart::{RECOVERED_AFTER_RESTART, RESTART_STEP, claim_id as restart_claim_id};
pub use run::{Adapters, BatchReport};
pub use sweep::{Sweep, SweepReport};
pub use unregistered::AUTO_SCALING_GROUP_LIMIT;
pub use watched::Fault;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod places_tests;
#[cfg(test)]
mod races_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sweep_tests;
#[cfg(test)]
mod tests;
