//! The `monitor` Lambda: wires configuration and clients, then serves SQS batches.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use ecs_watchdog::pipeline::Hub;
use ecs_watchdog::{Config, SqsBatch, aws};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad configuration stops the function here, at init, naming the variable.
    let mut config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = aws::load_sdk_config().await;
    // PagerDuty's routing key, read once from Systems Manager; unreadable stops init too.
    aws::load_routing_key(&mut config.pagerduty, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let monitor = aws::hub(config, &sdk);
    let monitor = &monitor;
    run(service_fn(move |event: LambdaEvent<SqsBatch>| async move {
        Ok::<_, Error>(handle(monitor, event.payload).await)
    }))
    .await
}

/// One SQS batch: each record on its own, failures reported per record.
async fn handle(monitor: &Hub, batch: SqsBatch) -> SqsBatchResponse {
    let messages = batch.records;
    let report = monitor.process(&messages).await;
    tracing::info!(
        messages = messages.len(),
        failures = report.failures.len(),
        alerts = report.alerts.len(),
        "batch done"
    );
    let mut response = SqsBatchResponse::default();
    for id in report.failures {
        response.add_failure(id);
    }
    response
}
