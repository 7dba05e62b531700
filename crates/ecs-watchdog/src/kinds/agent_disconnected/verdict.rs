//! The `agent-disconnected` verdict (DESIGN §2): the instance's state in ECS, then the host's
//! in EC2 or Systems Manager.

use super::super::found;
use super::super::kind::Judgement;
use crate::event::Signal;
use crate::finding::InstanceFinding;
use crate::inventory::{Ec2State, InstanceView, PingStatus, is_ec2_instance_id, is_managed_node_id};
use crate::verdict::{Case, Ec2View, Evidence, Suppression, Verdict, in_service};

/// The host to check (an EC2 instance `i-…` or an ECS Anywhere node `mi-…`), if the ECS state
/// alone would confirm the disconnect: ECS's id, else the event's.
pub fn host_to_check<'a>(event: Option<&'a Signal>, ecs: InstanceView<'a>) -> Option<&'a str> {
    if decide_agent(event, ecs, Ec2View::NotChecked) != Verdict::Confirmed {
        return None;
    }
    let id = match ecs {
        InstanceView::Found(instance) => instance.ec2_instance_id.as_deref(),
        _ => None,
    }
    .or(event.and_then(|e| e.ec2_instance_id.as_deref()))?;
    (is_ec2_instance_id(id) || is_managed_node_id(id)).then_some(id)
}

/// Decides an agent disconnected against the current state, and the event's version if an
/// event set off the look (the sweep's looks have none).
pub fn decide_agent(event: Option<&Signal>, ecs: InstanceView<'_>, ec2: Ec2View) -> Verdict {
    let instance = match in_service(ecs) {
        Ok(instance) => instance,
        Err(verdict) => return verdict,
    };
    if instance.agent_connected {
        return Verdict::Recovered;
    }
    if let Some(event_version) = event.and_then(|e| e.version)
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
pub fn decide(case: Case<'_>, evidence: &dyn Evidence) -> Judgement {
    let ecs = evidence.instance(case.resource())?;
    let host = match host_to_check(case.event, ecs) {
        None => Ec2View::NotChecked,
        Some(id) => evidence.host(id)?,
    };
    let verdict = decide_agent(case.event, ecs, host);
    let finding = found::confirmed(&verdict, ecs, |instance| InstanceFinding {
        host_check: host_check(host),
        ..finding(case, instance)
    });
    Some((verdict, finding))
}

/// A DRAINING instance whose agent is disconnected: ECS cannot stop its tasks, so the drain
/// cannot finish. A reconnected agent on a DRAINING instance is an ordinary drain.
pub fn stuck(case: Case<'_>, suppression: &Suppression, evidence: &dyn Evidence) -> Option<InstanceFinding> {
    let Some(InstanceView::Found(instance)) = evidence.instance(case.resource()) else {
        return None;
    };
    (*suppression == Suppression::Draining && !instance.agent_connected).then(|| InstanceFinding {
        stuck: Some(
            "DRAINING with the agent disconnected: ECS cannot stop its tasks, so the drain cannot finish".to_owned(),
        ),
        draining: true,
        ..finding(case, instance)
    })
}

fn finding(case: Case<'_>, instance: &crate::inventory::ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        agent_version: instance.agent_version.clone(),
        ..found::seen_on(case, instance)
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
