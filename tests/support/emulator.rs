//! moto, started on a free loopback port for one test and stopped with it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::Credentials;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::repo_root;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// A running emulator. Dropping it stops the process (its stdin closes and it is killed).
pub struct Emulator {
    _child: Child,
    pub endpoint: String,
    pub sdk: SdkConfig,
}

/// When a call is interrupted: before the service took it, or after (it acted, the caller never
/// heard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Before,
    After,
}

/// One message SNS published, as the emulator recorded it.
#[derive(Debug, Clone)]
pub struct Published {
    pub topic_arn: String,
    pub subject: String,
    pub message: Value,
    pub attributes: HashMap<String, String>,
}

/// The EC2 ids a finding (an alert's `default` JSON) names, in its order.
pub fn instance_ids(finding: &Value) -> Vec<String> {
    finding["instances"]
        .as_array()
        .expect("a finding lists instances")
        .iter()
        .map(|i| i["ec2InstanceId"].as_str().unwrap().to_owned())
        .collect()
}

/// The port a helper process on loopback prints as `READY <port>` once it listens (moto, the
/// PagerDuty receiver), within `within`.
pub async fn ready_port(child: &mut Child, what: &str, within: Duration) -> u16 {
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("{what}'s stdout is piped"));
    let mut lines = BufReader::new(stdout).lines();
    let port = async {
        while let Some(line) = lines.next_line().await.expect("read the helper's stdout") {
            if let Some(port) = line.strip_prefix("READY ") {
                return port.trim().parse::<u16>().expect("a port");
            }
        }
        panic!("{what} exited before it was ready")
    };
    tokio::time::timeout(within, port)
        .await
        .unwrap_or_else(|_| panic!("{what} not ready within {within:?}"))
}

/// The Python with moto: `WATCHDOG_PYTHON`, else the project's `.venv` (made by `make`).
pub fn python() -> PathBuf {
    venv_python("WATCHDOG_PYTHON", ".venv")
}

/// A virtualenv's Python: the variable's value, else the project's `venv` folder, which `make
/// test` creates before it runs the tests.
pub fn venv_python(variable: &str, venv: &str) -> PathBuf {
    if let Some(python) = std::env::var_os(variable) {
        return python.into();
    }
    let path = repo_root().join(venv).join("bin/python");
    assert!(
        path.exists(),
        "no Python at {} ({variable} is unset): run `make test`, which creates {venv}",
        path.display()
    );
    path
}

