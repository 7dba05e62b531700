//! One script of ledger calls and what each must answer, run over the in-memory fake (the one
//! the simulation and the unit tests use, `fakes.rs`) and over the DynamoDB adapter on the
//! emulator (`tests/incidents.rs`): where the two disagree, the simulation proves nothing about
//! the real ledger. Its including module brings the ledger's types into scope.

use super::{
    AlertKind, Answer, Batch, Group, GroupKey, Incident, IncidentKey, InstanceFinding, Keys, Lease, Ledger, Notice,
    Settle, State, Stored,
};

const NOW: u64 = 1_800_000_000;
const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/contract";

fn key(n: usize) -> IncidentKey {
    let arn = format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/contract/{n:04}");
    IncidentKey::new(CLUSTER, AlertKind::AgentDisconnected, &arn, None)
}

fn due(n: usize) -> Incident {
    Incident {
        version: 1,
        ..Incident::new(key(n), State::Due, InstanceFinding::default(), NOW)
    }
}

fn leased(i: &Incident, token: &str, notice: Notice) -> Incident {
    Incident {
        version: i.version + 1,
        state: State::Sending,
        lease: Some((
            Lease {
                token: token.to_owned(),
                until: NOW + 300,
            },
            notice,
        )),
        ..i.clone()
    }
}

fn settle(n: usize, token: &str, state: State, at: u64) -> Settle {
    Settle {
        key: key(n),
        token: token.to_owned(),
        state,
        at,
    }
}

async fn one(ledger: &dyn Ledger, n: usize) -> Incident {
    let found = ledger.get(&[key(n)]).await.expect("BatchGetItem");
    found.into_iter().next().expect("the incident is stored")
}

/// The incidents (by instance number) and groups owed at `at`.
async fn owed(ledger: &dyn Ledger, at: u64) -> (Vec<usize>, Vec<u64>) {
    let (incidents, groups) = ledger.owed(at).await.expect("Query of the outbox index");
    let mut numbers: Vec<usize> = incidents
        .iter()
        .filter(|i| i.key.cluster_arn == CLUSTER)
        .filter_map(|i| i.key.instance.parse().ok())
        .collect();
    numbers.sort();
    let versions = groups
        .iter()
        .filter(|g| g.key.cluster_arn == CLUSTER)
        .map(|g| g.version)
        .collect();
    (numbers, versions)
}

/// The script; panics at the first answer the contract does not allow.
pub async fn script(ledger: &dyn Ledger) {
    // Writes are conditional on the version read: a second first write loses.
    let (a, b, c) = (due(1), due(2), due(3));
    let held = Incident { held: true, ..due(4) };
    let answers = ledger.put(&[a.clone(), b.clone(), c.clone(), held]).await;
    assert_eq!(answers.expect("put"), vec![true; 4]);
    assert_eq!(ledger.put(&[due(1)]).await.expect("put"), vec![false]);
    // Owed: every alert due and not held.
    assert_eq!(owed(ledger, NOW).await, (vec![1, 2, 3], vec![]));

    let second = leased_and_settled(ledger, [a, b, c]).await;
    resolved(ledger, second).await;
    let record = held_for_the_digest(ledger).await;
    // A transaction with one stale record is cancelled whole: the others are written again,
    // the stale one answers false.
    let answers = ledger.put(&[due(1), due(5), due(6)]).await.expect("put");
    assert_eq!(answers, vec![false, true, true]);
    assert_eq!(one(ledger, 6).await.version, 1);

    batches(ledger, &record).await;
}

