//! Whether a deployment of each lost daemon is in progress (DESIGN §4: a daemon missing while
//! ECS deploys it is no loss): `ListDaemons` for the ARNs the events did not give, then one
//! `ListDaemonDeployments` per daemon.

use std::collections::HashMap;

use futures_util::future::join_all;

use super::batched::log_check_error;
use crate::event::DaemonOn;
use crate::ports::{AwsError, Daemons, ErrorKind};
use crate::verdict::Deployment;

/// What is known of each daemon's deployments by name: `None` when the look-up failed and may
/// work later.
type ByName = HashMap<String, Option<Deployment>>;

/// Whether a deployment of each daemon is in progress: `ListDaemons` (only for daemons whose
/// ARN the events did not give) and one `ListDaemonDeployments` per daemon. `None` means the
/// look-up failed and may work later; unavailable APIs give [`Deployment::Unknown`] and the
/// reason. Also returns the daemons' ARNs by name, as far as they are known.
pub async fn deployments(
    daemons: &dyn Daemons,
    cluster: &str,
    lost: &[DaemonOn<'_>],
) -> (ByName, Option<AwsError>, HashMap<String, String>) {
    if lost.is_empty() {
        return (HashMap::new(), None, HashMap::new());
    }
    let (mut arns, mut results) = match arns(daemons, cluster, lost).await {
        Ok(known) => known,
        Err((e, arns)) => {
            let all = lost.iter().map(|d| (d.name.to_owned(), Some(Deployment::Unknown)));
            return (all.collect(), Some(e), arns);
        }
    };
    for daemon in lost {
        // A daemon ListDaemons does not list (just created, or deleted, or listed late) cannot be
        // asked about its deployments: that is not "none in progress", and the alert says so.
        let known = arns.contains_key(daemon.name);
        results.entry(daemon.name.to_owned()).or_insert(Some(if known {
            Deployment::NotInProgress
        } else {
            Deployment::Unknown
        }));
    }
    let unavailable = in_progress(daemons, cluster, &arns, &mut results).await;
    // The daemons of this look only: ListDaemons lists the cluster's others too.
    arns.retain(|name, _| lost.iter().any(|d| d.name == name));
    (results, unavailable, arns)
}

/// The daemons' ARNs by name: the events' own, and `ListDaemons` for the rest. A failed listing
/// leaves those daemons undecided (`None`); unavailable APIs are the error, with what is known.
async fn arns(
    daemons: &dyn Daemons,
    cluster: &str,
    lost: &[DaemonOn<'_>],
) -> Result<(HashMap<String, String>, ByName), (AwsError, HashMap<String, String>)> {
    let mut arns: HashMap<String, String> = lost
        .iter()
        .filter_map(|d| Some((d.name.to_owned(), d.arn?.to_owned())))
        .collect();
    let mut results = ByName::new();
    if lost.iter().all(|d| arns.contains_key(d.name)) {
        return Ok((arns, results));
    }
    match daemons.list_daemons(cluster).await {
        Ok(listed) => {
            for daemon in listed {
                arns.entry(daemon.name).or_insert(daemon.arn);
            }
        }
        Err(e) if e.kind == ErrorKind::Unavailable => return Err((e, arns)),
        Err(e) => {
            log_check_error(cluster, &e, lost.len());
            results.extend(
                lost.iter()
                    .filter(|d| !arns.contains_key(d.name))
                    .map(|d| (d.name.to_owned(), None)),
            );
        }
    }
    Ok((arns, results))
}

/// One `ListDaemonDeployments` per daemon so far not in progress; returns the first
/// unavailable API's error.
async fn in_progress(
    daemons: &dyn Daemons,
    cluster: &str,
    arns: &HashMap<String, String>,
    results: &mut ByName,
) -> Option<AwsError> {
    let wanted: Vec<(&String, &String)> = arns
        .iter()
        .filter(|(name, _)| results.get(*name) == Some(&Some(Deployment::NotInProgress)))
        .collect();
    let answers = join_all(wanted.iter().map(|(_, arn)| daemons.deployment_in_progress(arn))).await;
    let mut unavailable = None;
    for ((name, _), answer) in wanted.into_iter().zip(answers) {
        let result = match answer {
            Ok(true) => Some(Deployment::InProgress),
            Ok(false) => Some(Deployment::NotInProgress),
            Err(e) if e.kind == ErrorKind::Unavailable => {
                unavailable.get_or_insert(e);
                Some(Deployment::Unknown)
            }
            Err(e) => {
                log_check_error(cluster, &e, 1);
                None
            }
        };
        results.insert(name.clone(), result);
    }
    unavailable
}
