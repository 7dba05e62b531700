//! A Lambda Runtime API on loopback that runs the real `monitor` binary, as Lambda does:
//! the binary asks for the next invocation, the test hands it an event and reads the answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

const API: &str = "/2018-06-01/runtime";
const INVOKE_TIMEOUT: Duration = Duration::from_secs(180);

type Answer = Result<Value, String>;

struct Shared {
    /// When the process was spawned, and when it first asked for an invocation.
    spawned: Mutex<Option<std::time::Instant>>,
    first_poll: Mutex<Option<Duration>>,
    first_poll_seen: tokio::sync::Notify,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
}

/// The `monitor` binary running behind the Runtime API.
pub struct Function {
    child: Child,
    invocations: mpsc::UnboundedSender<(String, Bytes)>,
    shared: Arc<Shared>,
    printed: Arc<Printed>,
    /// The test's own ends of the stdout and stderr pipes, to write marks after each answer;
    /// dropped once the process ended, so the readers see the end of their stream.
    writers: Mutex<Vec<std::io::PipeWriter>>,
    /// One per reader: says when it read the end of its stream.
    readers: Vec<oneshot::Receiver<()>>,
    counter: AtomicU64,
    marks: AtomicU64,
}

/// What the process printed, stdout and stderr, as the reader threads read it.
#[derive(Default)]
struct Printed {
    lines: Mutex<Vec<String>>,
    /// The last mark each reader passed.
    passed: Mutex<Vec<u64>>,
    moved: tokio::sync::Notify,
}

/// Starts a mark line that the test writes into the process's own stdout and stderr pipes
/// after each answer. The process printed what it printed for an invocation before it answered,
/// so once a reader passed the mark, everything the invocation printed is in `lines`: a test
/// reads its metrics right after the answer without polling or sleeping.
const MARK: &str = "\u{1}ecs-watchdog-test-mark ";

/// Reads one stream line by line into `printed`, taking marks out; a mark written while the
/// process was in the middle of a long line (more than one write) is cut out of that line.
fn read_lines(stream: std::io::PipeReader, index: usize, printed: Arc<Printed>, done: oneshot::Sender<()>) {
    let mut reader = std::io::BufReader::new(stream);
    let mut pending = String::new();
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n');
        match text.split_once(MARK) {
            Some((before, mark)) => {
                pending.push_str(before);
                printed.passed.lock().unwrap()[index] = mark.parse().unwrap_or(0);
                printed.moved.notify_waiters();
            }
            None => {
                pending.push_str(text);
                printed.lines.lock().unwrap().push(std::mem::take(&mut pending));
            }
        }
        line.clear();
    }
    if !pending.is_empty() {
        printed.lines.lock().unwrap().push(pending);
    }
    let _ = done.send(());
}

