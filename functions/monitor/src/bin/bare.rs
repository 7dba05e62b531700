//! The baseline for `make bench`: a bare `lambda_runtime` SQS function built with the same
//! profile and dependencies as `monitor`, doing nothing. Not deployed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    run(service_fn(|_: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(SqsBatchResponse::default())
    }))
    .await
}
