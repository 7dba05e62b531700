//! The sweep's gauges (DESIGN §8): per cluster seen, zeros included, and summed with no
//! dimension for the stack's alarms; `OpenIncidents` also for the clusters gone whose incidents
//! this run closed, so the gauge agrees with the ledger.

use std::collections::BTreeMap;

use super::run::BatchReport;
use super::survey::Survey;
use crate::incident::IncidentKey;
use crate::inventory::cluster_name;
use crate::metrics::Metric;

/// The sweep's gauges of one cluster it saw: published every run, zeros included, so an alarm
/// reads "none now", not "no data".
pub(super) fn gauges(survey: &Survey, report: &mut BatchReport) {
    let name = cluster_name(&survey.cluster);
    let counts = survey.counts();
    let tally = &mut report.tally;
    tally.gauge(name, Metric::MonitoredInstances, counts.monitored_instances);
    tally.gauge(name, Metric::DisconnectedAgents, counts.disconnected_agents);
    if survey.daemons.is_some() {
        let total = counts.without_daemon.iter().map(|(_, n)| n).sum();
        tally.gauge(name, Metric::InstancesWithoutDaemon, total);
        for (daemon, n) in &counts.without_daemon {
            tally.daemon_gauge(name, daemon, Metric::InstancesWithoutDaemon, *n);
        }
    }
    if let Some(open) = &survey.open {
        open_gauge(&survey.cluster, open.len(), report);
    }
}

/// A cluster's open incidents after this run: those read before it, moved by what it opened
/// and closed.
pub(super) fn open_gauge(cluster: &str, before: usize, report: &mut BatchReport) {
    let name = cluster_name(cluster);
    let tally = &mut report.tally;
    let moved =
        tally.get(Some(name), Metric::IncidentsOpened) as i64 - tally.get(Some(name), Metric::IncidentsResolved) as i64;
    let now_open = (before as i64 + moved).max(0) as u64;
    tally.gauge(name, Metric::OpenIncidents, now_open);
}

/// The clusters gone or out of scope that still had open incidents, with how many.
pub(super) fn orphans(gone: &[(IncidentKey, &str)]) -> BTreeMap<String, usize> {
    let mut orphans = BTreeMap::new();
    for (key, _) in gone {
        *orphans.entry(key.cluster_arn.clone()).or_default() += 1;
    }
    orphans
}

/// The gauges summed over the clusters counted, with no dimension: what the stack's alarms
/// watch (an alarm cannot know the cluster names in advance).
pub(super) fn totals<'a>(clusters: impl Iterator<Item = &'a str>, report: &mut BatchReport) {
    let names: Vec<&str> = clusters.map(cluster_name).collect();
    let tally = &mut report.tally;
    for metric in [
        Metric::MonitoredInstances,
        Metric::DisconnectedAgents,
        Metric::InstancesWithoutDaemon,
        Metric::OpenIncidents,
        Metric::UnregisteredInstances,
    ] {
        let seen: Vec<&&str> = names.iter().filter(|name| tally.has(name, metric)).collect();
        // No cluster whose value is known: no data, rather than a zero nobody measured.
        if !seen.is_empty() {
            let total = seen.iter().map(|name| tally.get(Some(name), metric)).sum();
            tally.gauge_total(metric, total);
        }
    }
}
