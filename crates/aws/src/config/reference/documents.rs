//! template.yaml and docs/DEPLOY.md agree with the settings table.
//!
//! The template is read as CloudFormation reads it (serde_yaml keeps the
//! short tags `!Ref`, `!If`, … as tagged values). DEPLOY's parameter table
//! keeps only the parameters that are not settings, so it is checked against
//! the template for those, and for having no row for a setting.

use std::path::PathBuf;

use serde_yaml::Value as Yaml;

use super::super::{POST_CONFIRMATION_TIMEOUT, RECONCILE_TIMEOUT};
use super::{Feed, Function, Reading, Setting, Unset, Value, settings};
use chime_sync_core::DisplayNamePolicy;

/// Variables a function gets that are not this crate's settings: `RUST_LOG`
/// is chime-sync-runtime's (the `LogLevel` parameter, in DEPLOY's table).
const NOT_SETTINGS: [&str; 1] = ["RUST_LOG"];

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn template() -> Yaml {
    serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML")
}

fn all() -> Vec<Setting> {
    settings().into_iter().flat_map(|g| g.settings).collect()
}

/// The template's function whose `Metadata.BuildProperties.Binary` is `function`'s.
fn function(template: &Yaml, function: Function) -> &Yaml {
    template["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources")
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(function.binary()))
        .unwrap_or_else(|| {
            panic!(
                "template.yaml has no function building {}",
                function.binary()
            )
        })
}

fn variables(template: &Yaml, f: Function) -> &Yaml {
    &function(template, f)["Properties"]["Environment"]["Variables"]
}

