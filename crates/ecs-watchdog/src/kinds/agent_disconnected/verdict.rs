//! The `agent-disconnected` verdict (DESIGN §2): the instance's state in ECS, then the host's
//! in EC2 or Systems Manager.

use super::super::found;
use super::super::kind::Judgement;
use crate::alert::finding::InstanceFinding;
use crate::event::Signal;
use crate::inventory::{Ec2State, InstanceView, PingStatus, is_ec2_instance_id, is_managed_node_id};
use crate::verdict::{Ec2View, Evidence, Suppression, Verdict, in_service};

/// The host to check (an EC2 instance `i-…` or an ECS Anywhere node `mi-…`), if the ECS state
/// alone would confirm the disconnect.
pub fn host_to_check<'a>(signal: &'a Signal, ecs: InstanceView<'a>) -> Option<&'a str> {
    if decide_agent(signal, ecs, Ec2View::NotChecked) != Verdict::Confirmed {
        return None;
    }
    let id = match ecs {
        InstanceView::Found(instance) => instance.ec2_instance_id.as_deref(),
        _ => None,
    }
    .or(signal.ec2_instance_id.as_deref())?;
    (is_ec2_instance_id(id) || is_managed_node_id(id)).then_some(id)
}

/// Decides an agent-disconnected signal against the current state.
pub fn decide_agent(signal: &Signal, ecs: InstanceView<'_>, ec2: Ec2View) -> Verdict {
    let instance = match in_service(ecs) {
        Ok(instance) => instance,
        Err(verdict) => return verdict,
    };
    if instance.agent_connected {
        return Verdict::Recovered;
    }
    if let Some(event_version) = signal.version
        && instance.version > event_version
    {
        return Verdict::Superseded {
            event_version,
            current_version: instance.version,
        };
    }
    match ec2 {
        Ec2View::NotChecked => Verdict::Confirmed,
        Ec2View::State(Ec2State::Running) => Verdict::Confirmed,
        Ec2View::State(state) => Verdict::Suppressed(Suppression::InstanceNotRunning(Some(state))),
        Ec2View::NotFound => Verdict::Suppressed(Suppression::InstanceNotRunning(None)),
        Ec2View::Host(PingStatus::Online) | Ec2View::HostNotRegistered => Verdict::Confirmed,
        Ec2View::Host(status) => Verdict::Suppressed(Suppression::HostOffline(status)),
    }
}

/// The verdict with its finding: undecided when the instance's or its host's look-up failed.
pub fn decide(signal: &Signal, evidence: &dyn Evidence) -> Judgement {
    let ecs = evidence.instance(&signal.resource)?;
    let host = match host_to_check(signal, ecs) {
        None => Ec2View::NotChecked,
        Some(id) => evidence.host(id)?,
    };
    let verdict = decide_agent(signal, ecs, host);
    let finding = found::confirmed(&verdict, ecs, |instance| InstanceFinding {
        host_check: host_check(host),
        ..finding(signal, instance)
    });
    Some((verdict, finding))
}

/// A DRAINING instance whose agent is disconnected: ECS cannot stop its tasks, so the drain
/// cannot finish. A reconnected agent on a DRAINING instance is an ordinary drain.
pub fn stuck(signal: &Signal, suppression: &Suppression, evidence: &dyn Evidence) -> Option<InstanceFinding> {
    let Some(InstanceView::Found(instance)) = evidence.instance(&signal.resource) else {
        return None;
    };
    (*suppression == Suppression::Draining && !instance.agent_connected).then(|| InstanceFinding {
        stuck: Some(
            "DRAINING with the agent disconnected: ECS cannot stop its tasks, so the drain cannot finish".to_owned(),
        ),
        draining: true,
        ..finding(signal, instance)
    })
}

fn finding(signal: &Signal, instance: &crate::inventory::ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        agent_version: instance.agent_version.clone(),
        ..found::seen_on(signal, instance)
    }
}

/// What the Systems Manager check of an ECS Anywhere host said, for its finding.
fn host_check(host: Ec2View) -> Option<String> {
    match host {
        Ec2View::Host(status) => Some(format!("Systems Manager: {status}")),
        Ec2View::HostNotRegistered => {
            Some("not registered with Systems Manager: the host could not be checked".to_owned())
        }
        _ => None,
    }
}
