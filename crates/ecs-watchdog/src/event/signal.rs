//! What a message body turned out to be, in the terms every kind shares: the problem a signal
//! names (kind, cluster, resource, daemon), its version and time, and what its kind's module
//! alone reads ([`Facts`]). The kinds' parsers make signals; nothing here knows a kind.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use crate::inventory::instance_key;
use crate::kind::AlertKind;

/// What one message body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Signal(Signal),
    /// A well-formed event that needs no check; acknowledged and logged.
    Ignored(IgnoreReason),
    /// A body that cannot be used; quarantined in the dead-letter queue.
    Rejected(RejectReason),
}

/// A possible failure that the monitor must re-check.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub kind: AlertKind,
    pub cluster_arn: String,
    /// What it is about: a container instance's ARN, or for a kind about a daemon as a whole,
    /// the daemon's ARN.
    pub resource: String,
    /// `i-…` on EC2, `mi-…` on ECS Anywhere; the describe call is the better source.
    pub ec2_instance_id: Option<String>,
    /// The daemon, for the kinds about daemons.
    pub daemon_name: Option<String>,
    pub daemon_arn: Option<String>,
    /// `detail.version`: grows with every change of the resource; absent where the event has none.
    pub version: Option<i64>,
    /// When ECS saw it, as the event says.
    pub since: Option<String>,
    /// What tells apart events of one resource that are no repeats of each other (a daemon
    /// deployment's failure and the success that ends it; two deployments' failures).
    pub occasion: Option<String>,
    pub facts: Facts,
}

impl Signal {
    /// A signal with nothing known but what it names.
    pub fn new(kind: AlertKind, cluster_arn: &str, resource: &str) -> Self {
        Self {
            kind,
            cluster_arn: cluster_arn.to_owned(),
            resource: resource.to_owned(),
            ec2_instance_id: None,
            daemon_name: None,
            daemon_arn: None,
            version: None,
            since: None,
            occasion: None,
            facts: Facts::default(),
        }
    }

    /// A signal about a daemon on a container instance, as its events name it.
    pub fn of_daemon(
        kind: AlertKind,
        cluster_arn: &str,
        container_instance: &str,
        name: &str,
        arn: Option<&str>,
    ) -> Self {
        Self {
            daemon_name: Some(name.to_owned()),
            daemon_arn: arn.map(str::to_owned),
            ..Self::new(kind, cluster_arn, container_instance)
        }
    }

    pub fn cluster_arn(&self) -> &str {
        &self.cluster_arn
    }

    /// The resource the signal is about: a container instance, or for a deployment the daemon.
    pub fn container_instance_arn(&self) -> &str {
        &self.resource
    }

    /// The kind of alert it can become.
    pub fn kind(&self) -> AlertKind {
        self.kind
    }

    pub fn version(&self) -> Option<i64> {
        self.version
    }

    pub fn daemon_name(&self) -> Option<&str> {
        self.daemon_name.as_deref()
    }

    /// What makes two signals of a batch the same problem. Typed by kind: a daemon's name can
    /// never meet another kind's key (a daemon named `agent` is not the agent).
    pub fn repeat_key(&self) -> RepeatKey<'_> {
        RepeatKey {
            kind: self.kind,
            resource: instance_key(&self.resource),
            daemon: self.daemon_name.as_deref(),
            occasion: self.occasion.as_deref(),
        }
    }
}

/// What makes two signals the same problem: see [`Signal::repeat_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RepeatKey<'a> {
    kind: AlertKind,
    resource: &'a str,
    daemon: Option<&'a str>,
    occasion: Option<&'a str>,
}

/// A daemon on a container instance, as a work item names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonOn<'a> {
    /// The container instance's ARN.
    pub instance: &'a str,
    pub name: &'a str,
    /// The daemon's ARN, when the event gave it.
    pub arn: Option<&'a str>,
}

impl DaemonOn<'_> {
    /// How a running daemon task is matched to it: its instance's key and the daemon's name.
    pub fn live_key(&self) -> (String, String) {
        (instance_key(self.instance).to_owned(), self.name.to_owned())
    }
}

/// What a kind's event says beyond what every signal says, typed by that kind's module, which
/// alone reads it back ([`Facts::get`]). The event layer cannot name the kinds' types (they are
/// above it), hence the one type-erased box; none for a signal with nothing more to say.
#[derive(Debug, Clone, Default)]
pub struct Facts(Option<Arc<dyn Fact>>);

impl Facts {
    pub fn new<T: Fact>(facts: T) -> Self {
        Self(Some(Arc::new(facts)))
    }

    /// The facts, when they are of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.as_any().downcast_ref()
    }
}

impl PartialEq for Facts {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same(b.as_ref()),
            _ => false,
        }
    }
}

/// What [`Facts`] may hold: any plain data type of a kind's module.
pub trait Fact: Any + Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Fact) -> bool;
}

impl<T: Any + Debug + PartialEq + Send + Sync> Fact for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same(&self, other: &dyn Fact) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

/// Why a well-formed event needs no check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// An `aws.ecs` event of a kind this monitor does not check.
    UnhandledDetailType(String),
    /// What the kind's parser says of an event that tells no problem (a connected agent, a task
    /// that is not a daemon's, a health that is not IMPAIRED).
    NoProblem(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    NotJson(String),
    NotAnEvent,
    UnexpectedSource(String),
    MissingField(&'static str),
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::UnhandledDetailType(t) => write!(f, "detail-type {t:?} is not checked"),
            IgnoreReason::NoProblem(why) => f.write_str(why),
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::NotJson(e) => write!(f, "body is not JSON: {e}"),
            RejectReason::NotAnEvent => f.write_str("body is not an EventBridge event (no source or detail-type)"),
            RejectReason::UnexpectedSource(s) => write!(f, "source {s:?} is not aws.ecs"),
            RejectReason::MissingField(field) => write!(f, "event has no {field}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_daemon_is_named_agent_then_it_is_not_a_repeat_of_the_agent_signal() {
        let agent = Signal {
            version: Some(3),
            ..Signal::new(AlertKind::AgentDisconnected, "c", "arn/ci/x")
        };
        let daemon = Signal {
            version: Some(3),
            ..Signal::of_daemon(AlertKind::DaemonLost, "c", "arn/ci/x", "agent", None)
        };
        assert_ne!(agent.repeat_key(), daemon.repeat_key());
        assert_eq!(agent.repeat_key(), agent.clone().repeat_key());
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Told(u8);

    #[test]
    fn when_facts_are_read_back_then_only_their_own_type_answers_and_equality_compares_them() {
        let facts = Facts::new(Told(1));
        assert_eq!(facts.get::<Told>(), Some(&Told(1)));
        assert_eq!(facts.get::<String>(), None);
        assert_eq!(facts, Facts::new(Told(1)));
        assert_ne!(facts, Facts::new(Told(2)));
        assert_ne!(facts, Facts::new(String::from("1")));
        assert_ne!(facts, Facts::default());
        assert_eq!(Facts::default(), Facts::default());
    }
}