impl Emulator {
    pub async fn start() -> Self {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/moto_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto");
        let ready = ready_port(&mut child, "moto", Duration::from_secs(60)).await;
        let endpoint = format!("http://127.0.0.1:{ready}");
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(ecs_watchdog::aws::FirstUseTls::shared())
            .region(Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "testbed"))
            .load()
            .await;
        Self {
            _child: child,
            endpoint,
            sdk,
        }
    }

    /// The variables that point a process at this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).await.expect("connect to moto");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send control request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read control response");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.contains(" 200 "), "{method} {path}: {head}\n{body}");
        serde_json::from_str(body).expect("control answers JSON")
    }

    /// The SDK configuration of another account: credentials from `AssumeRole` of a role there,
    /// which moto answers for the role's account (its backends are per account).
    pub async fn member(&self, account: &str) -> aws_config::SdkConfig {
        let answer = aws_sdk_sts::Client::new(&self.sdk)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/test-bed"))
            .role_session_name("test-bed")
            .send()
            .await
            .expect("AssumeRole");
        let given = answer.credentials().expect("credentials");
        let credentials = Credentials::new(
            given.access_key_id(),
            given.secret_access_key(),
            Some(given.session_token().to_owned()),
            None,
            "test-bed-member",
        );
        self.sdk
            .to_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                credentials,
            ))
            .build()
    }

    /// Makes `AssumeRole` of `role_arn` answer AccessDenied (or answer again).
    pub async fn deny_assume_role(&self, role_arn: &str, denied: bool) {
        let request = json!({"roleArn": role_arn, "denied": denied});
        self.control("POST", "/_watchdog/assume-role", Some(request)).await;
    }

    /// Kills the process `pid` on the next call of `operation` (`sns:Publish`): before the
    /// emulator sees the call, or after it took it and before the caller reads the answer. The
    /// emulator waits until the process is gone before it goes on.
    pub async fn kill_on(&self, operation: &str, pid: u32, moment: Moment) {
        let when = match moment {
            Moment::Before => "before",
            Moment::After => "after",
        };
        let request = json!({"operation": operation, "pid": pid, "when": when});
        self.control("POST", "/_watchdog/kill", Some(request)).await;
    }

    /// Sets the agent's connection and/or the status, as ECS would (the version grows).
    pub async fn set_container_instance(
        &self,
        cluster: &str,
        arn: &str,
        agent_connected: Option<bool>,
        status: Option<&str>,
    ) {
        let mut request = json!({"cluster": cluster, "containerInstanceArn": arn});
        if let Some(connected) = agent_connected {
            request["agentConnected"] = json!(connected);
        }
        if let Some(status) = status {
            request["status"] = json!(status);
        }
        self.control("POST", "/_watchdog/container-instance", Some(request))
            .await;
    }

    /// Moves the EC2 instance's `LaunchTime` back by `seconds`, as if launched that long ago
    /// (moto stamps it with the creation time).
    pub async fn launched_ago(&self, instance_id: &str, seconds: u64) {
        let request = json!({"instanceId": instance_id, "secondsAgo": seconds});
        self.control("POST", "/_watchdog/launch-time", Some(request)).await;
    }

    /// Sets the instance's `healthStatus` as `DescribeContainerInstances` returns it with
    /// `include: CONTAINER_INSTANCE_HEALTH`: the overall status and the `(type, status, reason)`
    /// of each check.
    pub async fn set_health(&self, cluster: &str, arn: &str, overall: &str, checks: &[(&str, &str, &str)]) {
        let details: Vec<Value> = checks
            .iter()
            .map(|(check, status, reason)| json!({"type": check, "status": status, "statusReason": reason}))
            .collect();
        let request = json!({
            "cluster": cluster, "containerInstanceArn": arn,
            "health": {"overallStatus": overall, "details": details},
        });
        self.control("POST", "/_watchdog/container-instance", Some(request))
            .await;
    }

    /// Puts the container instance on a capacity provider of this `type` (`MANAGED_INSTANCES`),
    /// creating the provider as moto can (with an Auto Scaling group) and setting its type.
    pub async fn set_capacity_provider(&self, cluster: &str, arn: &str, provider: &str, kind: &str) {
        let ecs = aws_sdk_ecs::Client::new(&self.sdk);
        let group = aws_sdk_ecs::types::AutoScalingGroupProvider::builder()
            .auto_scaling_group_arn(format!(
                "arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0:autoScalingGroupName/{provider}"
            ))
            .build()
            .expect("a provider");
        let _ = ecs
            .create_capacity_provider()
            .name(provider)
            .auto_scaling_group_provider(group)
            .send()
            .await;
        self.control(
            "POST",
            "/_watchdog/capacity-provider",
            Some(json!({"name": provider, "type": kind})),
        )
        .await;
        let request = json!({"cluster": cluster, "containerInstanceArn": arn, "capacityProviderName": provider});
        self.control("POST", "/_watchdog/container-instance", Some(request))
            .await;
    }

    /// Names the container instance's capacity provider without creating it (one deleted
    /// since, as `DescribeCapacityProviders` then answers: not found).
    pub async fn set_capacity_provider_name(&self, cluster: &str, arn: &str, provider: &str) {
        let request = json!({"cluster": cluster, "containerInstanceArn": arn, "capacityProviderName": provider});
        self.control("POST", "/_watchdog/container-instance", Some(request))
            .await;
    }

    /// Makes the container instance an ECS Anywhere host (`mi-…`), which moto cannot register,
    /// and says what Systems Manager answers for it: its `PingStatus`, or (`None`) nothing.
    pub async fn set_anywhere(&self, cluster: &str, arn: &str, node_id: &str, ping_status: Option<&str>) {
        let request = json!({"cluster": cluster, "containerInstanceArn": arn, "ec2InstanceId": node_id});
        self.control("POST", "/_watchdog/container-instance", Some(request))
            .await;
        let node = json!({"id": node_id, "pingStatus": ping_status});
        self.control("POST", "/_watchdog/managed-node", Some(node)).await;
    }

    /// Makes Systems Manager's `DescribeInstanceInformation` fail (500) or answer again.
    pub async fn set_ssm_failing(&self, failing: bool) {
        self.control("POST", "/_watchdog/managed-node", Some(json!({"failing": failing})))
            .await;
    }

    /// Calls by `service:Operation` since the last reset.
    pub async fn calls(&self) -> HashMap<String, u64> {
        serde_json::from_value(self.control("GET", "/_watchdog/calls", None).await).expect("call counts")
    }

    /// The most calls to each service (`ecs`, `ec2`, ...) in flight at once since the last reset.
    pub async fn peak_in_flight(&self) -> HashMap<String, u64> {
        serde_json::from_value(self.control("GET", "/_watchdog/in-flight", None).await).expect("in-flight peaks")
    }

    /// Resets the call counts and the in-flight peaks.
    pub async fn reset_calls(&self) {
        self.control("POST", "/_watchdog/calls/reset", None).await;
    }

    /// The JSON bodies of one operation's requests (`ecs:ListTasks`) since the last reset.
    pub async fn requests(&self, operation: &str) -> Vec<Value> {
        let answer = self
            .control("GET", &format!("/_watchdog/requests?operation={operation}"), None)
            .await;
        serde_json::from_value(answer).expect("request bodies")
    }

    /// What SNS published, in order, with `MessageStructure=json` messages parsed.
    pub async fn published(&self) -> Vec<Published> {
        let sent = self.control("GET", "/_watchdog/sns", None).await;
        sent.as_array()
            .expect("a list")
            .iter()
            .map(|m| {
                let raw = m["message"].as_str().unwrap_or_default();
                Published {
                    topic_arn: m["topicArn"].as_str().unwrap_or_default().to_owned(),
                    subject: m["subject"].as_str().unwrap_or_default().to_owned(),
                    message: serde_json::from_str(raw).unwrap_or(Value::String(raw.to_owned())),
                    attributes: m["messageAttributes"]
                        .as_object()
                        .map(|attributes| {
                            attributes
                                .iter()
                                .map(|(k, v)| {
                                    let value = v.get("Value").or_else(|| v.get("StringValue")).and_then(Value::as_str);
                                    (k.clone(), value.unwrap_or_default().to_owned())
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}
