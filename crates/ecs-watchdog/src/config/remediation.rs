//! What remediation may do (DESIGN §3) and where (`REMEDIATION_CLUSTER_NAMES`,
//! `REPLACE_ONLY_TAGGED_GROUPS`): `REMEDIATION_*`, `REPLACE_*`, `MAX_REMEDIATION_PERCENT`.

use std::time::Duration;

use super::{ConfigError, boolean, invalid, list, required, seconds};
use crate::remediation::Scope;

/// What the monitor does to a confirmed broken instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remediation {
    pub action: RemediationAction,
    /// Report what would be done, do nothing.
    pub dry_run: bool,
    /// Never leave more than this share of a cluster's instances DRAINING (at least one).
    pub max_percent: u8,
    /// Also drain for a lost daemon that is not critical (or whose criticality is unknown).
    /// Off by default: ECS keeps such an instance in service on purpose.
    pub non_critical_daemons: bool,
    /// drain-and-replace: mark a drained instance Unhealthy once its tasks have left, at the
    /// latest after this long.
    pub replace_after: Duration,
    /// restart-agent, restart-then-drain: how long after the restart the next look checks the
    /// agent (`RESTART_WAIT_MINUTES`).
    pub restart_wait: Duration,
    /// restart-agent, restart-then-drain: the stack's SSM Command document that runs
    /// `systemctl restart ecs` and nothing else (`RESTART_DOCUMENT_NAME`); none otherwise.
    pub restart_document: Option<String>,
    /// `REMEDIATION_CLUSTER_NAMES` and `REPLACE_ONLY_TAGGED_GROUPS`.
    pub scope: crate::remediation::Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemediationAction {
    None,
    /// Set the container instance to DRAINING.
    Drain,
    /// Drain, then mark the EC2 instance Unhealthy in its Auto Scaling group.
    DrainAndReplace,
    /// Restart the ECS agent through SSM Run Command; alert if it does not reconnect.
    RestartAgent,
    /// Restart the agent; drain the instance if it has not reconnected after the wait.
    RestartThenDrain,
}

impl RemediationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationAction::None => "none",
            RemediationAction::Drain => "drain",
            RemediationAction::DrainAndReplace => "drain-and-replace",
            RemediationAction::RestartAgent => "restart-agent",
            RemediationAction::RestartThenDrain => "restart-then-drain",
        }
    }

    /// Whether the first step restarts the agent rather than draining.
    pub fn restarts(self) -> bool {
        matches!(
            self,
            RemediationAction::RestartAgent | RemediationAction::RestartThenDrain
        )
    }
}

/// Reads the remediation variables.
pub(super) fn remediation(get: &impl Fn(&str) -> Option<String>) -> Result<Remediation, ConfigError> {
    let action = match get("REMEDIATION_ACTION").as_deref() {
        None | Some("none") => RemediationAction::None,
        Some("drain") => RemediationAction::Drain,
        Some("drain-and-replace") => RemediationAction::DrainAndReplace,
        Some("restart-agent") => RemediationAction::RestartAgent,
        Some("restart-then-drain") => RemediationAction::RestartThenDrain,
        Some(other) => {
            let accepted = "none, drain, drain-and-replace, restart-agent, restart-then-drain";
            return Err(invalid("REMEDIATION_ACTION", other, accepted));
        }
    };
    let dry_run = boolean(get, "REMEDIATION_DRY_RUN", false)?;
    let non_critical_daemons = boolean(get, "REMEDIATE_NON_CRITICAL_DAEMONS", false)?;
    let replace_after = seconds(
        get,
        "REPLACE_AFTER_MINUTES",
        15 * 60,
        24 * 3600,
        "a whole number of minutes from 0 to 1440 (a day)",
    )?;
    let restart_wait = seconds(
        get,
        "RESTART_WAIT_MINUTES",
        5 * 60,
        24 * 3600,
        "a whole number of minutes from 0 to 1440 (a day)",
    )?;
    let restart_document = restart_document(get, action.restarts())?;
    let scope = remediation_scope(get)?;
    let max_percent = match get("MAX_REMEDIATION_PERCENT") {
        None => 10,
        Some(raw) => raw
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| invalid("MAX_REMEDIATION_PERCENT", &raw, "a whole number from 1 to 100"))?,
    };
    Ok(Remediation {
        action,
        dry_run,
        max_percent,
        non_critical_daemons,
        replace_after,
        restart_wait,
        restart_document,
        scope,
    })
}

/// `RESTART_DOCUMENT_NAME`: the stack's own Command document. A name SSM reserves for its own
/// documents (`AWS-`, `Amazon`, `amzn`: AWS-RunShellScript runs any command it is given) is
/// refused, so the grant and the code name the same fixed command.
fn restart_document(get: &impl Fn(&str) -> Option<String>, restarts: bool) -> Result<Option<String>, ConfigError> {
    const ACCEPTED: &str = "the name of the stack's SSM Command document (3 to 128 letters, digits, _ - .), \
                            not an AWS-owned document (AWS-, Amazon, amzn)";
    // The template sets it empty where nothing restarts.
    let name = get("RESTART_DOCUMENT_NAME").filter(|n| !n.is_empty());
    let name = match (name, restarts) {
        (Some(name), true) => name,
        (None, true) => return required(get, "RESTART_DOCUMENT_NAME", ACCEPTED).map(Some),
        (_, false) => return Ok(None),
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let lower = name.to_ascii_lowercase();
    let reserved = ["aws", "amazon", "amzn"].iter().any(|p| lower.starts_with(p));
    match (3..=128).contains(&name.len()) && name.chars().all(allowed) && !reserved {
        true => Ok(Some(name)),
        false => Err(invalid("RESTART_DOCUMENT_NAME", &name, ACCEPTED)),
    }
}

/// `REMEDIATION_CLUSTER_NAMES` (comma-separated names, `*` or unset for every cluster) and
/// `REPLACE_ONLY_TAGGED_GROUPS`.
fn remediation_scope(get: &impl Fn(&str) -> Option<String>) -> Result<Scope, ConfigError> {
    let names = list(get, "REMEDIATION_CLUSTER_NAMES");
    let cluster_chars = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if let Some(bad) = names
        .iter()
        .find(|n| *n != "*" && (n.len() > 255 || !n.chars().all(cluster_chars)))
    {
        return Err(invalid(
            "REMEDIATION_CLUSTER_NAMES",
            bad,
            "cluster names (letters, digits, - and _) separated by commas, or *",
        ));
    }
    let clusters = if names.is_empty() || names.iter().any(|n| n == "*") {
        None
    } else {
        Some(names.into_iter().collect())
    };
    Ok(Scope {
        clusters,
        only_tagged_groups: boolean(get, "REPLACE_ONLY_TAGGED_GROUPS", false)?,
    })
}
