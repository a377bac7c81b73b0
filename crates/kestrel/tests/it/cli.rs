//! The real `kestrel` binary: every example config passes `check-config`; bad configs and bad
//! command lines fail with one line naming what to fix and the documented exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kestrel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kestrel"));
    // Tests never depend on the developer's environment.
    for var in [
        "KESTREL_BINANCE_API_KEY",
        "KESTREL_BINANCE_API_KEY_FILE",
        "KESTREL_BINANCE_API_SECRET",
        "KESTREL_BINANCE_API_SECRET_FILE",
        "KESTREL_ADMIN_TOKEN",
        "KESTREL_ADMIN_TOKEN_FILE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failure: the exit code, exactly one stderr line, and that it mentions `needles`.
fn assert_one_line_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err:?}");
    assert!(err.starts_with("kestrel: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
    assert!(!err.contains("backtrace") && !err.contains("panicked"), "{err}");
}

#[test]
fn every_example_config_passes_check_config() {
    let mut checked = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        // The simulator's own config (`kestrel sim --config examples/sim.toml`) is not a bot
        // config; kestrel-sim's tests load and validate it.
        if path.file_name().and_then(|n| n.to_str()) == Some("sim.toml") {
            continue;
        }
        let out = kestrel().arg("check-config").arg("--config").arg(&path).output().unwrap();
        assert!(out.status.success(), "{} failed check-config: {}", path.display(), stderr(&out));
        let shown = stdout(&out);
        assert!(shown.contains("config ok"), "{shown}");
        assert!(shown.contains("credentials.api_key"), "{shown}");
        checked += 1;
    }
    assert!(checked >= 3, "expected bot-sim, testnet and mainnet configs, checked {checked}");
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "S3CRET-FROM-FILE\n").unwrap();
    let out = kestrel()
        .args(["check-config", "--config"])
        .arg(examples_dir().join("testnet.toml"))
        .env("KESTREL_BINANCE_API_KEY", "KEY-FROM-ENV-1234")
        .env("KESTREL_BINANCE_API_SECRET_FILE", &secret_file)
        .env("KESTREL_ADMIN_TOKEN", "ADMIN-TOKEN-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(!shown.contains("KEY-FROM-ENV-1234"), "key leaked: {shown}");
    assert!(!shown.contains("S3CRET-FROM-FILE"), "secret leaked: {shown}");
    assert!(!shown.contains("ADMIN-TOKEN-0123456789"), "token leaked: {shown}");
    assert!(shown.contains("set (from env KESTREL_ADMIN_TOKEN)"), "{shown}");
    assert!(shown.contains("HMAC-SHA256"), "{shown}");
    assert!(shown.contains("set (from env KESTREL_BINANCE_API_KEY)"), "{shown}");
    assert!(shown.contains(&format!("set (from file {})", secret_file.display())), "{shown}");
}

#[test]
fn bad_configs_fail_with_one_line_naming_the_field() {
    let base = std::fs::read_to_string(examples_dir().join("testnet.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        // TC0: a typo in a decimal.
        (
            "funds",
            base.replace("funds = \"500\"", "funds = \"50O\""),
            vec!["config error: risk.funds: \"50O\" is not a decimal number"],
        ),
        // TC1: an API key in the file.
        (
            "secret",
            base.replace("[risk]\n", "[risk]\napi_key = \"abc\"\n"),
            vec!["risk.api_key", "KESTREL_BINANCE_API_KEY"],
        ),
        // TC2: unknown field.
        (
            "unknown",
            format!("{base}\n[market_data]\ndepth_sped = \"100ms\"\n"),
            vec!["market_data.depth_sped", "unknown field"],
        ),
        // TC3: a float where a decimal string belongs.
        (
            "float",
            base.replace("size = \"0.01\"", "size = 0.01"),
            vec!["symbols[1].strategy.size", "decimal strings"],
        ),
        // TC4: syntax error.
        ("syntax", format!("{base}\n[risk\n"), vec!["config error:", "syntax.toml:"]),
        // TC5: missing required section.
        (
            "missing",
            base.replace("[journal]\npath = \"kestrel-testnet.sqlite\"", ""),
            vec!["journal", "required"],
        ),
    ];
    for (i, (name, text, needles)) in cases.iter().enumerate() {
        assert_ne!(*text, base, "TC{i} {name}: test bug, nothing replaced");
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = kestrel().args(["check-config", "--config"]).arg(&path).output().unwrap();
        assert_one_line_failure(&out, 2, needles);
    }
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let out =
        kestrel().args(["check-config", "--config", "/nonexistent/kestrel.toml"]).output().unwrap();
    assert_one_line_failure(&out, 2, &["cannot read /nonexistent/kestrel.toml"]);
}

#[test]
fn bad_command_lines_fail_with_one_line_and_exit_2() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // TC0: no subcommand.
        (vec![], "usage error"),
        // TC1: unknown subcommand.
        (vec!["frobnicate"], "frobnicate"),
        // TC2: required flag missing.
        (vec!["check-config"], "--config"),
        // TC3: unknown flag, with clap's suggestion kept on the same line.
        (vec!["check-config", "--confg", "x.toml"], "--confg"),
        // TC4: invalid log filter.
        (vec!["--log-level", "kestrel=loud", "check-config", "--config", "x.toml"], "--log-level"),
    ];
    for (args, needle) in cases {
        let out = kestrel().args(&args).output().unwrap();
        assert_one_line_failure(&out, 2, &[needle]);
    }
}

#[test]
fn help_and_version_succeed() {
    let out = kestrel().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("check-config"));
    let out = kestrel().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("kestrel "));
}
