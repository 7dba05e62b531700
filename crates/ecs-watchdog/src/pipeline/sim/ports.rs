//! The ports over the simulated fleet: ECS (instances, their health and the daemon's tasks),
//! Managed Daemons, SNS and the ledger, each call through the run's [`Door`].

use crate::alert::Alert;
use crate::incident::IncidentKey;
use crate::ports::{Daemons, Inventory, Ledger, Notifier};
use std::collections::HashMap;

use async_trait::async_trait;
use futures_util::FutureExt;

use super::super::fakes::{FakeLedger, arn};
use super::world::{Door, Gate, Publish, Sent, Turn};
use crate::alert::AlertKind;
use crate::incident::{Group, GroupKey, Incident, Notice, State};
use crate::inventory::cluster_name;
use crate::inventory::{
    CapacityProviderType, ClusterInfo, ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, Ec2State,
    Ec2States, HostStates, InstanceHealth, InstanceStatus, PingStatus, Task, TaskFilter, TaskStatus,
};
use crate::ports::{Answer, AwsError, Batch, ClusterRecord, Keys, Settle, Stored, Written, one_by_one};

/// How many times the DynamoDB adapter sends a cancelled transaction again.
const RETRIES: usize = 4;

pub struct SimInventory {
    pub door: Door,
    pub clusters: Vec<String>,
    pub instances: usize,
}

/// The one Managed Daemon of every cluster.
pub const DAEMON: &str = "log-router";

pub fn daemon_arn(cluster: &str) -> String {
    format!(
        "arn:aws:ecs:eu-west-1:123456789012:daemon/{}/{DAEMON}",
        cluster_name(cluster)
    )
}

impl SimInventory {
    /// The instance as ECS describes it at `now`: its agent and health as the timeline says.
    fn instance(gate: &Gate, arn: &str, now: u64) -> ContainerInstance {
        let impaired = gate.troubled(AlertKind::InstanceImpaired, arn, now);
        let failing = vec![crate::event::HealthCheck {
            check: "CONTAINER_RUNTIME".to_owned(),
            status: "IMPAIRED".to_owned(),
            reason: None,
        }];
        ContainerInstance {
            arn: arn.to_owned(),
            status: InstanceStatus::Active,
            agent_connected: !gate.troubled(AlertKind::AgentDisconnected, arn, now),
            version: 2,
            ec2_instance_id: Some(format!("i-{}", crate::inventory::instance_key(arn))),
            running_tasks_count: 1,
            agent_version: None,
            availability_zone: None,
            capacity_provider_name: None,
            health: Some(match impaired {
                true => InstanceHealth {
                    overall: "IMPAIRED".to_owned(),
                    failing,
                },
                false => InstanceHealth {
                    overall: "OK".to_owned(),
                    failing: Vec::new(),
                },
            }),
            tags: Vec::new(),
        }
    }
}

#[async_trait]
impl Inventory for SimInventory {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        self.door.pass("ecs:ListClusters").await?;
        Ok(self.clusters.clone())
    }
    async fn describe_clusters(&self, _: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        Ok(Vec::new())
    }
    async fn describe_container_instances(&self, _: &str, arns: &[String]) -> Result<ClusterInstances, AwsError> {
        self.door.pass("ecs:DescribeContainerInstances").await?;
        let gate = self.door.gate.lock().unwrap();
        let now = gate.now();
        // A deregistered instance is left out of the answer (a failure, reason MISSING).
        Ok(ClusterInstances::Found(
            arns.iter()
                .filter(|a| !gate.gone(a, now))
                .map(|a| {
                    (
                        crate::inventory::instance_key(a).to_owned(),
                        Self::instance(&gate, a, now),
                    )
                })
                .collect(),
        ))
    }
    async fn describe_ec2_instances(&self, ids: &[String]) -> Result<Ec2States, AwsError> {
        self.door.pass("ec2:DescribeInstances").await?;
        Ok(ids.iter().map(|id| (id.clone(), Ec2State::Running)).collect())
    }
    async fn describe_managed_nodes(&self, ids: &[String]) -> Result<HostStates, AwsError> {
        Ok(ids.iter().map(|id| (id.clone(), PingStatus::Online)).collect())
    }
    async fn list_container_instances(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        self.door.pass("ecs:ListContainerInstances").await?;
        let gate = self.door.gate.lock().unwrap();
        let now = gate.now();
        Ok((1..=self.instances)
            .map(|n| arn(cluster, n))
            .filter(|a| !gate.gone(a, now))
            .collect())
    }
    /// The daemon's tasks: one on every instance (or the one asked about) but those whose task
    /// is gone now.
    async fn list_tasks(&self, cluster: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        self.door.pass("ecs:ListTasks").await?;
        let gate = self.door.gate.lock().unwrap();
        let now = gate.now();
        Ok((1..=self.instances)
            .map(|n| arn(cluster, n))
            .filter(|a| !matches!(filter, TaskFilter::ContainerInstance(asked) if asked != a))
            .filter(|a| !gate.gone(a, now) && !gate.troubled(AlertKind::DaemonLost, a, now))
            .map(|a| format!("{a}/task"))
            .collect())
    }
    async fn describe_tasks(&self, _: &str, arns: &[String]) -> Result<Vec<Task>, AwsError> {
        self.door.pass("ecs:DescribeTasks").await?;
        Ok(arns
            .iter()
            .map(|a| Task {
                arn: a.clone(),
                group: Some(format!("daemon:{DAEMON}")),
                last_status: TaskStatus::Running,
                container_instance_arn: a.strip_suffix("/task").map(str::to_owned),
            })
            .collect())
    }
    async fn describe_capacity_providers(
        &self,
        _: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError> {
        Ok(HashMap::new())
    }
}

