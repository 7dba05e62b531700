//! The `sweep` Lambda: wires configuration and clients, then sweeps on each scheduled call.

use ecs_watchdog::pipeline::HubSweep;
use ecs_watchdog::{Config, aws};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad configuration stops the function here, at init, naming the variable; the sweep
    // cannot keep first sights or alert once without the ledger.
    let mut config = Config::from_env()
        .and_then(|c| c.require_ledger().map(|()| c))
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = aws::load_sdk_config().await;
    // PagerDuty's routing key, read once from Systems Manager; unreadable stops init too.
    aws::load_routing_key(&mut config.pagerduty, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sweep = aws::hub_sweep(config, &sdk);
    let sweep = &sweep;
    // The schedule's payload carries nothing the sweep needs: it looks at the current state.
    run(service_fn(move |_: LambdaEvent<Value>| async move {
        Ok::<_, Error>(summary(sweep).await)
    }))
    .await
}

/// What the run saw, as the invocation's result (shown by `aws lambda invoke` and in tests).
async fn summary(sweep: &HubSweep) -> Value {
    let run = sweep.run().await;
    let mut operations: Vec<&str> = run.faults.iter().map(|f| f.operation).collect();
    operations.sort_unstable();
    operations.dedup();
    json!({
        "clusters": run.clusters,
        "unseen": run.unseen,
        "undecided": run.undecided,
        "impaired": operations,
        "alerts": run.report.alerts.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>(),
        "replaced": run.replaced,
    })
}
