//! A local PagerDuty Events API v2 (`tests/pagerduty_receiver.py`) on a free loopback port: it
//! checks each event against the API's schema, answers as PagerDuty does, can answer 429 or 5xx
//! first, and tells what it received.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::emulator::{python, ready_port};
use crate::repo_root;

/// A routing key of the Events API's 32 characters.
pub const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

/// A running receiver; dropping it stops it.
pub struct Receiver {
    _child: Child,
    address: String,
}

impl Receiver {
    pub async fn start() -> Self {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/pagerduty_receiver.py"))
            .arg(ROUTING_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the PagerDuty receiver");
        let port = ready_port(&mut child, "the PagerDuty receiver", Duration::from_secs(30)).await;
        Self {
            _child: child,
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// `PAGERDUTY_EVENTS_URL` for this receiver.
    pub fn url(&self) -> String {
        format!("http://{}/v2/enqueue", self.address)
    }

    /// Every request so far: `{"status", "event", "errors"}`, in order.
    pub async fn requests(&self) -> Vec<Value> {
        let answer = self.call("GET", "/events", None).await;
        answer.as_array().cloned().unwrap_or_default()
    }

    /// The events it accepted (202), in order.
    pub async fn accepted(&self) -> Vec<Value> {
        let requests = self.requests().await;
        requests
            .into_iter()
            .filter(|r| r["status"] == 202)
            .map(|r| r["event"].clone())
            .collect()
    }

    /// The next answers, in order, before 202 again.
    pub async fn fail_next(&self, statuses: &[u16]) {
        self.call("POST", "/control", Some(json!({ "fail": statuses }))).await;
    }

    /// Every answer from now on (`None`: as the event deserves).
    pub async fn always(&self, status: Option<u16>) {
        self.call("POST", "/control", Some(json!({ "always": status }))).await;
    }

    /// The next `n` requests are recorded, then answered only after 5 s.
    pub async fn hang_next(&self, n: u32) {
        self.call("POST", "/control", Some(json!({ "hang": n }))).await;
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut stream = TcpStream::connect(&self.address)
            .await
            .expect("connect to the receiver");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.contains(" 200 "), "{method} {path}: {head}\n{body}");
        serde_json::from_str(body).expect("the receiver answers JSON")
    }
}
