//! What a kind of problem is, as one trait: everything that differs from kind to kind, so the
//! stages ask the kind rather than match on it. Each kind's module implements it; the registry
//! (`kinds::KINDS`) lists them.

use crate::config::Remediation;
use crate::event::{Envelope, IgnoreReason, Parsed, RejectReason};
use crate::finding::steps::NextSteps;
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity};
use crate::inventory::InstanceView;
use crate::kind::AlertKind;
use crate::metrics::Metric;
use crate::verdict::{Case, Evidence, Suppression, Verdict};

/// A kind's verdict on an incident, with the finding of a confirmed one; `None` when a look-up it
/// needed failed (the message goes back to the queue).
pub type Judgement = Option<(Verdict, Option<Box<InstanceFinding>>)>;

pub trait Kind: Sync {
    fn kind(&self) -> AlertKind;

    /// The EventBridge `detail-type`s whose events can tell it (the template's rules and the
    /// spoke's forward each one); none for a kind only the sweep finds.
    fn detail_types(&self) -> &'static [&'static str];

    /// Reads one event of its detail-types: a signal, an event that tells no problem
    /// (ignored), or a rejection naming the field that is missing.
    fn parse(&self, event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
        Ok(Parsed::Ignored(IgnoreReason::UnhandledDetailType(
            event.detail_type.to_owned(),
        )))
    }

    /// The host behind the signal's instance that its verdict needs looked up (EC2 or Systems
    /// Manager), given what ECS said of the instance; none for a kind that needs none.
    fn host_to_check<'a>(&self, _case: Case<'a>, _ecs: InstanceView<'a>) -> Option<&'a str> {
        None
    }

    /// Whether its verdict needs the signal's daemon's tasks on the instance looked up (and the
    /// daemon's deployments), given what ECS said of the instance.
    fn daemon_to_check(&self, _ecs: InstanceView<'_>) -> bool {
        false
    }

    /// Its verdict on an incident of its kind (and the event that set off the look, if one did),
    /// from the evidence the look-ups found.
    fn decide(&self, _case: Case<'_>, _evidence: &dyn Evidence) -> Judgement {
        None
    }

    /// The finding of a suppression that the sweep alerts once it lasted `STUCK_AFTER_MINUTES`
    /// (an instance stuck DRAINING), while the problem itself is still there; none for a kind
    /// with no such suppression.
    fn stuck(&self, _case: Case<'_>, _suppression: &Suppression, _evidence: &dyn Evidence) -> Option<InstanceFinding> {
        None
    }

    /// What broke, in a subject: `ECS agent disconnected`, `ECS daemon log-router lost`. The
    /// names of the daemons the message tells, in order, for the kinds about daemons.
    fn headline(&self, daemons: &[&str]) -> String;

    /// Whether its messages count container instances (`on 3 instances`) and link the first;
    /// a deployment is of a daemon, not of instances.
    fn of_instances(&self) -> bool {
        true
    }

    /// Whether its incidents are a cluster's (the monitor's own problems are filed under a
    /// scope instead): its alert links the cluster's pages, its place sweeps it.
    fn of_a_cluster(&self) -> bool {
        true
    }

    /// The e-mail's account of the finding before its list of instances: what broke and where,
    /// on `total` instances (the omitted counted).
    fn opening(&self, finding: &Finding, total: usize) -> String;

    /// One instance's lines in the e-mail's list (the frame renders each once).
    fn instance_lines(&self, instance: &InstanceFinding, now: u64) -> String;

    /// Whether the e-mail's list is grouped by daemon (daemon-lost), each group under
    /// [`Kind::daemon_heading`].
    fn lists_by_daemon(&self) -> bool {
        false
    }

    /// The heading of one daemon's group of `listed` instances in the e-mail's list.
    fn daemon_heading(&self, _daemon: &str, _listed: usize) -> String {
        String::new()
    }

    /// What to do next, with the first instance's ids in the commands; none when no instance
    /// is listed.
    fn next_steps(&self, finding: &Finding) -> Option<NextSteps>;

    /// What the monitor looked at before it confirmed the instances listed.
    fn checked(&self, checks: DaemonChecks, instances: &[InstanceFinding]) -> Vec<&'static str>;

    /// Its rule of the severity rule (`alert::severity`); `widespread(n)`: n instances are at
    /// least `CRITICAL_PERCENT` of the cluster's.
    fn severity(&self, instances: &[InstanceFinding], widespread: &dyn Fn(usize) -> bool) -> Severity;

    /// The count a sent alert adds to, one per incident it tells; none for a kind counted
    /// otherwise (counting it under another kind's name would set off that kind's alarm).
    fn metric(&self) -> Option<Metric>;

    /// The metric its CloudWatch alarm watches: its count, or for a kind counted otherwise
    /// that other count.
    fn alarm(&self) -> Option<Metric> {
        self.metric()
    }

    /// Whether that count is by daemon as well (dimension `DaemonName`).
    fn counted_by_daemon(&self) -> bool {
        false
    }

    /// Whether remediation may take the instance out of service (drain it, replace it).
    fn drains(&self) -> bool {
        false
    }

    /// Whether its alerts name the services with tasks on each instance (`services`), looked
    /// up just before they are rendered (`pipeline/services.rs`).
    fn names_services(&self) -> bool {
        false
    }

    /// Whether this confirmed finding may be remediated under `config`.
    fn remediable(&self, _finding: &InstanceFinding, _config: &Remediation) -> bool {
        false
    }

    /// How a look that found it over says so, in the resolved notice.
    fn recovered(&self) -> Option<&'static str> {
        None
    }

    /// Whether the sweep looks again at an open incident of this kind it saw nothing of this
    /// run (its key alone, no event), so a look can close it; not where the sweep cannot look (a
    /// deployment ends by its events, the monitor's own problems by its calls).
    fn looked_at_again(&self) -> bool {
        false
    }

    /// Whether only its own events end it (as of their time), rather than a look at the
    /// state now: a daemon deployment's success.
    fn ended_by_its_events(&self) -> bool {
        false
    }

    /// Whether the sweep looks at each of its open incidents every pass (`Look::Owed`), for
    /// a kind that ends by time rather than by a look at the instance: a quiet hour.
    fn looked_at_each_sweep(&self) -> bool {
        false
    }

    /// Whether it may only repeat an agent-disconnected incident of the same instance (an
    /// impaired instance whose one failing check is AGENT_CONNECTIVITY), which then tells it.
    fn may_repeat_agent(&self) -> bool {
        false
    }
}
