//! The sweep's look for EC2 instances that never registered (`instance-not-registered`): each
//! surveyed cluster's Auto Scaling capacity providers, their groups' InService instances, and
//! those launched longer ago than `REGISTER_WITHIN_MINUTES` with no container instance in the
//! cluster. Every call is batched across the place's clusters (all four are regional):
//! `DescribeClusters` per 100 clusters, `DescribeCapacityProviders` per 10 providers (its page),
//! `DescribeAutoScalingGroups` per 50 groups, `DescribeInstances` per 100 instances not
//! registered; a cluster without an Auto Scaling provider costs no Auto Scaling call, and a
//! fleet whose instances all registered no `DescribeInstances`. A failed call leaves the
//! clusters it covered unknown: nothing alerted, nothing resolved there.

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_smithy_types::date_time::{DateTime, Format};

use super::batched::{chunked, chunked_by, log_check_error};
use super::ledger::Seen;
use super::plan::Look;
use super::survey::Survey;
use crate::alert::{AlertKind, InstanceFinding};
use crate::incident::IncidentKey;
use crate::inventory::{AutoScalingGroup, ClusterInstances, GroupInstance, auto_scaling_group_name, cluster_name};
use crate::kinds;
use crate::metrics::{Metric, Tally};
use crate::ports::Inventory;

/// The most group names one `DescribeAutoScalingGroups` takes here: its default page
/// (`MaxRecords` 50), so each call is one page.
pub const AUTO_SCALING_GROUP_LIMIT: usize = 50;

/// The most providers one `DescribeCapacityProviders` answers (a page holds at most 10).
pub const CAPACITY_PROVIDERS_PER_CALL: usize = 10;

/// One cluster's look: the instances not registered, or none when a look-up it needed failed.
pub struct Unregistered<'a> {
    pub cluster: &'a str,
    pub instances: Option<Vec<InstanceFinding>>,
}

/// What the place's calls answered, and what they failed to.
#[derive(Default)]
struct Answers {
    providers: HashMap<String, Vec<String>>,
    groups: HashMap<String, String>,
    in_service: HashMap<String, AutoScalingGroup>,
    launched: HashMap<String, u64>,
    failed: HashSet<String>,
}

/// The look at every surveyed cluster whose container instances are known.
pub async fn look<'a>(
    inventory: &dyn Inventory,
    surveys: &'a [Survey],
    now: u64,
    within: u64,
) -> Vec<Unregistered<'a>> {
    let known: Vec<&Survey> = surveys
        .iter()
        .filter(|s| s.failed_instances.is_empty() && matches!(s.instances, ClusterInstances::Found(_)))
        .collect();
    let mut answers = Answers::default();
    let arns: Vec<String> = known.iter().map(|s| s.cluster.clone()).collect();
    for (chunk, answer) in chunked(&arns, |chunk| inventory.describe_clusters(chunk)).await {
        match answer {
            Ok(infos) => answers
                .providers
                .extend(infos.into_iter().map(|i| (i.arn, i.capacity_providers))),
            Err(e) => fail(&mut answers, chunk, &e),
        }
    }
    let names = unique(answers.providers.values().flatten().map(String::as_str));
    let page = CAPACITY_PROVIDERS_PER_CALL;
    for (chunk, answer) in chunked_by(&names, page, |chunk| inventory.capacity_provider_groups(chunk)).await {
        match answer {
            Ok(groups) => answers.groups.extend(groups),
            Err(e) => fail(&mut answers, chunk, &e),
        }
    }
    let groups = unique(answers.groups.values().map(|arn| auto_scaling_group_name(arn)));
    let limit = AUTO_SCALING_GROUP_LIMIT;
    for (chunk, answer) in chunked_by(&groups, limit, |c| inventory.describe_auto_scaling_groups(c)).await {
        match answer {
            Ok(found) => answers
                .in_service
                .extend(found.into_iter().map(|g| (g.name.clone(), g))),
            Err(e) => fail(&mut answers, chunk, &e),
        }
    }
    let candidates = unique(
        known
            .iter()
            .flat_map(|s| candidates(s, &answers))
            .map(|(i, _)| i.instance_id.as_str()),
    );
    for (chunk, answer) in chunked(&candidates, |chunk| inventory.ec2_launch_times(chunk)).await {
        match answer {
            Ok(launched) => answers.launched.extend(launched),
            Err(e) => fail(&mut answers, chunk, &e),
        }
    }
    known
        .into_iter()
        .map(|survey| Unregistered {
            cluster: &survey.cluster,
            instances: decide(survey, &answers, now, within),
        })
        .collect()
}

