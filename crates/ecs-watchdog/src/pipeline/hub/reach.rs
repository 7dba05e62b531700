//! How the hub reaches a place other than its own, and what checks each place it met.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::config::{Config, Place};
use crate::metrics::{self, MetricDatum};
use crate::pipeline::run::Adapters;
use crate::ports::{AwsError, MetricsSink};

/// How the hub reaches a place other than its own.
#[async_trait]
pub trait Reach: Send + Sync {
    /// Makes sure the place's account can be reached: assumes its role when no credentials are
    /// held or they are about to expire; nothing for the hub's own account.
    async fn ready(&self, place: &Place) -> Result<(), AwsError>;
    /// Adapters whose look-ups and remediation act in `place`, the rest the hub's. Built once
    /// per place and Lambda instance.
    fn adapters(&self, place: &Place) -> Adapters;
}

/// The places met so far, each with what checks it, kept across warm invocations.
pub struct Places<T> {
    pub config: Config,
    pub reach: Box<dyn Reach>,
    built: Mutex<HashMap<Place, Arc<T>>>,
}

impl<T> Places<T> {
    pub fn new(config: Config, reach: Box<dyn Reach>) -> Self {
        Self {
            config,
            reach,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// What checks `place`, built on first need; the place's data carry its account and region.
    pub fn get(&self, place: &Place, build: impl FnOnce(Config, Place, Adapters) -> T) -> Arc<T> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        built
            .entry(place.clone())
            .or_insert_with(|| {
                let mut io = self.reach.adapters(place);
                io.metrics = Box::new(Placed {
                    inner: io.metrics,
                    place: place.clone(),
                });
                Arc::new(build(self.config.clone(), place.clone(), io))
            })
            .clone()
    }
}

/// A member place's metrics sink: its data carry `Account` and `Region` ([`metrics::placed`]).
struct Placed {
    inner: Box<dyn MetricsSink>,
    place: Place,
}

#[async_trait]
impl MetricsSink for Placed {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        let placed = metrics::placed(data, &self.place.account, &self.place.region);
        self.inner.publish(&placed).await
    }
}
