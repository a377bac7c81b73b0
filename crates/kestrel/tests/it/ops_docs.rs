//! The operator documents agree with each other and with the code: every alert in
//! `deploy/prometheus/rules.yml` has a severity and a `runbook_url` whose anchor exists in
//! `docs/runbook.md`, the runbook's alert index matches the rules, every fault class the code
//! can raise has a runbook section with its severity, and the README's Operations section names
//! the contract commands and metrics.

use std::collections::BTreeMap;
use std::path::Path;

use kestrel::faults::FaultClass;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)).unwrap()
}

/// `alert name → (severity, runbook anchor)` from rules.yml.
fn alerts() -> BTreeMap<String, (String, String)> {
    let rules = read("deploy/prometheus/rules.yml");
    let mut out = BTreeMap::new();
    for block in rules.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap().trim().to_owned();
        // The block ends where the next rule (alert or record) starts.
        let block = block.split("\n      - ").next().unwrap();
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity: "))
            .unwrap_or_else(|| panic!("alert {name} has no severity label"))
            .trim_matches('"')
            .to_owned();
        let url = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook_url: "))
            .unwrap_or_else(|| panic!("alert {name} has no runbook_url annotation"));
        let anchor = url
            .trim_matches('"')
            .rsplit_once("runbook.md#")
            .unwrap_or_else(|| {
                panic!("alert {name}: runbook_url {url} does not point at runbook.md")
            })
            .1
            .to_owned();
        out.insert(name, (severity, anchor));
    }
    out
}

#[test]
fn ops_docs_every_alert_has_severity_and_an_existing_runbook_anchor() {
    let runbook = read("docs/runbook.md");
    let alerts = alerts();
    assert!(alerts.len() >= 16, "only {} alerts parsed", alerts.len());
    for (name, (severity, anchor)) in &alerts {
        assert!(["P0", "P1", "P2"].contains(&severity.as_str()), "{name}: severity {severity}");
        let target = format!("<a id=\"{anchor}\"></a>");
        assert!(runbook.contains(&target), "{name}: runbook has no anchor {anchor}");
        // The alert index row names the alert with the same severity and links the section.
        let row = runbook
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("runbook alert index lacks {name}"));
        assert!(row.contains(&format!("| {severity} |")), "{name}: index row {row}");
        assert!(row.contains(&format!("(#{anchor})")), "{name}: index row {row}");
        // The section states the same severity.
        let section = runbook.split(&target).nth(1).unwrap().split("\n## ").next().unwrap();
        assert!(
            section.contains(&format!("**Severity**: {severity}")),
            "{name}: section {anchor} does not say severity {severity}"
        );
    }
    // Every index row is a real alert (no stale documentation).
    for row in runbook.lines().filter(|l| l.starts_with("| `Kestrel")) {
        let name = row.split('`').nth(1).unwrap();
        assert!(alerts.contains_key(name), "runbook indexes {name}, which rules.yml lacks");
    }
}

#[test]
fn ops_docs_every_fault_class_has_a_runbook_section_with_detection_and_remedy() {
    let runbook = read("docs/runbook.md");
    for &class in FaultClass::ALL {
        let heading = format!("\n## {}\n", class.as_str());
        let section = runbook
            .split(&heading)
            .nth(1)
            .unwrap_or_else(|| panic!("runbook lacks a section for {class}"))
            .split("\n## ")
            .next()
            .unwrap();
        assert!(section.contains(&format!("<a id=\"{}\"></a>", class.runbook_anchor())));
        for part in ["**Means**", "**Detected by**", "**Remedy**"] {
            assert!(section.contains(part), "{class}: section lacks {part}");
        }
        assert!(
            section.contains(&format!("**Severity**: {}", class.severity())),
            "{class}: section does not state severity {}",
            class.severity()
        );
        assert!(
            section.contains(&format!("kestrel_fault_active{{class=\"{}\"}}", class.as_str()))
                || class == FaultClass::BOOK_STALE
                || class == FaultClass::MD_FALLBACK,
            "{class}: section does not name its metric"
        );
    }
    // The contract remedy (PRODUCT.md section 3) is spelled out once, in order.
    let remedy = runbook.split("\n## Standard remedy\n").nth(1).unwrap();
    let a = remedy.find("msg_lag_seconds").unwrap();
    let b = remedy.find("make restart-ws").unwrap();
    let c = remedy.find("make fallback-rest").unwrap();
    assert!(a < b && b < c && remedy[..c].contains("5 minutes"));
}

#[test]
fn ops_docs_readme_operations_section_names_the_contract() {
    let readme = read("README.md");
    let ops = readme
        .split("\n## Operations\n")
        .nth(1)
        .expect("README has an Operations section")
        .split("\n## ")
        .next()
        .unwrap();
    for needle in [
        "make restart-ws",
        "make fallback-rest",
        "kestrel status",
        "binance_ws_latency_seconds",
        "task_latency_seconds",
        "msg_lag_seconds",
        "ws_reconnects_total",
        "order_roundtrip_seconds",
        "docs/runbook.md",
        "deploy/prometheus/rules.yml",
    ] {
        assert!(ops.contains(needle), "README Operations lacks {needle:?}");
    }
    // Every make target it names exists.
    let makefile = read("Makefile");
    for target in ops.split("`make ").skip(1).filter_map(|t| t.split(['`', ' ']).next()) {
        assert!(
            makefile.lines().any(|l| l.starts_with(&format!("{target}:"))),
            "README names `make {target}`, which the Makefile lacks"
        );
    }
}
