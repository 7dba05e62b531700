//! The docs against what they describe: the parameter and environment tables against
//! `template.yaml` and the configuration code, the kinds and rules against the registry and the
//! template, the finding schema against what the code serialises, and every figure linked to
//! BENCHMARKS.md (or cost.md) against the row it names. A change on one side fails here until
//! the other follows. The shell commands are `docs_commands.rs`'s.

use std::collections::{BTreeMap, BTreeSet};

use ecs_watchdog::kinds::KINDS;
use serde_json::Value;
use watchdog_tests::markdown::{self, cells, links, page, table, ticked};
use watchdog_tests::template::{rendered, template};

use crate::template::variables_the_function_reads;

/// A parameter's default as the docs write it: `value`, or `empty` for "".
fn documented_default(cell: &str) -> String {
    match ticked(cell).first() {
        Some(value) if !cell.starts_with("empty") => value.clone(),
        _ => String::new(),
    }
}

#[test]
fn when_the_parameter_table_is_read_then_it_is_the_templates_parameters_and_defaults() {
    let rows = table(
        &page("docs/configuration.md"),
        &["parameter", "what it does", "default"],
    );
    let documented: BTreeMap<String, String> = rows
        .iter()
        .map(|row| (ticked(&row[0])[0].clone(), documented_default(&row[2])))
        .collect();
    assert_eq!(documented.len(), rows.len(), "a parameter documented twice");
    let declared: BTreeMap<String, String> = template()["Parameters"]
        .as_object()
        .expect("Parameters")
        .iter()
        .map(|(name, parameter)| {
            let default = match &parameter["Default"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (name.clone(), default)
        })
        .collect();
    let names: BTreeSet<&String> = documented.keys().chain(declared.keys()).collect();
    let differing: Vec<String> = names
        .into_iter()
        .filter(|name| documented.get(*name) != declared.get(*name))
        .map(|name| {
            format!(
                "{name}: documented {:?}, template {:?}",
                documented.get(name),
                declared.get(name)
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "docs/configuration.md's parameters against template.yaml's:\n{}",
        differing.join("\n")
    );
}

#[test]
fn when_the_environment_table_is_read_then_it_is_what_the_configuration_reads() {
    let rows = table(&page("docs/configuration.md"), &["variable", "meaning", "default"]);
    let documented: BTreeSet<String> = rows.iter().map(|row| ticked(&row[0])[0].clone()).collect();
    assert_eq!(documented.len(), rows.len(), "a variable documented twice");
    assert_eq!(documented, variables_the_function_reads());
}

/// `yes`/`no` cells as booleans.
fn yes(cell: &str) -> bool {
    match cell {
        "yes" => true,
        "no" => false,
        other => panic!("a yes/no cell reads {other:?}"),
    }
}

#[test]
fn when_the_kinds_table_is_read_then_it_is_the_registry() {
    let findings = page("docs/findings.md");
    let rows = table(
        &findings,
        &[
            "kind",
            "told by (EventBridge `detail-type`)",
            "counted in",
            "alarm on",
            "remediation may drain",
        ],
    );
    let listed: Vec<String> = rows.iter().map(|row| ticked(&row[0])[0].clone()).collect();
    let registry: Vec<&str> = KINDS.iter().map(|k| k.kind().as_str()).collect();
    assert_eq!(listed, registry, "docs/findings.md's kinds, in the registry's order");
    for (kind, row) in KINDS.iter().zip(&rows) {
        let name = kind.kind().as_str();
        let told_by: BTreeSet<String> = ticked(&row[1]).into_iter().collect();
        let detail_types: BTreeSet<String> = kind.detail_types().iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(told_by, detail_types, "{name}: its detail-types");
        let alarm = kind.alarm().unwrap_or_else(|| panic!("{name} has no alarm")).name();
        let counted = kind.metric().map_or(alarm, |m| m.name());
        assert_eq!(ticked(&row[2])[0], counted, "{name}: its count");
        assert_eq!(ticked(&row[3]), [alarm], "{name}: its alarm");
        assert_eq!(yes(&row[4]), kind.drains(), "{name}: whether remediation drains");
    }
    // The routing table's `kind` row names them all, for subscription filter policies.
    let routing = findings
        .lines()
        .find(|line| line.starts_with("| `kind` | `"))
        .expect("the routing table's kind row");
    assert_eq!(ticked(&cells(routing)[1]), registry, "the routing table's kind row");
}

#[test]
fn when_the_rules_table_is_read_then_it_is_the_templates_rules() {
    let rows = table(
        &page("docs/findings.md"),
        &["rule", "`detail-type`", "`detail` pattern"],
    );
    let documented: BTreeMap<String, (Vec<String>, Value)> = rows
        .iter()
        .map(|row| {
            let pattern = match ticked(&row[2]).first() {
                Some(json) => serde_json::from_str(json).unwrap_or_else(|e| panic!("{}: {e}: {json}", row[0])),
                None => Value::Null,
            };
            (ticked(&row[0])[0].clone(), (ticked(&row[1]), pattern))
        })
        .collect();
    let declared: BTreeMap<String, (Vec<String>, Value)> = template()["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .filter(|(_, r)| r["Properties"]["EventPattern"]["source"] == serde_json::json!(["aws.ecs"]))
        .map(|(name, r)| {
            let pattern = &r["Properties"]["EventPattern"];
            let types = pattern["detail-type"]
                .as_array()
                .map(|types| {
                    types
                        .iter()
                        .map(|t| t.as_str().expect("a detail-type").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (name.clone(), (types, pattern["detail"].clone()))
        })
        .collect();
    assert_eq!(documented, declared, "docs/findings.md's rules against template.yaml's");
}

/// Every figure linked to BENCHMARKS.md or cost.md with a title is in the row the title names:
/// the row whose first cell starts with the title's first part, then, for each further part
/// after ` › `, the next row whose first cell (after a leading `…`) starts with it.
#[test]
fn when_a_figure_is_linked_to_its_measure_then_the_measure_says_it() {
    let mut checked = 0;
    for (path, text) in markdown::pages() {
        for link in links(&text) {
            let (Some(title), Some(file)) = (&link.title, markdown::resolve(&path, &link.target)) else {
                continue;
            };
            if !(file.ends_with("BENCHMARKS.md") || file.ends_with("cost.md")) {
                continue;
            }
            let source = page(file.to_str().expect("a UTF-8 path"));
            let row = row_named(&source, title)
                .unwrap_or_else(|| panic!("{}: {} has no row {title:?}", path.display(), file.display()));
            assert!(
                row.contains(&link.text),
                "{}: {:?} is not in {}'s row {title:?}: {row}",
                path.display(),
                link.text,
                file.display()
            );
            checked += 1;
        }
    }
    // The README's cost and cost.md's performance figures are linked: none found is a broken parser.
    assert!(checked >= 15, "only {checked} linked figures found");
}

fn row_named<'a>(source: &'a str, title: &str) -> Option<&'a str> {
    let first_cell = |line: &str| {
        cells(line)
            .first()
            .map(|c| c.trim_start_matches('…').replace("**", "").trim().to_owned())
            .unwrap_or_default()
    };
    let rows: Vec<&str> = source.lines().filter(|l| l.starts_with('|')).collect();
    let mut parts = title.split(" › ");
    let first = parts.next()?;
    let mut at = rows.iter().position(|row| first_cell(row).starts_with(first))?;
    for part in parts {
        at += 1 + rows[at + 1..]
            .iter()
            .position(|row| first_cell(row).starts_with(part))?;
    }
    Some(rows[at])
}

/// cost.md prices the alarms the stack creates: counted in the template as CloudFormation would
/// deploy it, with the defaults, without the sweep, and as a hub.
#[test]
fn when_the_alarms_are_priced_then_cost_md_counts_the_rendered_templates() {
    let alarms = |parameters: &[(&str, &str)]| {
        rendered("ecs-watchdog", parameters)["Resources"]
            .as_object()
            .expect("Resources")
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .count()
    };
    let cost = page("docs/cost.md");
    let row = cost
        .lines()
        .find(|l| l.starts_with("| alarms |"))
        .expect("cost.md's alarms row");
    for said in [
        format!("{} standard alarms", alarms(&[])),
        format!(
            "{} with `SweepIntervalMinutes=0`",
            alarms(&[("SweepIntervalMinutes", "0")])
        ),
        format!(
            "{} with `OrganizationId`",
            alarms(&[("OrganizationId", "o-abc123def4")])
        ),
    ] {
        assert!(row.contains(&said), "cost.md's alarms row does not say {said:?}: {row}");
    }
}

/// A heading's anchor as GitHub makes it: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every relative link of README.md and docs/ reaches a file, and its `#anchor` a heading there:
/// pages moved and sections renamed keep their links working.
#[test]
fn when_a_page_links_another_then_the_page_and_its_heading_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for (path, text) in markdown::pages() {
        for link in links(&text) {
            let file = match link.target.starts_with('#') {
                true => Some(path.clone()),
                false => markdown::resolve(&path, &link.target),
            };
            let Some(file) = file else { continue };
            let Ok(target) = std::fs::read_to_string(watchdog_tests::repo_root().join(&file)) else {
                broken.push(format!("{}: {} (no such file)", path.display(), link.target));
                continue;
            };
            checked += 1;
            let Some((_, wanted)) = link.target.split_once('#') else {
                continue;
            };
            let headings: BTreeSet<String> = target.lines().filter(|l| l.starts_with('#')).map(anchor).collect();
            if !headings.contains(wanted) {
                broken.push(format!("{}: {} (no heading #{wanted})", path.display(), link.target));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 30, "only {checked} links checked");
}
