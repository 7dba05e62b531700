//! ECS, one module per area: clusters, container instances, tasks, capacity providers (the
//! [`EcsInventory`]) and Managed Daemons ([`EcsDaemons`], on a client of its own).

use aws_sdk_ecs::Client;

use super::shared::Turns;

mod capacity_providers;
mod clusters;
mod container_instances;
mod daemons;
mod tasks;

pub use daemons::EcsDaemons;

/// `ListTasks` and `ListDaemons` page size: each page is one call.
const PAGE_SIZE: i32 = 100;

pub struct EcsInventory {
    client: Client,
    turns: Turns,
}

impl EcsInventory {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            turns: Turns::new(),
        }
    }
}

/// Tags as (key, value) pairs.
fn tags(tags: &[aws_sdk_ecs::types::Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