/// Where the `monitor` binary is: `MONITOR_BIN`, else beside the test's own target directory.
pub fn monitor_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MONITOR_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("monitor");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p monitor` (make test does)",
        binary.display()
    );
    binary
}

/// Where the `sweep` binary is: beside `monitor`, built by the same `cargo build --workspace`.
pub fn sweep_binary() -> PathBuf {
    monitor_binary().with_file_name("sweep")
}

impl Function {
    /// Starts the `monitor` binary with `env` on top of the variables Lambda itself sets.
    pub async fn start(env: &[(String, String)]) -> Self {
        Self::start_binary(&monitor_binary(), env).await
    }

    /// Starts any Lambda binary the same way.
    pub async fn start_binary(binary: &std::path::Path, env: &[(String, String)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the Runtime API");
        let address = listener.local_addr().expect("Runtime API address");
        let (invocations, next) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            spawned: Mutex::new(None),
            first_poll: Mutex::new(None),
            first_poll_seen: tokio::sync::Notify::new(),
            next: tokio::sync::Mutex::new(next),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
        });
        let server = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(shared.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });

        // The test keeps a writer of each pipe, for the marks (`read_up_to_now`).
        let (stdout_reader, stdout) = std::io::pipe().expect("a stdout pipe");
        let (stderr_reader, stderr) = std::io::pipe().expect("a stderr pipe");
        *shared.spawned.lock().unwrap() = Some(std::time::Instant::now());
        let child = Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ecs-watchdog-monitor")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ecs-watchdog-monitor")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout.try_clone().expect("a second stdout writer")))
            .stderr(Stdio::from(stderr.try_clone().expect("a second stderr writer")))
            .kill_on_drop(true)
            .spawn()
            .expect("start the monitor binary");
        let printed = Arc::new(Printed::default());
        *printed.passed.lock().unwrap() = vec![0; 2];
        let readers = [stdout_reader, stderr_reader]
            .into_iter()
            .enumerate()
            .map(|(index, stream)| {
                let (done, ended) = oneshot::channel();
                let printed = printed.clone();
                std::thread::spawn(move || read_lines(stream, index, printed, done));
                ended
            })
            .collect();
        Self {
            child,
            invocations,
            shared,
            printed,
            writers: Mutex::new(vec![stdout, stderr]),
            readers,
            counter: Default::default(),
            marks: Default::default(),
        }
    }

    /// Returns once everything the process printed before now has been read: writes a mark into
    /// both pipes and waits for both readers to pass it.
    async fn read_up_to_now(&self) {
        let mark = self.marks.fetch_add(1, Ordering::Relaxed) + 1;
        for writer in self.writers.lock().unwrap().iter_mut() {
            writer
                .write_all(format!("{MARK}{mark}\n").as_bytes())
                .expect("the test's end of the pipe is open");
        }
        let passed = async {
            loop {
                let moved = self.printed.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.printed.passed.lock().unwrap().iter().all(|m| *m >= mark) {
                    return;
                }
                moved.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), passed)
            .await
            .expect("the output readers pass the mark");
    }

    /// Invokes the function once with `event` and returns its answer or its error.
    pub async fn invoke(&self, event: &Value) -> Answer {
        let answer = self.submit(event);
        match tokio::time::timeout(INVOKE_TIMEOUT, answer).await {
            Ok(Ok(answer)) => {
                self.read_up_to_now().await;
                answer
            }
            _ => Err(self.no_answer()),
        }
    }

    /// Invokes the function with `event` when something is to kill it meanwhile: its answer,
    /// or (`None`) the process ended before it gave one.
    pub async fn invoke_unless_killed(&mut self, event: &Value) -> Option<Answer> {
        let answer = self.submit(event);
        let ended = tokio::time::timeout(INVOKE_TIMEOUT, async {
            tokio::select! {
                answer = answer => answer.ok(),
                _ = self.child.wait() => None,
            }
        });
        match ended.await {
            Ok(Some(answer)) => {
                self.read_up_to_now().await;
                Some(answer)
            }
            Ok(None) => None,
            Err(_) => Some(Err(self.no_answer())),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn submit(&self, event: &Value) -> oneshot::Receiver<Answer> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("req-{n:04}-{}", std::process::id());
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.invocations
            .send((id, Bytes::from(event.to_string())))
            .expect("runtime API is up");
        rx
    }

    fn no_answer(&self) -> String {
        format!(
            "no answer (init error: {:?})\n{}",
            self.shared.init_error.lock().unwrap(),
            self.output().join("\n")
        )
    }

    /// How long the process took from spawn to its first request for an invocation.
    pub async fn startup(&self) -> Duration {
        loop {
            let notified = self.shared.first_poll_seen.notified();
            if let Some(startup) = *self.shared.first_poll.lock().unwrap() {
                return startup;
            }
            tokio::time::timeout(INVOKE_TIMEOUT, notified)
                .await
                .expect("the function asks for an invocation");
        }
    }

    /// The process's peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Waits for the process to stop on its own (for example after an init error).
    /// Waits for the process to exit and for everything it printed to be read.
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits")
            .expect("exit status");
        self.writers.lock().unwrap().clear();
        for reader in self.readers.drain(..) {
            reader.await.expect("the output reader ends with the process");
        }
        status
    }

    /// Everything the process printed, stdout and stderr.
    pub fn output(&self) -> Vec<String> {
        self.printed.lines.lock().unwrap().clone()
    }

    /// The Embedded Metric Format documents it printed.
    pub fn emf(&self) -> Vec<Value> {
        self.output()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|document| document.get("_aws").is_some())
            .collect()
    }

    /// The sum of a metric over the EMF documents whose only dimension is `ClusterName` =
    /// `cluster`, or (`None`) that have no dimension: the aggregate.
    pub fn metric(&self, name: &str, cluster: Option<&str>) -> f64 {
        let dimensions = match cluster {
            Some(_) => serde_json::json!(["ClusterName"]),
            None => serde_json::json!([]),
        };
        self.emf()
            .iter()
            .filter(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == dimensions)
            .filter(|d| d.get("ClusterName").and_then(Value::as_str) == cluster)
            .filter_map(|d| d.get(name).and_then(Value::as_f64))
            .sum()
    }

    pub fn clear_output(&self) {
        self.printed.lines.lock().unwrap().clear();
    }
}

async fn serve(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if method == Method::GET && path == format!("{API}/invocation/next") {
        {
            let mut first = shared.first_poll.lock().unwrap();
            if first.is_none() {
                *first = shared.spawned.lock().unwrap().map(|spawned| spawned.elapsed());
                shared.first_poll_seen.notify_waiters();
            }
        }
        let (id, event) = shared.next.lock().await.recv().await.unwrap_or_default();
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(300);
        let response = Response::builder()
            .header("Lambda-Runtime-Aws-Request-Id", id)
            .header("Lambda-Runtime-Deadline-Ms", deadline.as_millis().to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:ecs-watchdog-monitor",
            )
            .header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(event))
            .expect("a response");
        return Ok(response);
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    if path == format!("{API}/init/error") {
        *shared.init_error.lock().unwrap() = Some(text.clone());
        for (_, waiter) in shared.waiting.lock().unwrap().drain() {
            let _ = waiter.send(Err(format!("init error: {text}")));
        }
    } else if let Some(rest) = path.strip_prefix(&format!("{API}/invocation/")) {
        let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
        let answer = match kind {
            "response" => serde_json::from_str(&text).map_err(|e| format!("response is not JSON: {e}: {text}")),
            _ => Err(text),
        };
        if let Some(waiter) = shared.waiting.lock().unwrap().remove(id) {
            let _ = waiter.send(answer);
        }
    } else {
        return Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .expect("a response"));
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("a response"))
}
