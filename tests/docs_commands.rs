//! Every fenced `sh` block of README.md and docs/ runs: in bash, in a scratch directory, with
//! `aws` the AWS CLI of `.venv` pointed at the emulator (a parameter its parser refuses fails; an
//! answer from the service, an error too, means the command was well formed), `sam` SAM CLI's own
//! option parsing (click, without running), `make` a dry run (`make -n`) of the repository's
//! Makefile. Any other command fails until it is handled here.

use std::path::Path;
use std::process::Command;

use watchdog_tests::emulator::{Emulator, python, venv_python};
use watchdog_tests::markdown::{fenced, pages};
use watchdog_tests::repo_root;

/// The commands a block may run; each is a shell function below.
const HANDLED: [&str; 3] = ["aws", "sam", "make"];

/// Each command as the shell reads it: continuation lines joined, comments and blanks left out.
fn commands(block: &str) -> Vec<String> {
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(|line| without_comment(line).trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

/// The line up to a `#` that starts a word outside quotes.
fn without_comment(line: &str) -> &str {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

/// The program a command runs: the first word, or the one inside `NAME=$(…)`.
fn program(command: &str) -> &str {
    let command = match command.split_once("=$(") {
        Some((name, inner)) if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') => inner,
        _ => command,
    };
    command.split_whitespace().next().unwrap_or_default()
}

/// The functions that stand for the commands; each appends `program<TAB>status<TAB>stderr file`
/// to `$DOCS_LOG`.
const PRELUDE: &str = r#"
n=0
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$DOCS_LOG"; }
aws() {
  n=$((n+1)); local f="$DOCS_LOG.$BASHPID.$n"
  "$DOCS_AWS" "$@" > "$f.out" 2> "$f"; record aws $? "$f"
  local out; out=$(< "$f.out"); [ -z "$out" ] || printf '%s\n' "$out"
}
sam() { n=$((n+1)); local f="$DOCS_LOG.$BASHPID.$n"; "$DOCS_SAM_PYTHON" -c "$DOCS_SAM_PARSE" "$@" > /dev/null 2> "$f"; record sam $? "$f"; }
make() { n=$((n+1)); local f="$DOCS_LOG.$BASHPID.$n"; /usr/bin/make -n --no-print-directory -C "$DOCS_REPO" "$@" > /dev/null 2> "$f"; record make $? "$f"; }
"#;

/// SAM CLI's parsing of `sam <command> <options>`, without running the command.
const SAM_PARSE: &str = r#"
import sys
from samcli.cli.main import cli
ctx = cli.make_context("sam", sys.argv[1:])
name, command, rest = cli.resolve_command(ctx, ctx.protected_args + ctx.args)
command.make_context(name, rest, parent=ctx)
"#;

/// What the reader runs in: the clone's files the commands read, and a stand-in for
/// `make package`'s `dist/packaged.yaml` (a template with the parameter the docs pass; the real
/// one is tested by the package tests).
fn scratch() -> tempdir::Scratch {
    let dir = tempdir::Scratch::new();
    for file in ["spoke.yaml", "samconfig.toml"] {
        std::fs::copy(repo_root().join(file), dir.path().join(file)).expect(file);
    }
    std::fs::create_dir(dir.path().join("dist")).expect("dist/");
    std::fs::write(dir.path().join("dist/packaged.yaml"), STAND_IN).expect("dist/packaged.yaml");
    dir
}

/// `dist/packaged.yaml` for the commands, and the hub stack `ecs-watchdog` the organization's
/// commands read: outputs shaped as the real stack's (`FunctionRoleArns` a comma-separated list).
const STAND_IN: &str = "\
Parameters:
  NotificationEmail: {Type: String, Default: ''}
Resources:
  Topic: {Type: 'AWS::SNS::Topic'}
Outputs:
  HubEventBusArn: {Value: 'arn:aws:events:us-east-1:123456789012:event-bus/ecs-watchdog-hub'}
  FunctionRoleArns: {Value: 'arn:aws:iam::123456789012:role/ecs-watchdog-MonitorRole,arn:aws:iam::123456789012:role/ecs-watchdog-SweepRole'}
";

/// The hub stack the organization's commands read its outputs from, made again before each
/// block (another block may have deployed over it) with the CLI: `create-stack`, as moto gives a
/// stack deployed through a change set no outputs.
fn deploy_hub(aws: &Path, emulator: &Emulator, dir: &Path) {
    let run = |args: &[&str]| {
        Command::new(aws)
            .args(["cloudformation"])
            .args(args)
            .args(["--stack-name", "ecs-watchdog"])
            .envs(emulator.env())
            .env("AWS_DEFAULT_REGION", watchdog_tests::emulator::REGION)
            .output()
            .expect("run aws")
    };
    run(&["delete-stack"]);
    let template = format!("file://{}", dir.join("dist/packaged.yaml").display());
    let output = run(&["create-stack", "--template-body", &template]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Whether an `aws` command got past the CLI's own parsing: it succeeded, or the service (the
/// emulator) answered, an error or a server error for what it does not implement.
fn parsed(status: &str, stderr: &str) -> bool {
    status == "0" || stderr.contains("An error occurred (") || stderr.contains("Unable to parse response")
}

/// One page's shell blocks run in order in one shell, as a reader runs them (a variable one
/// block sets, the next uses); each command's result, or what is wrong with it.
fn run_page(page: &str, blocks: &[String], emulator: &Emulator, tools: &Tools) -> Vec<Result<String, String>> {
    let expected: Vec<String> = blocks.iter().flat_map(|b| commands(b)).collect();
    let mut outcomes: Vec<Result<String, String>> = expected
        .iter()
        .filter(|c| !HANDLED.contains(&program(c)))
        .map(|c| Err(format!("{page}: no way to run `{c}`")))
        .collect();
    let dir = scratch();
    deploy_hub(&tools.aws, emulator, dir.path());
    let log = dir.path().join("commands.log");
    let output = Command::new("/bin/bash")
        .args(["--noprofile", "--norc", "-c"])
        .arg(format!("{PRELUDE}\n{}\n", blocks.join("\n")))
        .current_dir(dir.path())
        .env_clear()
        .envs(emulator.env())
        .envs([
            ("AWS_MAX_ATTEMPTS", "1"),
            ("AWS_DEFAULT_REGION", watchdog_tests::emulator::REGION),
            ("PATH", "/nonexistent"),
            ("SAM_CLI_TELEMETRY", "0"),
            ("DOCS_SAM_PARSE", SAM_PARSE),
            // The one value a reader brings (PagerDuty's routing key).
            ("ROUTING_KEY", "example-routing-key"),
        ])
        .env("HOME", dir.path())
        .env("DOCS_LOG", &log)
        .env("DOCS_AWS", &tools.aws)
        .env("DOCS_SAM_PYTHON", &tools.sam_python)
        .env("DOCS_REPO", repo_root())
        .output()
        .expect("run bash");
    let results = std::fs::read_to_string(&log).unwrap_or_default();
    let results: Vec<Vec<&str>> = results.lines().map(|l| l.splitn(3, '\t').collect()).collect();
    if results.len() != expected.len() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        outcomes.push(Err(format!(
            "{page}: {} commands, {} ran: {stderr}",
            expected.len(),
            results.len()
        )));
    }
    for (command, result) in expected.iter().zip(&results) {
        let stderr = std::fs::read_to_string(result[2]).unwrap_or_default();
        let said = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let ok = match result[0] {
            "aws" => parsed(result[1], &stderr),
            _ => result[1] == "0",
        };
        outcomes.push(match ok {
            true => Ok(format!("{page}: `{command}`: exit {} {said}", result[1])),
            false => Err(format!("{page}: `{command}` (exit {}): {stderr}", result[1])),
        });
    }
    outcomes
}

/// The CLIs the commands run with.
struct Tools {
    aws: std::path::PathBuf,
    sam_python: std::path::PathBuf,
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_docs_show_a_shell_command_then_it_runs() {
    let emulator = Emulator::start().await;
    let tools = Tools {
        aws: python().with_file_name("aws"),
        sam_python: venv_python("WATCHDOG_SAM_PYTHON", ".venv-sam"),
    };
    let mut outcomes = Vec::new();
    for (path, text) in pages() {
        let blocks = fenced(&text, "sh");
        if !blocks.is_empty() {
            outcomes.extend(run_page(&path.display().to_string(), &blocks, &emulator, &tools));
        }
    }
    // What each command answered, for the log of a failing run: an emulator's error is a pass.
    outcomes.iter().flatten().for_each(|ran| eprintln!("{ran}"));
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{}",
        failures.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("\n\n")
    );
    // README's first deploy and demo, operations, organizations, PagerDuty: none found is a broken reader.
    assert!(outcomes.len() >= 20, "only {} commands ran", outcomes.len());
}

#[test]
fn when_a_block_is_read_then_continuations_join_and_comments_go() {
    let block =
        "# a comment\nmake build     # sam build\nHUB=$(aws cloudformation describe-stacks \\\n  --query \"a # b\")\n";
    assert_eq!(
        commands(block),
        vec![
            "make build".to_owned(),
            "HUB=$(aws cloudformation describe-stacks    --query \"a # b\")".to_owned()
        ]
    );
    assert_eq!(program(&commands(block)[1]), "aws");
}

/// A directory removed when dropped.
mod tempdir {
    use super::Path;

    pub struct Scratch(std::path::PathBuf);

    impl Scratch {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!("docs-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir_all(&path).expect("a scratch directory");
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