/// Leases, an end seen meanwhile, and settles by the lease holder; returns incident 2 as
/// settled (owed its resolved notice).
async fn leased_and_settled(ledger: &dyn Ledger, [a, b, c]: [Incident; 3]) -> Incident {
    // Leased: owed again only once the lease is over.
    let leases = [&a, &b, &c].map(|i| leased(i, "t1", Notice::Alert));
    assert_eq!(ledger.put(&leases).await.expect("put"), vec![true; 3]);
    assert_eq!(owed(ledger, NOW + 299).await, (vec![], vec![]));
    assert_eq!(owed(ledger, NOW + 300).await.0, vec![1, 2, 3]);

    // Another run sees 2 over while its alert goes out: the lease stays, the end is kept.
    let seen_over = Incident {
        version: leases[1].version + 1,
        ended_at: NOW + 10,
        resolution: Some("recovered".to_owned()),
        ..leases[1].clone()
    };
    assert_eq!(ledger.put(&[seen_over]).await.expect("put"), vec![true]);

    // Settled by the lease holder only, once; 3's alert refused: given back, due again.
    let settles = [
        settle(1, "t1", State::Notified, NOW + 20),
        settle(2, "t1", State::Notified, NOW + 20),
        settle(3, "t1", State::Due, NOW + 20),
    ];
    assert_eq!(ledger.settle(&settles).await.expect("settle"), vec![true; 3]);
    assert_eq!(ledger.settle(&settles[..1]).await.expect("settle"), vec![false]);
    let (first, second, third) = (one(ledger, 1).await, one(ledger, 2).await, one(ledger, 3).await);
    assert_eq!(
        (first.state, first.version, first.notified_at, first.lease),
        (State::Notified, 3, NOW + 20, None)
    );
    assert_eq!(
        (second.state, second.ended_at, second.settled(NOW + 20)),
        (State::Notified, NOW + 10, State::ResolveDue)
    );
    assert_eq!((third.state, third.lease), (State::Due, None));
    // 1 is told and leaves the outbox; 2 is owed its resolved notice; 3 its alert.
    assert_eq!(owed(ledger, NOW + 20).await.0, vec![2, 3]);

    second
}

/// A resolved notice leased, given back, leased again and settled: the incident is closed.
async fn resolved(ledger: &dyn Ledger, second: Incident) {
    // A resolved notice leased, refused (given back: owed), leased again and sent: closed.
    let resolving = leased(
        &Incident {
            state: State::ResolveDue,
            ..second.clone()
        },
        "t2",
        Notice::Resolved,
    );
    assert_eq!(ledger.put(&[resolving]).await.expect("put"), vec![true]);
    assert_eq!(
        ledger
            .settle(&[settle(2, "t2", State::ResolveDue, NOW + 30)])
            .await
            .expect("settle"),
        vec![true]
    );
    let given_back = one(ledger, 2).await;
    assert_eq!((given_back.state, given_back.ended_at), (State::ResolveDue, NOW + 10));
    assert_eq!(owed(ledger, NOW + 30).await.0, vec![2, 3]);
    assert_eq!(
        ledger
            .put(&[leased(&given_back, "t3", Notice::Resolved)])
            .await
            .expect("put"),
        vec![true]
    );
    assert_eq!(
        ledger
            .settle(&[settle(2, "t3", State::Closed, NOW + 40)])
            .await
            .expect("settle"),
        vec![true]
    );
    let closed = one(ledger, 2).await;
    assert_eq!(
        (closed.state, closed.closed_at, closed.is_open()),
        (State::Closed, NOW + 40, false)
    );
    assert_eq!(owed(ledger, NOW + 400).await.0, vec![3]);
    let mut open: Vec<String> = ledger
        .open_incidents(CLUSTER)
        .await
        .expect("Query")
        .into_iter()
        .map(|k| k.instance)
        .collect();
    open.sort();
    assert_eq!(open, vec!["0001", "0003", "0004"]);
}

/// A held incident waits for its group's digest; returns the group record written.
async fn held_for_the_digest(ledger: &dyn Ledger) -> Group {
    // The held one waits for its group's digest: in the held index, not owed by itself.
    let group = GroupKey::new(CLUSTER, AlertKind::AgentDisconnected);
    let holding: Vec<String> = ledger
        .held(&group)
        .await
        .expect("Query")
        .into_iter()
        .map(|i| i.key.instance)
        .collect();
    assert_eq!(holding, vec!["0004"]);
    let record = Group {
        version: 1,
        window_end: NOW + 300,
        digest_due: NOW + 300,
        last_held: NOW,
        ..Group::none(group.clone())
    };
    assert!(ledger.put_group(&record).await.expect("put_group"));
    assert!(
        !ledger.put_group(&record).await.expect("put_group"),
        "a second first write loses"
    );
    assert_eq!(
        ledger.groups(std::slice::from_ref(&group)).await.expect("groups"),
        vec![record.clone()]
    );
    assert_eq!(owed(ledger, NOW + 299).await.1, Vec::<u64>::new());
    assert_eq!(owed(ledger, NOW + 300).await.1, vec![1]);
    // Once told, a held incident leaves the held index.
    let told = Incident {
        version: 2,
        held: false,
        state: State::Notified,
        notified_at: NOW + 300,
        ..one(ledger, 4).await
    };
    assert_eq!(ledger.put(&[told]).await.expect("put"), vec![true]);
    assert!(ledger.held(&group).await.expect("Query").is_empty());

    record
}

