//! Which places the sweep covers, and what it closes there without a cluster to look at
//! (DESIGN §8 "Places"): its own place, `SWEEP_ACCOUNTS` × `SWEEP_REGIONS`, every place with an
//! open incident (a held incident of a due group is open too) and every place an event came
//! from in the last day, so a member that ever sent an event is swept without configuration.
//! Pure functions: the sweep reads the ledger once and decides here.

use std::collections::{BTreeSet, HashMap};

use super::scope::Scope;
use crate::config::Place;
use crate::incident::IncidentKey;

/// How long a place that sent an event stays swept after its last one.
pub const SEEN_FOR_SECONDS: u64 = 24 * 3600;
/// A Lambda instance notes a member place at most this often (one `UpdateItem`): often enough
/// that a place sending events never drops out of [`SEEN_FOR_SECONDS`].
pub const NOTE_EVERY_SECONDS: u64 = 3600;

/// The resolution of an open incident whose cluster no longer exists.
pub const CLUSTER_DELETED: &str = "cluster deleted: nothing left to watch";
/// The resolution of an open incident whose cluster is no longer in the monitored scope.
pub const NOT_MONITORED: &str = "cluster no longer monitored (its tags or CLUSTERS changed)";

/// The places to sweep besides `home`, each once, in a stable order.
pub fn to_sweep(home: &Place, configured: &[Place], open: &[IncidentKey], seen: &[Place]) -> Vec<Place> {
    let of_incidents = open
        .iter()
        .filter(|k| is_cluster(k))
        .filter_map(|k| Place::of_cluster(&k.cluster_arn));
    let places: BTreeSet<Place> = configured
        .iter()
        .cloned()
        .chain(of_incidents)
        .chain(seen.iter().cloned())
        .filter(|p| p != home)
        .collect();
    places.into_iter().collect()
}

/// The open incidents of `place`'s clusters.
pub fn of_place(open: &[IncidentKey], place: &Place) -> Vec<IncidentKey> {
    open.iter()
        .filter(|k| is_cluster(k) && Place::of_cluster(&k.cluster_arn).as_ref() == Some(place))
        .cloned()
        .collect()
}

/// The open incidents whose cluster is gone from a complete listing (deleted) or is listed but
/// out of scope, each with why it is over. A cluster whose scope could not be told keeps its
/// incidents: the next sweep looks again. A deleted cluster may stay listed, INACTIVE, for a
/// while; its instances were deregistered before (DeleteCluster, Amazon ECS API Reference:
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html), so the
/// survey finds none there and closes its incidents as instances gone.
pub fn gone(
    open: &[IncidentKey],
    listed: &[String],
    scopes: &HashMap<String, Scope>,
) -> Vec<(IncidentKey, &'static str)> {
    open.iter()
        .filter(|k| is_cluster(k))
        .filter_map(|k| {
            let how = match scopes.get(&k.cluster_arn) {
                _ if !listed.contains(&k.cluster_arn) => CLUSTER_DELETED,
                Some(Scope::NotMonitored) => NOT_MONITORED,
                _ => return None,
            };
            Some((k.clone(), how))
        })
        .collect()
}

/// Whether the incident is a cluster's (monitor-impaired incidents are filed under a scope).
fn is_cluster(key: &IncidentKey) -> bool {
    crate::kinds::of(key.kind).of_a_cluster()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;

    const HOME: &str = "000000000000";

    fn arn(account: &str, region: &str, cluster: &str) -> String {
        format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}")
    }

    fn key(cluster_arn: &str, kind: AlertKind) -> IncidentKey {
        IncidentKey::new(cluster_arn, kind, "arn:aws:ecs:x:y:container-instance/c/i-1", None)
    }

    #[test]
    fn when_places_are_known_then_each_is_swept_once_and_home_by_its_own_sweep() {
        let home = Place::new(HOME, "eu-west-1");
        let configured = [Place::new("111111111111", "eu-west-1"), home.clone()];
        let open = [
            key(&arn("222222222222", "us-east-1", "prod"), AlertKind::AgentDisconnected),
            key(&arn("222222222222", "us-east-1", "batch"), AlertKind::DaemonLost),
            key(&arn(HOME, "eu-west-1", "prod"), AlertKind::AgentDisconnected),
            key("monitor/333333333333/eu-west-1", AlertKind::MonitorImpaired),
        ];
        let seen = [
            Place::new("111111111111", "eu-west-1"),
            Place::new("444444444444", "eu-west-1"),
        ];

        let places = to_sweep(&home, &configured, &open, &seen);

        assert_eq!(
            places,
            [
                Place::new("111111111111", "eu-west-1"),
                Place::new("222222222222", "us-east-1"),
                Place::new("444444444444", "eu-west-1"),
            ]
        );
        let member = Place::new("222222222222", "us-east-1");
        assert_eq!(of_place(&open, &member), open[..2]);
    }

    #[test]
    fn when_a_cluster_is_deleted_or_untagged_then_its_open_incidents_are_over_and_others_stay() {
        let (deleted, untagged, kept, unknown) = (
            arn(HOME, "eu-west-1", "old"),
            arn(HOME, "eu-west-1", "untagged"),
            arn(HOME, "eu-west-1", "prod"),
            arn(HOME, "eu-west-1", "tags-unreadable"),
        );
        let listed = vec![untagged.clone(), kept.clone(), unknown.clone()];
        let scopes = HashMap::from([
            (untagged.clone(), Scope::NotMonitored),
            (kept.clone(), Scope::Monitored),
            (unknown.clone(), Scope::Unknown),
        ]);
        let open: Vec<IncidentKey> = [&deleted, &untagged, &kept, &unknown]
            .iter()
            .map(|c| key(c, AlertKind::AgentDisconnected))
            .collect();

        let over = gone(&open, &listed, &scopes);

        assert_eq!(
            over,
            [(open[0].clone(), CLUSTER_DELETED), (open[1].clone(), NOT_MONITORED)]
        );
    }
}
