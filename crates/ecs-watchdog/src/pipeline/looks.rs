//! What the look-ups of one cluster found, as the kinds' verdicts read it ([`Evidence`]): the
//! container instances, the hosts behind them, and the lost daemons' tasks and deployments.

use super::evidence::{DaemonChecks, Described, Ec2Evidence};
use crate::inventory::{InstanceView, instance_key, is_managed_node_id};
use crate::verdict::{DaemonLook, Deployment, Ec2View, Evidence};

pub struct Looks<'a> {
    pub described: &'a Described<'a>,
    pub daemons: &'a DaemonChecks,
    pub hosts: &'a Ec2Evidence,
}

impl Evidence for Looks<'_> {
    fn instance(&self, container_instance_arn: &str) -> Option<InstanceView<'_>> {
        self.described
            .known(container_instance_arn)
            .then(|| self.described.instances.lookup(container_instance_arn))
    }

    fn host(&self, id: &str) -> Option<Ec2View> {
        let hosts = self.hosts;
        if hosts.failed.contains(id) || hosts.managed_failed.contains(id) {
            return None;
        }
        Some(if is_managed_node_id(id) {
            hosts
                .managed
                .get(id)
                .map_or(Ec2View::HostNotRegistered, |s| Ec2View::Host(*s))
        } else {
            hosts.states.get(id).map_or(Ec2View::NotFound, |s| Ec2View::State(*s))
        })
    }

    fn daemon(&self, container_instance_arn: &str, name: &str) -> Option<DaemonLook> {
        let checks = self.daemons;
        if checks.failed.contains(name) {
            return None;
        }
        let live = (instance_key(container_instance_arn).to_owned(), name.to_owned());
        Some(DaemonLook {
            running: checks.live.contains(&live),
            // Not asked (no deployment look-up for the daemon): unknown; asked and failed: none.
            deployment: match checks.deployments.get(name) {
                Some(deployment) => *deployment,
                None => Some(Deployment::Unknown),
            },
            critical: checks.critical.get(name).copied().flatten(),
        })
    }
}