/// One Managed Daemon per cluster, on every instance, not critical, never deploying.
pub struct SimDaemons(pub Door);

#[async_trait]
impl Daemons for SimDaemons {
    async fn list_daemons(&self, cluster: &str) -> Result<Vec<Daemon>, AwsError> {
        self.0.pass("ecs:ListDaemons").await?;
        Ok(vec![Daemon {
            arn: daemon_arn(cluster),
            name: DAEMON.to_owned(),
        }])
    }
    async fn describe_daemon(&self, _: &str) -> Result<DaemonPlacement, AwsError> {
        self.0.pass("ecs:DescribeDaemon").await?;
        Ok(DaemonPlacement {
            capacity_providers: Vec::new(),
            critical: Some(false),
        })
    }
    async fn deployment_in_progress(&self, _: &str) -> Result<bool, AwsError> {
        self.0.pass("ecs:ListDaemonDeployments").await?;
        Ok(false)
    }
}

pub struct SimNotifier(pub Door);

#[async_trait]
impl Notifier for SimNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        self.0.pass("sns:Publish").await?;
        let what = {
            let mut gate = self.0.gate.lock().unwrap();
            let what = gate.publish();
            if what != Publish::Refuse {
                let at = gate.now();
                gate.topic.push(Sent {
                    at,
                    alert: alert.clone(),
                    run: self.0.run,
                    unheard: what != Publish::Accept,
                });
            }
            if what == Publish::CrashAfterAccept {
                gate.crashed[self.0.run] = true;
            }
            what
        };
        match what {
            Publish::Accept => Ok(()),
            Publish::Refuse => Err(AwsError::new("sns:Publish", "injected: refused")),
            Publish::TimeoutAfterAccept => Err(AwsError::new("sns:Publish", "injected: timed out")),
            Publish::CrashAfterAccept => std::future::pending().await,
        }
    }
}

/// The fake ledger behind the gate.
pub struct SimLedger {
    pub door: Door,
    pub inner: &'static FakeLedger,
    /// Reads and writes several kinds of record at once, as DynamoDB does (`BatchGetItem`,
    /// `TransactWriteItems`); otherwise one call at a time, the ports' documented fallback.
    pub atomic: bool,
}

impl SimLedger {
    /// A write the ledger applied; then the caller may time out or die before it hears so.
    async fn applied<T>(&self, operation: &'static str, answer: T) -> Result<T, AwsError> {
        let turn = self.door.gate.lock().unwrap().after_write(self.door.run);
        match turn {
            Turn::Fail => {
                self.unheard();
                Err(AwsError::new(operation, "injected: timed out after it was applied"))
            }
            Turn::Crash => std::future::pending().await,
            Turn::Go | Turn::Wait => Ok(answer),
        }
    }

