use super::*;

#[test]
fn when_counts_are_tallied_then_each_cluster_and_the_aggregate_have_them() {
    let mut tally = Tally::default();
    tally.count(Some("prod"), Metric::AgentDisconnected);
    tally.count(Some("prod"), Metric::Recovered);
    tally.count(Some("dev"), Metric::Recovered);
    tally.count(None, Metric::EventsRejected);
    assert_eq!(tally.get(Some("prod"), Metric::AgentDisconnected), 1);
    assert_eq!(tally.get(Some("dev"), Metric::AgentDisconnected), 0);
    assert_eq!(tally.get(None, Metric::Recovered), 2);
    assert_eq!(tally.get(None, Metric::EventsRejected), 1);

    let data = tally.data();
    assert!(data.contains(&MetricDatum {
        name: "Recovered",
        dimensions: vec![("ClusterName", "dev".into())],
        value: 1.0
    }));
    assert!(data.contains(&MetricDatum {
        name: "Recovered",
        dimensions: vec![],
        value: 2.0
    }));
    assert_eq!(
        data.len(),
        3 + 3,
        "three per-cluster points, three aggregate points, no zeros"
    );
}

#[test]
fn when_daemons_are_lost_then_they_are_counted_per_daemon_too() {
    let mut tally = Tally::default();
    tally.count_daemon_lost("prod", "log-router");
    tally.count_daemon_lost("prod", "log-router");
    tally.count_daemon_lost("prod", "security-agent");
    assert_eq!(tally.get(Some("prod"), Metric::DaemonLost), 3);
    assert_eq!(tally.daemon_lost("prod", "log-router"), 2);
    let data = tally.data();
    assert!(data.contains(&MetricDatum {
        name: "DaemonLost",
        dimensions: vec![("ClusterName", "prod".into()), ("DaemonName", "log-router".into())],
        value: 2.0
    }));
    let lines = emf_lines("ECSWatchdog", 0, &data);
    let documents: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let security = documents.iter().find(|d| d["DaemonName"] == "security-agent").unwrap();
    assert_eq!(
        security["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["ClusterName", "DaemonName"]])
    );
    assert_eq!(security["DaemonLost"], json!(1.0));
}

#[test]
fn when_rendered_as_emf_then_each_dimension_set_is_one_valid_document() {
    let mut tally = Tally::default();
    tally.count(Some("prod"), Metric::AgentDisconnected);
    tally.count(Some("prod"), Metric::AgentDisconnected);
    tally.count(None, Metric::EventsRejected);
    let lines = emf_lines("ECSWatchdog", 1_700_000_000_000, &tally.data());
    assert_eq!(lines.len(), 2);
    let documents: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let aggregate = documents.iter().find(|d| d.get("ClusterName").is_none()).unwrap();
    assert_eq!(aggregate["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    assert_eq!(aggregate["AgentDisconnected"], json!(2.0));
    assert_eq!(aggregate["EventsRejected"], json!(1.0));
    let prod = documents.iter().find(|d| d["ClusterName"] == "prod").unwrap();
    assert_eq!(prod["_aws"]["Timestamp"], json!(1_700_000_000_000u64));
    assert_eq!(prod["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ECSWatchdog");
    assert_eq!(
        prod["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["ClusterName"]])
    );
    assert_eq!(
        prod["_aws"]["CloudWatchMetrics"][0]["Metrics"],
        json!([{"Name": "AgentDisconnected", "Unit": "Count"}])
    );
    assert_eq!(prod["AgentDisconnected"], json!(2.0));
}

#[test]
fn when_cluster_gauges_are_off_then_only_per_cluster_gauges_are_left_out() {
    let mut tally = Tally::default();
    tally.count(Some("prod"), Metric::AgentDisconnected);
    tally.gauge("prod", Metric::DisconnectedAgents, 1);
    tally.gauge("prod", Metric::OpenIncidents, 0);
    tally.daemon_gauge("prod", "log-router", Metric::InstancesWithoutDaemon, 2);
    tally.gauge_total(Metric::DisconnectedAgents, 1);
    tally.count_impaired("ecs:ListDaemons");
    let kept = without_cluster_gauges(&placed(&tally.data(), "111111111111", "eu-west-1"));
    let gauge_per_cluster = |d: &&MetricDatum| {
        GAUGES.iter().any(|g| g.name() == d.name) && d.dimensions.iter().any(|(k, _)| *k == CLUSTER_DIMENSION)
    };
    assert_eq!(kept.iter().filter(gauge_per_cluster).count(), 0);
    let names: Vec<(&str, usize)> = kept.iter().map(|d| (d.name, d.dimensions.len())).collect();
    assert!(
        names.contains(&("AgentDisconnected", 3)),
        "a count per cluster stays: {names:?}"
    );
    assert!(
        names.contains(&("DisconnectedAgents", 2)),
        "the place's aggregate gauge stays: {names:?}"
    );
    assert!(names.contains(&("MonitorImpaired", 3)), "{names:?}");
    assert_eq!(kept.len(), tally.data().len() - 3);
}

#[test]
fn when_data_is_a_members_then_it_is_named_by_account_and_region_except_summed_counters() {
    let datum = |name: &'static str, dimensions: Vec<(&'static str, String)>| MetricDatum {
        name,
        dimensions,
        value: 1.0,
    };
    let data = [
        datum("AgentDisconnected", vec![(CLUSTER_DIMENSION, "prod".into())]),
        datum("AgentDisconnected", vec![]),
        datum("DisconnectedAgents", vec![]),
        datum("MonitorImpaired", vec![(OPERATION_DIMENSION, "ecs:ListDaemons".into())]),
    ];
    let placed = placed(&data, "111111111111", "eu-west-1");
    let names = |d: &MetricDatum| d.dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>();
    assert_eq!(names(&placed[0]), ["ClusterName", "Account", "Region"]);
    assert_eq!(placed[0].dimensions[1].1, "111111111111");
    assert!(
        placed[1].dimensions.is_empty(),
        "the alarms sum counters over every account"
    );
    assert_eq!(names(&placed[2]), ["Account", "Region"], "a gauge is one place's");
    assert_eq!(names(&placed[3]), ["Operation", "Account", "Region"]);
}