fn fail(answers: &mut Answers, chunk: &[String], e: &crate::ports::AwsError) {
    log_check_error("-", e, chunk.len());
    answers.failed.extend(chunk.iter().cloned());
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let names: BTreeSet<&str> = names.collect();
    names.into_iter().map(str::to_owned).collect()
}

/// The InService instances of the cluster's groups that no container instance of it names,
/// each with what holds it (`group (capacity provider)`).
fn candidates<'s>(survey: &'s Survey, answers: &'s Answers) -> impl Iterator<Item = (&'s GroupInstance, String)> + 's {
    let registered: HashSet<&str> = match &survey.instances {
        ClusterInstances::Found(found) => found.values().filter_map(|i| i.ec2_instance_id.as_deref()).collect(),
        ClusterInstances::ClusterGone => HashSet::new(),
    };
    let providers = answers.providers.get(&survey.cluster).into_iter().flatten();
    providers
        .filter_map(|p| Some((p, auto_scaling_group_name(answers.groups.get(p)?))))
        .filter_map(|(p, name)| Some((p, answers.in_service.get(name)?)))
        .flat_map(|(p, group)| group.in_service.iter().map(move |i| (p, group, i)))
        .filter(move |(_, _, i)| !registered.contains(i.instance_id.as_str()))
        .map(|(p, group, i)| {
            let held = format!("InService in Auto Scaling group {} (capacity provider {p})", group.name);
            (i, held)
        })
}

/// The cluster's instances not registered in time, or none when a call it needed failed: its
/// description, one of its providers or groups, or a candidate's launch time.
fn decide(survey: &Survey, answers: &Answers, now: u64, within: u64) -> Option<Vec<InstanceFinding>> {
    let failed = |name: &str| answers.failed.contains(name);
    if failed(&survey.cluster) {
        return None;
    }
    // Not described (deleted since it was listed): undecided; its incidents close with it.
    let providers = answers.providers.get(&survey.cluster)?;
    if providers.iter().any(|p| failed(p)) {
        return None;
    }
    let mut groups = providers.iter().filter_map(|p| answers.groups.get(p));
    if groups.any(|arn| failed(auto_scaling_group_name(arn))) {
        return None;
    }
    let mut late = Vec::new();
    for (instance, held) in candidates(survey, answers) {
        let id = instance.instance_id.as_str();
        if failed(id) {
            return None;
        }
        // Gone since the group listed it (terminated): nothing to tell.
        let Some(&launched) = answers.launched.get(id) else {
            continue;
        };
        if launched.saturating_add(within) <= now {
            late.push(finding(instance, held, launched));
        }
    }
    late.sort_by(|a, b| a.container_instance_arn.cmp(&b.container_instance_arn));
    Some(late)
}

/// The finding of an instance not registered: its EC2 id stands where a container instance's
/// ARN would (it has none), since when it was launched, and the group that holds it.
fn finding(instance: &GroupInstance, held: String, launched: u64) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: instance.instance_id.clone(),
        ec2_instance_id: Some(instance.instance_id.clone()),
        availability_zone: instance.availability_zone.clone(),
        since: DateTime::from_secs(i64::try_from(launched).unwrap_or(i64::MAX))
            .fmt(Format::DateTime)
            .ok(),
        reason: Some(held),
        ..Default::default()
    }
}