    /// `TransactWriteItems` as DynamoDB answers it and the adapter retries it
    /// (aws/dynamodb.rs): one action whose condition fails, or that conflicts with another
    /// transaction in flight, cancels the whole transaction and nothing is written; the adapter
    /// answers the failed conditions `false` and sends the rest again, at most [`RETRIES`]
    /// times, while other runs go on. `holds` reads an action's condition on the table now;
    /// `write` applies actions that all hold (the fake answers at once).
    async fn transact<T: Clone>(
        &self,
        actions: &[T],
        holds: impl Fn(&T) -> bool,
        write: impl Fn(&[T]) -> Option<Result<Vec<bool>, AwsError>>,
    ) -> Result<Vec<bool>, AwsError> {
        const OPERATION: &str = "dynamodb:TransactWriteItems";
        let mut answers: Vec<Option<bool>> = vec![None; actions.len()];
        for _ in 0..=RETRIES {
            let pending: Vec<usize> = (0..actions.len()).filter(|i| answers[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            // A digest's incidents are marked told after SNS took it: a write that fails may
            // leave what this run sent to go out again.
            self.door.pass(OPERATION).await.inspect_err(|_| self.unheard())?;
            let failed: Vec<usize> = pending.iter().copied().filter(|i| !holds(&actions[*i])).collect();
            let conflict = self.door.gate.lock().unwrap().conflict();
            if failed.is_empty() && !conflict {
                let chosen: Vec<T> = pending.iter().map(|i| actions[*i].clone()).collect();
                let written = write(&chosen).expect("the fake ledger answers at once")?;
                for (i, ok) in pending.iter().zip(written) {
                    answers[*i] = Some(ok);
                }
            }
            for i in failed {
                answers[i] = Some(false);
            }
        }
        let answered: Option<Vec<bool>> = answers.into_iter().collect();
        answered.ok_or_else(|| {
            self.unheard();
            AwsError::new(OPERATION, "still cancelled after retries")
        })
    }

    /// [`Ledger::write`] as DynamoDB answers it and the adapter retries it
    /// (aws/dynamodb/transact.rs `transact_all`): every condition holds and all is written, or
    /// one fails and nothing is, the records stored in place of the failed ones coming back
    /// (`ALL_OLD`); a conflict with another transaction in flight or throttling cancels it
    /// whole, and the adapter sends it again, at most [`RETRIES`] times, while other runs go on.
    async fn write_together(&self, batch: &Batch) -> Result<Written, AwsError> {
        const OPERATION: &str = "dynamodb:TransactWriteItems";
        let mut batch = batch.clone();
        if self.door.gate.lock().unwrap().broken {
            batch.incidents = self.marked_before_publish(&batch.incidents);
        }
        self.valid(super::check::refused_write(&batch))?;
        for _ in 0..=RETRIES {
            self.door.pass(OPERATION).await.inspect_err(|_| self.unheard())?;
            let Some(written) = self.transaction(&batch) else {
                continue;
            };
            self.trace(
                batch
                    .incidents
                    .iter()
                    .zip(&written.incidents)
                    .map(|(i, a)| (&i.key, format!("write {a:?}: {i:?}"))),
            );
            return self.applied(OPERATION, written).await;
        }
        self.unheard();
        Err(AwsError::new(OPERATION, "still cancelled after retries"))
    }

    /// A request DynamoDB would refuse is noted (a broken promise) and fails, as it would.
    fn valid(&self, refused: Option<String>) -> Result<(), AwsError> {
        let Some(why) = refused else {
            return Ok(());
        };
        self.door.gate.lock().unwrap().refused.get_or_insert(why.clone());
        Err(AwsError::new("dynamodb", why))
    }

    /// One attempt: none when a conflict cancelled it whole; the table's answer otherwise.
    fn transaction(&self, batch: &Batch) -> Option<Written> {
        let mut gate = self.door.gate.lock().unwrap();
        if gate.conflict() {
            gate.together.conflicted += 1;
            return None;
        }
        let written = self.inner.write_all(batch);
        match written
            .incidents
            .iter()
            .chain(&written.groups)
            .any(|a| *a == Answer::Moved)
        {
            true => gate.together.moved += 1,
            false => gate.together.written += 1,
        }
        Some(written)
    }

    /// With `SIM_TRACE=<instance id>` (`0005`): the writes to that instance's incidents.
    fn trace<'a>(&self, writes: impl Iterator<Item = (&'a IncidentKey, String)>) {
        let Ok(traced) = std::env::var("SIM_TRACE") else {
            return;
        };
        let (now, run) = (self.door.gate.lock().unwrap().now(), self.door.run);
        for (_, write) in writes.filter(|(k, _)| k.instance == traced) {
            eprintln!("  {now} run {run} {write}");
        }
    }

    /// The mutant's writes: an alert's lease written as the alert sent, as an executor that
    /// marks before it publishes would write it.
    fn marked_before_publish(&self, incidents: &[Incident]) -> Vec<Incident> {
        let now = self.door.gate.lock().unwrap().now();
        incidents
            .iter()
            .cloned()
            .map(|mut i| {
                if i.state == State::Sending && i.lease.as_ref().is_some_and(|(_, n)| *n == Notice::Alert) {
                    i.state = State::Notified;
                    i.lease = None;
                    i.notified_at = now;
                    i.held = false;
                }
                i
            })
            .collect()
    }