/// The names every `!Ref` inside `value` refers to (through `!If` and lists).
fn refs(value: &Yaml) -> Vec<&str> {
    match value {
        Yaml::Tagged(t) if t.tag == "Ref" => t.value.as_str().into_iter().collect(),
        Yaml::Tagged(t) => refs(&t.value),
        Yaml::Sequence(items) => items.iter().flat_map(refs).collect(),
        Yaml::Mapping(m) => m.values().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}

/// A scalar as the template spells it (`10`, `grace`, `"true"` → `true`).
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(value: &Yaml) -> Option<Vec<String>> {
    value.as_sequence()?.iter().map(scalar).collect()
}

/// What the parameter states that `value` does not: one line each.
fn parameter_disagreements(parameter: &str, p: &Yaml, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut expect = |field: &str, template: Option<String>, table: Option<String>| {
        if template != table {
            out.push(format!(
                "{parameter}: {field} is {template:?}, the table says {table:?}"
            ));
        }
    };
    let default = scalar(&p["Default"]);
    match value {
        Value::Number { bounds, .. } => {
            expect("Default", default, Some(bounds.default.to_string()));
            expect(
                "MinValue",
                scalar(&p["MinValue"]),
                Some(bounds.min.to_string()),
            );
            expect(
                "MaxValue",
                scalar(&p["MaxValue"]),
                Some(bounds.max.to_string()),
            );
        }
        Value::Flag { default: d } => {
            expect("Default", default, Some(d.to_string()));
            let flags = ["true", "false"].map(str::to_owned).to_vec();
            expect(
                "AllowedValues",
                list(&p["AllowedValues"]).map(|l| l.join(",")),
                Some(flags.join(",")),
            );
        }
        Value::OneOf(choice) => {
            expect("Default", default, Some(choice.default.to_owned()));
            expect(
                "AllowedValues",
                list(&p["AllowedValues"]).map(|l| l.join(",")),
                Some(choice.allowed.join(",")),
            );
        }
        Value::Text { unset, .. } => {
            // Empty passes "unset"; a default spelled as a value may be passed as such.
            let ok = match (default.as_deref(), unset) {
                (Some(""), _) => true,
                (Some(d), Unset::Is(is)) => d == *is,
                _ => false,
            };
            if !ok {
                out.push(format!(
                    "{parameter}: Default {default:?} is neither empty nor the table's default"
                ));
            }
        }
        Value::Required { .. } => out.push(format!(
            "{parameter}: a required variable cannot come from a parameter alone"
        )),
    }
    out
}

/// What template.yaml does differently from `reading` of `name`.
fn reading_disagreements(template: &Yaml, name: &str, reading: &Reading) -> Vec<String> {
    let binary = reading.function.binary();
    let passed = &variables(template, reading.function)[name];
    let at = format!("template.yaml, {binary}'s {name}");
    match reading.feed {
        Feed::Parameter(parameter) => {
            let p = &template["Parameters"][parameter];
            let mut out = Vec::new();
            if p.is_null() {
                return vec![format!("{at}: no parameter {parameter}")];
            }
            if !refs(passed).contains(&parameter) {
                out.push(format!("{at} should be !Ref {parameter}, not {passed:?}"));
            }
            let described = p["Description"].as_str().unwrap_or_default();
            if !described.contains("docs/SETTINGS.md") || !described.contains(name) {
                out.push(format!(
                    "{parameter}'s Description should point to docs/SETTINGS.md ({name})"
                ));
            }
            out.extend(parameter_disagreements(parameter, p, &reading.value));
            out
        }
        Feed::StackOr(parameter) if !refs(passed).contains(&parameter) => {
            vec![format!(
                "{at} should fall back to !Ref {parameter}, not {passed:?}"
            )]
        }
        Feed::Stack if passed.is_null() => {
            vec![format!("{at} is not set; the stack should set it")]
        }
        Feed::NotSet if !passed.is_null() => {
            vec![format!(
                "{at} is set ({passed:?}); the table says the template leaves it unset"
            )]
        }
        _ => Vec::new(),
    }
}

#[test]
fn template_parameters_and_variables_agree_with_the_table() {
    let template = template();
    let settings = all();
    let mut problems: Vec<String> = settings
        .iter()
        .flat_map(|s| {
            s.readings
                .iter()
                .flat_map(|r| reading_disagreements(&template, s.name, r))
        })
        .collect();
    problems.dedup(); // a parameter read by several functions is reported once
    // Nothing reaches a function that the table does not state it reads.
    for f in Function::ALL {
        let passed = variables(&template, f)
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        for name in passed.keys().filter_map(Yaml::as_str) {
            let stated = settings
                .iter()
                .any(|s| s.name == name && s.readings.iter().any(|r| r.function == f));
            if !stated && !NOT_SETTINGS.contains(&name) {
                problems.push(format!(
                    "template.yaml passes {name} to {}, which the table does not say it reads",
                    f.binary()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "template.yaml and the settings table (crates/aws/src/config/reference.rs) disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The parameters that feed a setting: their defaults and ranges are in docs/SETTINGS.md.
fn setting_parameters() -> Vec<&'static str> {
    all()
        .iter()
        .flat_map(|s| s.readings.iter())
        .filter_map(|r| match r.feed {
            Feed::Parameter(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// DEPLOY's table rows under `heading`: first cell (unquoted) → cells.
fn table(text: &str, heading: &str) -> Vec<(String, Vec<String>)> {
    let section = text
        .split_once(&format!("\n{heading}\n"))
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("docs/DEPLOY.md has no {heading}"));
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            (cells[0].trim_matches('`').to_owned(), cells)
        })
        .collect()
}

#[test]
fn deploy_lists_the_parameters_that_are_not_settings_as_the_template_has_them() {
    let deploy = read("docs/DEPLOY.md");
    let template = template();
    let rows = table(&deploy, "## Parameters");
    let settings = setting_parameters();
    let mut problems = Vec::new();
    let parameters = template["Parameters"]
        .as_mapping()
        .expect("template.yaml has Parameters");
    for (name, p) in parameters
        .iter()
        .filter_map(|(k, p)| Some((k.as_str()?, p)))
    {
        let row = rows.iter().find(|(n, _)| n == name).map(|(_, cells)| cells);
        match (settings.contains(&name), row) {
            (true, Some(_)) => problems.push(format!(
                "{name} is a setting: its row belongs in docs/SETTINGS.md, not DEPLOY"
            )),
            (true, None) => {}
            (false, None) => {
                problems.push(format!("{name} has no row in DEPLOY's parameters table"))
            }
            (false, Some(cells)) => {
                let stated = cells.get(1).map(|c| match c.as_str() {
                    "empty" => String::new(),
                    c => c.trim_matches('`').to_owned(),
                });
                let default = scalar(&p["Default"]).unwrap_or_default();
                if stated.as_deref() != Some(default.as_str()) {
                    problems.push(format!(
                        "{name}: DEPLOY's default {stated:?}, the template's {default:?}"
                    ));
                }
                if let (Some(min), Some(max)) = (scalar(&p["MinValue"]), scalar(&p["MaxValue"])) {
                    let range = format!("{min} to {max}");
                    if !cells.last().is_some_and(|c| c.contains(&range)) {
                        problems.push(format!(
                            "{name}: DEPLOY should state the template's range `{range}`"
                        ));
                    }
                }
            }
        }
    }
    for (name, _) in &rows {
        if parameters.get(name.as_str()).is_none() {
            problems.push(format!(
                "DEPLOY has a row for {name}, which template.yaml does not have"
            ));
        }
    }
    let section = deploy.split("## Parameters").nth(1).unwrap_or_default();
    if !section
        .split("\n## ")
        .next()
        .unwrap_or_default()
        .contains("(SETTINGS.md)")
    {
        problems.push("DEPLOY's parameters section should link SETTINGS.md".to_owned());
    }
    assert!(
        problems.is_empty(),
        "docs/DEPLOY.md and template.yaml disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn function_timeouts_agree_in_deploy_template_and_code() {
    let deploy = read("docs/DEPLOY.md");
    let template = template();
    let rows = table(&deploy, "## Timeouts and memory");
    let mut problems = Vec::new();
    for f in Function::ALL {
        let timeout = function(&template, f)["Properties"]["Timeout"].as_u64();
        let stated = rows
            .iter()
            .find(|(n, _)| n == f.binary())
            .and_then(|(_, cells)| cells.get(1)?.strip_suffix(" s")?.parse::<u64>().ok());
        if stated != timeout {
            problems.push(format!(
                "{}: DEPLOY says {stated:?} s, template.yaml {timeout:?}",
                f.binary()
            ));
        }
    }
    for (f, code) in [
        (Function::Reconcile, RECONCILE_TIMEOUT),
        (Function::PostConfirmation, POST_CONFIRMATION_TIMEOUT),
    ] {
        let timeout = function(&template, f)["Properties"]["Timeout"].as_u64();
        if timeout != Some(code.as_secs()) {
            problems.push(format!(
                "{}: the code budgets with {code:?}, template.yaml says {timeout:?}",
                f.binary()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "function timeouts disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// docs/ARCHITECTURE.md explains the display name with the code's default order.
#[test]
fn architecture_states_the_display_name_default() {
    let text = read("docs/ARCHITECTURE.md");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let default = format!("`{}`", DisplayNamePolicy::DEFAULT);
    assert!(
        folded.contains(&default),
        "docs/ARCHITECTURE.md should state the default {default}"
    );
}

/// The readers find what the documents say.
#[test]
fn the_readers_see_through_tags_and_tables() {
    let yaml: Yaml = serde_yaml::from_str(
        "a: !If [HasX, !Ref X, !If [C, !Sub 'x', !Ref AWS::NoValue]]\nb: !GetAtt R.Arn\n",
    )
    .expect("yaml");
    assert_eq!(refs(&yaml["a"]), ["X", "AWS::NoValue"]);
    assert!(refs(&yaml["b"]).is_empty());
    let text = "x\n## T\n\n| A | B |\n|---|---|\n| `k` | `10` | 1 to 10 |\n\n## U\n| `z` | 1 |\n";
    let rows = table(text, "## T");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "k");
    assert_eq!(rows[0].1[2], "1 to 10");
}
