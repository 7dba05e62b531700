//! `make package`'s own check (scripts/check_package.py) on small releases written by the real
//! packager (scripts/package.py) from generated ELF headers: a good release passes, and each way a
//! release can be broken is refused with a message naming the file. No arm64 build here: that is
//! `make package`'s, and minutes long.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use watchdog_tests::emulator::python;
use watchdog_tests::repo_root;

/// ELF e_machine values: https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html
const AARCH64: u16 = 183;
const X86_64: u16 = 62;

/// The first bytes of a 64-bit little-endian ELF executable for `machine`, and some code.
fn elf(machine: u16) -> Vec<u8> {
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 2; // ELFCLASS64
    header[5] = 1; // ELFDATA2LSB
    header[6] = 1; // EV_CURRENT
    header[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    header[18..20].copy_from_slice(&machine.to_le_bytes());
    header.extend_from_slice(&[0x90; 256]);
    header
}

/// A fresh directory for one case, under the test target's scratch space.
fn scratch(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package").join(case);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn run(script: &str, args: &[&Path]) -> Output {
    Command::new(python())
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"))
}

/// dist/ as `make package` writes it, from these monitor and sweep bootstraps.
fn release(case: &str, monitor: Vec<u8>, sweep: Vec<u8>) -> PathBuf {
    let dir = scratch(case);
    let (monitor_bin, sweep_bin) = (dir.join("monitor-bootstrap"), dir.join("sweep-bootstrap"));
    std::fs::write(&monitor_bin, monitor).unwrap();
    std::fs::write(&sweep_bin, sweep).unwrap();
    let dist = dir.join("dist");
    let output = run(
        "package.py",
        &[
            Path::new("--dist"),
            &dist,
            Path::new("--monitor"),
            &monitor_bin,
            Path::new("--sweep"),
            &sweep_bin,
        ],
    );
    assert!(
        output.status.success(),
        "package.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dist
}

/// The checker's verdict: `Ok` with its report, or `Err` with its problems, one a line.
fn check(dist: &Path) -> Result<String, Vec<String>> {
    let output = run("check_package.py", &[dist]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let prefix = format!("check_package: {}/", dist.display());
    Err(stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect())
}

#[test]
fn when_a_release_holds_two_arm64_bootstraps_then_the_check_passes_and_the_template_names_them() {
    let dist = release("good", elf(AARCH64), elf(AARCH64));

    let report = check(&dist).expect("a good release passes");

    assert!(report.contains("monitor.zip: aarch64 bootstrap"), "{report}");
    assert!(report.contains("sweep.zip: aarch64 bootstrap"), "{report}");
    let packaged = std::fs::read_to_string(dist.join("packaged.yaml")).unwrap();
    let code: Vec<&str> = packaged
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CodeUri: "))
        .collect();
    assert_eq!(code, ["monitor.zip", "sweep.zip"]);
    assert!(!packaged.contains("rust-cargolambda"), "nothing is left to build");
    // The same binary makes the same zip: a checksum names a build, not a moment.
    let again = release("good-again", elf(AARCH64), elf(AARCH64));
    for zip in ["monitor.zip", "sweep.zip"] {
        assert_eq!(
            std::fs::read(dist.join(zip)).unwrap(),
            std::fs::read(again.join(zip)).unwrap()
        );
    }
}

#[test]
fn when_a_bootstrap_is_built_for_x86_64_then_the_release_is_refused_naming_its_zip() {
    let dist = release("x86", elf(X86_64), elf(AARCH64));

    let problems = check(&dist).expect_err("an x86-64 bootstrap cannot run on arm64");

    assert_eq!(
        problems,
        ["monitor.zip: bootstrap is built for x86-64 (ELF e_machine 62); Lambda arm64 needs aarch64 (e_machine 183)"]
    );
}

#[test]
fn when_a_zip_is_missing_then_the_release_is_refused_naming_it() {
    let dist = release("missing", elf(AARCH64), elf(AARCH64));
    std::fs::remove_file(dist.join("sweep.zip")).unwrap();

    let problems = check(&dist).expect_err("a template naming a missing zip");

    assert_eq!(
        problems,
        [
            "sweep.zip: missing (named by SweepFunction's CodeUri)",
            "sweep.zip: missing (listed in SHA256SUMS)",
        ]
    );
}

#[test]
fn when_a_zip_does_not_match_its_checksum_then_the_release_is_refused_naming_it() {
    let dist = release("checksum", elf(AARCH64), elf(AARCH64));
    // Another monitor (valid, arm64) swapped in after the checksums were written.
    let other = release("checksum-other", [elf(AARCH64), vec![1]].concat(), elf(AARCH64));
    std::fs::copy(other.join("monitor.zip"), dist.join("monitor.zip")).unwrap();

    let problems = check(&dist).expect_err("a zip that is not what was summed");

    assert_eq!(problems, ["monitor.zip: checksum does not match SHA256SUMS"]);
}
