//! What the look-ups of one cluster found, as the kinds' verdicts read it ([`Evidence`]): its
//! snapshot, and the hosts behind its instances (regional, looked up across clusters).

use super::evidence::Ec2Evidence;
use super::snapshot::Snapshot;
use crate::inventory::{InstanceView, is_managed_node_id};
use crate::verdict::{DaemonLook, Ec2View, Evidence};

pub struct Looks<'a> {
    pub snapshot: &'a Snapshot,
    pub hosts: &'a Ec2Evidence,
}

impl Evidence for Looks<'_> {
    fn instance(&self, container_instance_arn: &str) -> Option<InstanceView<'_>> {
        self.snapshot.instance(container_instance_arn)
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
        self.snapshot.daemon(container_instance_arn, name)
    }
}