    /// Reads an index: the table now, or as it was a little while ago.
    fn index<T>(&self, read: impl Fn(&FakeLedger) -> T) -> T {
        let mut gate = self.door.gate.lock().unwrap();
        match gate.lagging(self.inner) {
            true => read(gate.index.as_ref().map_or(self.inner, |(_, lagging)| lagging)),
            false => read(self.inner),
        }
    }

    /// A write after a publish failed: SNS accepted, the ledger did not record it, so what
    /// this run sent may go out again.
    fn unheard(&self) {
        let mut gate = self.door.gate.lock().unwrap();
        for sent in gate.topic.iter_mut().filter(|s| s.run == self.door.run) {
            sent.unheard = true;
        }
    }
}

#[async_trait]
impl Ledger for SimLedger {
    /// One strongly consistent `BatchGetItem` of every kind of key (the counts are the fake's
    /// open incidents).
    async fn read(&self, keys: &Keys) -> Result<Stored, AwsError> {
        if !self.atomic {
            return one_by_one::read(self, keys).await;
        }
        // A run that could not read a group record may page ungrouped (the gate notes it).
        let operation = match keys.groups.is_empty() {
            true => "dynamodb:BatchGetItem",
            false => "dynamodb:groups",
        };
        self.valid(super::check::refused_read(keys))?;
        self.door.pass(operation).await?;
        (&self.inner).read(keys).await
    }
    async fn write(&self, batch: &Batch) -> Result<Written, AwsError> {
        match self.atomic {
            true => self.write_together(batch).await,
            false => one_by_one::write(self, batch).await,
        }
    }
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        self.door.pass("dynamodb:BatchGetItem").await?;
        (&self.inner).get(keys).await
    }
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        let broken = self.door.gate.lock().unwrap().broken;
        let incidents = match broken {
            true => self.marked_before_publish(incidents),
            false => incidents.to_vec(),
        };
        let holds = |i: &Incident| {
            let items = self.inner.incidents.lock().unwrap();
            items.get(&i.key.id()).map_or(0, |stored| stored.version) + 1 == i.version
        };
        let write = |chosen: &[Incident]| (&self.inner).put(chosen).now_or_never();
        let answer = self.transact(&incidents, holds, write).await?;
        self.trace(
            incidents
                .iter()
                .zip(&answer)
                .map(|(i, ok)| (&i.key, format!("put {ok}: {i:?}"))),
        );
        self.applied("dynamodb:TransactWriteItems", answer).await
    }
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError> {
        let holds = |s: &Settle| {
            let items = self.inner.incidents.lock().unwrap();
            let lease = items.get(&s.key.id()).and_then(|i| i.lease.as_ref());
            lease.is_some_and(|(l, _)| l.token == s.token)
        };
        let write = |chosen: &[Settle]| (&self.inner).settle(chosen).now_or_never();
        let answer = self.transact(settles, holds, write).await?;
        self.trace(
            settles
                .iter()
                .zip(&answer)
                .map(|(s, ok)| (&s.key, format!("settle {ok}: {s:?}"))),
        );
        self.applied("dynamodb:TransactWriteItems", answer).await
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        self.door.pass("dynamodb:Query").await?;
        Ok(self.index(|table| table.open_in(cluster)))
    }
    async fn count_open(&self, cluster: &str, delta: i64) -> Result<i64, AwsError> {
        self.door.pass("dynamodb:UpdateItem").await?;
        (&self.inner).count_open(cluster, delta).await
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        self.door.pass("dynamodb:groups").await?;
        (&self.inner).groups(keys).await
    }
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError> {
        self.door.pass("dynamodb:PutItem").await?;
        let answer = (&self.inner).put_group(group).await?;
        self.applied("dynamodb:PutItem", answer).await
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        self.door.pass("dynamodb:Query").await?;
        Ok(self.index(|table| table.held_by(key)))
    }
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        self.door.pass("dynamodb:Query").await?;
        Ok(self.index(|table| table.owed_by(now)))
    }
    /// The sweep's cluster records, which the monitors then read in place of `DescribeClusters`.
    async fn note_clusters(&self, records: &[ClusterRecord]) -> Result<(), AwsError> {
        self.door.pass("dynamodb:BatchWriteItem").await?;
        (&self.inner).note_clusters(records).await
    }
}
