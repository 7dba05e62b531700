//! The sweep of a hub: its own place and every place the ledger knows.

use futures_util::future::{join, join_all};

use super::reach::{Places, Reach};
use crate::config::Place;
use crate::incident::IncidentKey;
use crate::metrics::Metric;
use crate::pipeline::sweep::{Sweep, SweepReport};
use crate::pipeline::{places, replace};
use std::sync::Arc;

/// The sweep of a hub: its own place and every place the ledger knows (DESIGN §8 "Places").
pub struct HubSweep {
    home: Sweep,
    members: Places<Sweep>,
}

impl HubSweep {
    pub fn new(home: Sweep, reach: Box<dyn Reach>) -> Self {
        Self {
            members: Places::new(home.monitor.config.clone(), reach),
            home,
        }
    }

    /// Sweeps every place at once; the report adds them up. The heartbeat goes out only when
    /// every place's clusters could be listed.
    pub async fn run(&self) -> SweepReport {
        let home = &self.home.monitor.place;
        self.home.fresh();
        let (open, seen) = join(self.home.open_everywhere(), self.home.places_seen()).await;
        // A ledger that could not be read may hide places with open incidents or recent events:
        // then this run did not see the whole watch, and sends no heartbeat.
        let known = self.home.monitor.io.ledger.is_none() || (open.is_some() && seen.is_some());
        let (open, seen) = (open.unwrap_or_default(), seen.unwrap_or_default());
        let places = places::to_sweep(home, &self.members.config.accounts.swept, &open, &seen);
        let (mut report, members) = join(
            self.home.pass(Some(places::of_place(&open, home))),
            join_all(places.iter().map(|p| self.member(p, places::of_place(&open, p)))),
        )
        .await;
        let complete = known && report.complete && members.iter().all(|(_, m)| m.complete);
        if complete {
            report.report.tally.count(None, Metric::SweepCompleted);
        }
        self.home.publish(&report).await;
        for (sweep, member) in members {
            sweep.publish(&member).await;
            report.clusters += member.clusters;
            report.unseen.extend(member.unseen);
            report.undecided += member.undecided;
            report.faults.extend(member.faults);
            report.replaced.extend(member.replaced);
            report.report.alerts.extend(member.report.alerts);
            report.report.tally.merge(&member.report.tally);
        }
        report.complete = complete;
        report
    }

    async fn member(&self, place: &Place, open: Vec<IncidentKey>) -> (Arc<Sweep>, SweepReport) {
        let dry_run = self.members.config.remediation.dry_run;
        let sweep = self.members.get(place, |config, place, mut io| {
            replace::keep_for_sweep(&mut io.steps, dry_run);
            Sweep::at(config, place, false, io)
        });
        sweep.fresh();
        let report = match self.members.reach.ready(place).await {
            Ok(()) => sweep.pass(Some(open)).await,
            Err(e) => sweep.unreachable(e).await,
        };
        (sweep, report)
    }
}
