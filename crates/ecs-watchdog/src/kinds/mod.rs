//! The kinds of problem, one module each: what sets each apart (the events it parses, its
//! verdict on what the look-ups found, its alert's text and checks, its severity rule, its
//! metric, whether it may be remediated, how it ends) behind the one trait [`Kind`]. [`KINDS`]
//! lists them; nothing outside this module matches on a kind, and [`parse`] hands each event
//! to the kind whose detail-types name it.

pub mod agent_disconnected;
pub mod agent_flapping;
pub mod daemon_deployment_failed;
pub mod daemon_lost;
mod found;
pub mod instance_impaired;
mod instance_not_registered;
mod kind;
mod monitor_impaired;

pub use kind::{Judgement, Kind};

use crate::event::{self, Envelope, IgnoreReason, Parsed, RejectReason};
use crate::kind::AlertKind;

/// Every kind, in `AlertKind::ALL`'s order.
pub static KINDS: [&dyn Kind; 7] = [
    &agent_disconnected::AgentDisconnected,
    &daemon_lost::DaemonLost,
    &daemon_deployment_failed::DaemonDeploymentFailed,
    &instance_impaired::InstanceImpaired,
    &monitor_impaired::MonitorImpaired,
    &instance_not_registered::InstanceNotRegistered,
    &agent_flapping::AgentFlapping,
];

/// The kind's module: [`KINDS`] is in the enum's order (tested), so its place is its index.
pub fn of(kind: AlertKind) -> &'static dyn Kind {
    KINDS[kind as usize]
}

/// Parses one SQS message body; see [`parse_timed`].
pub fn parse(body: &str) -> Parsed {
    parse_timed(body).0
}

/// Parses one SQS message body, with the event's time and id from the same parse:
/// `event` reads the envelope, the kind whose detail-types name the event reads its detail.
pub fn parse_timed(body: &str) -> (Parsed, event::Stamp) {
    event::parse_timed(body, detail)
}

fn detail(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    match KINDS.iter().find(|k| k.detail_types().contains(&event.detail_type)) {
        Some(kind) => kind.parse(event),
        None => Ok(Parsed::Ignored(IgnoreReason::UnhandledDetailType(
            event.detail_type.to_owned(),
        ))),
    }
}

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod verdict_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_the_registry_is_read_then_it_holds_every_kind_once_in_order() {
        let listed: Vec<AlertKind> = KINDS.iter().map(|k| k.kind()).collect();
        assert_eq!(listed, AlertKind::ALL.to_vec());
        for kind in AlertKind::ALL {
            assert_eq!(of(kind).kind(), kind);
        }
    }

    /// Each kind's alerts count under that kind's own name (a `monitor-impaired` alert once
    /// counted as `AgentDisconnected` and could set off the agent alarm).
    #[test]
    fn when_an_alert_of_any_kind_is_counted_then_it_is_counted_under_its_own_name() {
        for kind in KINDS {
            match kind.metric() {
                Some(metric) => assert_eq!(
                    metric.name().to_ascii_lowercase(),
                    kind.kind().as_str().replace('-', ""),
                    "{:?}",
                    kind.kind()
                ),
                None => assert_eq!(kind.kind(), AlertKind::MonitorImpaired),
            }
        }
    }
}
