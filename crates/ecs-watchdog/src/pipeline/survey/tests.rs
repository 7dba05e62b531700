use super::*;
use crate::alert::AlertKind;

const CLUSTER: &str = "arn:aws:ecs:eu-west-1:1:cluster/prod";

fn instance(id: &str, status: InstanceStatus, connected: bool, capacity_provider: &str) -> ContainerInstance {
    ContainerInstance {
        arn: format!("arn:aws:ecs:eu-west-1:1:container-instance/prod/{id}"),
        status,
        agent_connected: connected,
        version: 1,
        ec2_instance_id: Some(format!("i-{id}")),
        running_tasks_count: 1,
        agent_version: None,
        availability_zone: None,
        capacity_provider_name: Some(capacity_provider.to_owned()),
        health: None,
        tags: Vec::new(),
    }
}

/// a runs log-router; b should and does not; c's agent is disconnected; d belongs to another
/// capacity provider; e is deregistering.
fn survey() -> Survey {
    let instances = [
        instance("a", InstanceStatus::Active, true, "mi"),
        instance("b", InstanceStatus::Active, true, "mi"),
        instance("c", InstanceStatus::Active, false, "mi"),
        instance("d", InstanceStatus::Draining, true, "asg"),
        instance("e", InstanceStatus::Deregistering, false, "mi"),
    ];
    let daemon = DaemonSurvey {
        daemon: Daemon {
            arn: "arn:aws:ecs:eu-west-1:1:daemon/prod/log-router".into(),
            name: "log-router".into(),
        },
        placement: Some(DaemonPlacement {
            capacity_providers: vec!["mi".into()],
            critical: Some(false),
        }),
    };
    let tasks = DaemonTasks {
        running_on: [("log-router".to_owned(), HashSet::from(["a".to_owned()]))].into(),
        failed: HashSet::new(),
    };
    let found = instances
        .into_iter()
        .map(|i| (instance_key(&i.arn).to_owned(), i))
        .collect();
    Survey {
        snapshot: Snapshot::new(CLUSTER, (ClusterInstances::Found(found), HashSet::new())),
        daemons: Some(vec![daemon]),
        tasks,
        open: Some(vec![IncidentKey::new(
            CLUSTER,
            AlertKind::DaemonLost,
            "x/a",
            Some("log-router"),
        )]),
    }
}

fn looks(survey: &Survey) -> Vec<Checked> {
    survey.keys().into_iter().map(Checked::look).collect()
}

#[test]
fn when_a_cluster_is_surveyed_then_each_problem_and_each_open_incident_is_a_look() {
    let survey = survey();
    let mut keys: Vec<String> = survey.keys().iter().map(IncidentKey::id).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("agent-disconnected|{CLUSTER}|c|-"),
            format!("daemon-lost|{CLUSTER}|a|log-router"),
            format!("daemon-lost|{CLUSTER}|b|log-router"),
        ]
    );
    assert_eq!(
        survey.counts(),
        Counts {
            monitored_instances: 4,
            disconnected_agents: 1,
            without_daemon: vec![("log-router".into(), 1)],
        }
    );
    let checked = looks(&survey);
    let checks = survey.daemon_checks(&survey.lost(&checked));
    assert!(checked.iter().all(|c| c.event.is_none()), "a look carries no event");
    assert_eq!(
        survey.lost(&checked).iter().map(|d| d.arn).collect::<Vec<_>>(),
        [Some("arn:aws:ecs:eu-west-1:1:daemon/prod/log-router"); 2],
        "each lost daemon with its ARN as listed: no ListDaemons again"
    );
    assert!(
        checks.live.contains(&("a".to_owned(), "log-router".to_owned())),
        "a runs it: closes"
    );
    assert_eq!(checks.critical.get("log-router"), Some(&Some(false)));
}

#[test]
fn when_the_daemons_could_not_be_listed_then_none_is_judged_missing_or_over() {
    let mut survey = survey();
    survey.daemons = None;
    let keys = survey.keys();
    assert!(keys.iter().all(|k| !(k.daemon.is_some() && k.instance == "b")));
    let checked = looks(&survey);
    let checks = survey.daemon_checks(&survey.lost(&checked));
    assert!(
        checks.failed.contains("log-router"),
        "the open incident stays undecided"
    );
    assert_eq!(survey.counts().without_daemon, Vec::new());
}