/// The looks the ledger takes: each instance not registered is confirmed (its launch age was
/// its grace period), and each open incident of the kind whose instance is no longer among them
/// is over. A cluster not looked at closes nothing.
pub fn seen(surveys: &[Survey], looks: &[Unregistered<'_>]) -> Vec<Seen> {
    let kind = AlertKind::InstanceNotRegistered;
    let mut seen = Vec::new();
    for (look, instances) in looks.iter().filter_map(|l| Some((l, l.instances.as_ref()?))) {
        let keys: Vec<IncidentKey> = instances
            .iter()
            .map(|i| IncidentKey::new(look.cluster, kind, &i.container_instance_arn, None))
            .collect();
        let open = surveys
            .iter()
            .find(|s| s.cluster == look.cluster)
            .and_then(|s| s.open.as_ref());
        let over = open
            .into_iter()
            .flatten()
            .filter(|k| k.kind == kind && !keys.contains(k));
        seen.extend(over.map(|key| Seen {
            key: key.clone(),
            look: Look::Over {
                how: kinds::of(kind).recovered().unwrap_or_default().to_owned(),
                at: None,
                event: None,
            },
            time: None,
            told: false,
        }));
        seen.extend(keys.into_iter().zip(instances).map(|(key, finding)| Seen {
            key,
            look: Look::Confirmed {
                finding: Box::new(finding.clone()),
                hold: 0,
            },
            time: None,
            told: false,
        }));
    }
    seen
}

/// The gauge `UnregisteredInstances` of each cluster looked at (zeros included).
pub fn gauges(looks: &[Unregistered<'_>], tally: &mut Tally) {
    for look in looks {
        if let Some(instances) = &look.instances {
            tally.gauge(
                cluster_name(look.cluster),
                Metric::UnregisteredInstances,
                instances.len() as u64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ContainerInstance, InstanceStatus};

    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:1:cluster/prod";
    const GROUP: &str = "arn:aws:autoscaling:eu-west-1:1:autoScalingGroup:uuid:autoScalingGroupName/web";
    const NOW: u64 = 1_800_000_000;
    const WITHIN: u64 = 600;

    /// The cluster with container instances of `registered` EC2 ids.
    fn survey(registered: &[&str], open: Vec<IncidentKey>) -> Survey {
        let found = registered
            .iter()
            .map(|id| {
                let instance = ContainerInstance {
                    arn: format!("arn:aws:ecs:eu-west-1:1:container-instance/prod/{id}"),
                    status: InstanceStatus::Active,
                    agent_connected: true,
                    version: 1,
                    ec2_instance_id: Some((*id).to_owned()),
                    running_tasks_count: 0,
                    agent_version: None,
                    availability_zone: None,
                    capacity_provider_name: Some("cp-web".into()),
                    health: None,
                    tags: Vec::new(),
                };
                ((*id).to_owned(), instance)
            })
            .collect();
        Survey {
            snapshot: super::super::snapshot::Snapshot::new(CLUSTER, (ClusterInstances::Found(found), HashSet::new())),
            daemons: None,
            tasks: Default::default(),
            open: Some(open),
        }
    }

    /// The group `web` behind provider `cp-web` with `in_service` instances, each launched
    /// `age` seconds before NOW.
    fn group_of(in_service: &[(&str, u64)]) -> Answers {
        let instances = in_service
            .iter()
            .map(|(id, _)| GroupInstance {
                instance_id: (*id).to_owned(),
                availability_zone: Some("eu-west-1a".into()),
            })
            .collect();
        Answers {
            providers: HashMap::from([(CLUSTER.to_owned(), vec!["cp-web".to_owned()])]),
            groups: HashMap::from([("cp-web".to_owned(), GROUP.to_owned())]),
            in_service: HashMap::from([(
                "web".to_owned(),
                AutoScalingGroup {
                    name: "web".into(),
                    in_service: instances,
                },
            )]),
            launched: in_service
                .iter()
                .map(|(id, age)| ((*id).to_owned(), NOW - age))
                .collect(),
            failed: HashSet::new(),
        }
    }

    fn ids(found: Option<Vec<InstanceFinding>>) -> Option<Vec<String>> {
        found.map(|f| f.into_iter().map(|i| i.container_instance_arn).collect())
    }

    #[test]
    fn when_instances_are_in_service_then_only_those_unregistered_past_the_window_are_found() {
        let answers = group_of(&[
            ("i-a", 900),
            ("i-b", 900),
            ("i-late", 900),
            ("i-edge", 600),
            ("i-young", 599),
        ]);
        let survey = survey(&["i-a", "i-b"], Vec::new());
        let found = decide(&survey, &answers, NOW, WITHIN);
        assert_eq!(ids(found.clone()), Some(vec!["i-edge".to_owned(), "i-late".to_owned()]));
        let late = &found.unwrap()[1];
        assert_eq!(late.availability_zone.as_deref(), Some("eu-west-1a"));
        assert_eq!(late.since.as_deref(), Some("2027-01-15T07:45:00Z"));
        assert_eq!(
            late.reason.as_deref(),
            Some("InService in Auto Scaling group web (capacity provider cp-web)")
        );
    }

    /// A failed call leaves the cluster undecided, never "all registered"; an instance whose
    /// launch time is not known any more (terminated since) is not told.
    #[test]
    fn when_a_look_up_fails_then_the_cluster_is_undecided() {
        let survey = survey(&[], Vec::new());
        for failed in [CLUSTER, "cp-web", "web", "i-late"] {
            let mut answers = group_of(&[("i-late", 900)]);
            answers.failed.insert(failed.to_owned());
            assert_eq!(ids(decide(&survey, &answers, NOW, WITHIN)), None, "{failed}");
        }
        let mut answers = group_of(&[("i-late", 900)]);
        answers.launched.clear();
        assert_eq!(ids(decide(&survey, &answers, NOW, WITHIN)), Some(Vec::new()));
        let mut answers = group_of(&[("i-late", 900)]);
        answers.providers.clear();
        assert_eq!(
            ids(decide(&survey, &answers, NOW, WITHIN)),
            None,
            "not described: nothing told"
        );
    }

    #[test]
    fn when_an_instance_registers_then_its_open_incident_is_over_and_the_others_stay_confirmed() {
        let kind = AlertKind::InstanceNotRegistered;
        let open = vec![
            IncidentKey::new(CLUSTER, kind, "i-joined", None),
            IncidentKey::new(CLUSTER, kind, "i-late", None),
            IncidentKey::new(CLUSTER, AlertKind::AgentDisconnected, "x/abc", None),
        ];
        let surveys = [survey(&["i-joined"], open)];
        let answers = group_of(&[("i-joined", 900), ("i-late", 900)]);
        let looks = [Unregistered {
            cluster: CLUSTER,
            instances: decide(&surveys[0], &answers, NOW, WITHIN),
        }];
        let looked = seen(&surveys, &looks);
        let told: Vec<(&str, bool)> = looked
            .iter()
            .map(|s| (s.key.instance.as_str(), matches!(s.look, Look::Over { .. })))
            .collect();
        assert_eq!(told, [("i-joined", true), ("i-late", false)]);

        let mut tally = Tally::default();
        gauges(&looks, &mut tally);
        assert_eq!(tally.get(Some("prod"), Metric::UnregisteredInstances), 1);
        let undecided = [Unregistered {
            cluster: CLUSTER,
            instances: None,
        }];
        assert!(
            seen(&surveys, &undecided).is_empty(),
            "an undecided look closes nothing"
        );
    }
}