/// What is stored of incidents 6 to 9, the group and the cluster's count, in one read.
async fn read_back(ledger: &dyn Ledger, group: &GroupKey) -> (Vec<usize>, Vec<Group>, i64) {
    let keys = Keys {
        incidents: (6..=9).map(key).collect(),
        groups: vec![group.clone()],
        counts: vec![CLUSTER.to_owned()],
        ..Keys::default()
    };
    let stored = ledger.read(&keys).await.expect("BatchGetItem");
    let mut numbers: Vec<usize> = stored
        .incidents
        .iter()
        .filter_map(|i| i.key.instance.parse().ok())
        .collect();
    numbers.sort();
    let count = count(&stored);
    (numbers, stored.groups, count)
}

fn count(stored: &Stored) -> i64 {
    let counts = stored.counts.iter().filter(|(c, _)| c == CLUSTER);
    counts.map(|(_, n)| *n).sum()
}

/// Batches: a group record, incidents and the count's move, written all together or not at
/// all; what moved comes back as stored.
async fn batches(ledger: &dyn Ledger, record: &Group) {
    let (stored, groups, before) = read_back(ledger, &record.key).await;
    assert_eq!((stored, groups), (vec![6], vec![record.clone()]));

    // Written together: the group, two new incidents, the count moved by the two opened.
    let next = Group {
        version: 2,
        last_held: NOW + 5,
        ..record.clone()
    };
    let batch = Batch {
        groups: vec![next.clone()],
        incidents: vec![due(7), due(8)],
        opens: vec![1, 1],
    };
    let written = ledger.write(&batch).await.expect("TransactWriteItems");
    assert_eq!(written.groups, vec![Answer::Written]);
    assert_eq!(written.incidents, vec![Answer::Written; 2]);
    assert_eq!(
        read_back(ledger, &record.key).await,
        (vec![6, 7, 8], vec![next.clone()], before + 2)
    );

    not_new(ledger, &next, before).await;
    moved(ledger, &next, before).await;
}

/// A new incident put without reading it first, which was not new: nothing in the batch is
/// written, and the incident stored comes back in the answer.
async fn not_new(ledger: &dyn Ledger, next: &Group, before: i64) {
    let batch = Batch {
        groups: vec![Group {
            version: 3,
            ..next.clone()
        }],
        incidents: vec![due(9), due(7)],
        opens: vec![1, 1],
    };
    let written = ledger.write(&batch).await.expect("TransactWriteItems");
    assert_eq!(written.groups, vec![Answer::Untouched]);
    assert_eq!(written.incidents, vec![Answer::Untouched, Answer::Moved]);
    assert_eq!(written.found.incidents, vec![one(ledger, 7).await]);
    assert!(written.found.groups.is_empty());
    assert_eq!(
        read_back(ledger, &next.key).await,
        (vec![6, 7, 8], vec![next.clone()], before + 2)
    );
}

/// A group another run moved comes back as stored; an incident no longer stored, with none.
async fn moved(ledger: &dyn Ledger, next: &Group, before: i64) {
    let batch = Batch {
        groups: vec![next.clone()],
        incidents: vec![Incident { version: 3, ..due(9) }],
        opens: vec![0],
    };
    let written = ledger.write(&batch).await.expect("TransactWriteItems");
    assert_eq!(
        (written.groups, written.incidents),
        (vec![Answer::Moved], vec![Answer::Moved])
    );
    assert_eq!(
        (written.found.groups, written.found.incidents),
        (vec![next.clone()], vec![])
    );
    assert_eq!(
        read_back(ledger, &next.key).await,
        (vec![6, 7, 8], vec![next.clone()], before + 2)
    );
}
