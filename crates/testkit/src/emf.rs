//! A validator of CloudWatch embedded metric format (EMF) documents, written
//! from the published specification ("Specification: Embedded metric
//! format", Amazon CloudWatch User Guide), independently of the code that
//! writes them (`chime_sync_core::metrics::emf`), and the one check the tests
//! add on top: that no dimension holds anything but the function's name.
//!
//! What the specification requires, as checked here:
//! - the log event is one JSON object, nothing before or after it, at most
//!   1 MB (256 KB in earlier versions of the page: the stricter is checked);
//! - the root has `_aws`, an object with exactly `Timestamp` (an integer, ms
//!   since the epoch; CloudWatch accepts up to two weeks past and two hours
//!   ahead) and `CloudWatchMetrics` (an array of MetricDirectives);
//! - a MetricDirective has exactly `Namespace` (a string of 1–255),
//!   `Dimensions` (an array of DimensionSets) and `Metrics` (an array of at
//!   most 100 MetricDefinitions);
//! - a DimensionSet is an array of at most 30 (9 in earlier versions)
//!   strings, each naming a root member whose value is a string (CloudWatch's
//!   Dimension: 1–1024 ASCII characters, not only whitespace, no controls);
//! - a MetricDefinition has `Name` (a string of 1–255 naming a root member
//!   that is a number or an array of at most 100 numbers), optionally `Unit`
//!   (one of CloudWatch's units) and `StorageResolution` (1 or 60), and
//!   nothing else;
//! - targets are root members, never nested (`"A.a"` names the member
//!   `"A.a"`, not `a` inside `A`).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Largest log event the specification allows (the stricter of its versions).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
pub const MAX_METRICS: usize = 100;
pub const MAX_VALUES: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;

/// CloudWatch's units (MetricDatum, and the specification's JSON schema).
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric the document publishes: namespace, name, unit, its dimension
/// sets as (key, value) pairs, and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    pub dimension_sets: Vec<Vec<(String, String)>>,
    pub values: Vec<f64>,
}

/// Whether a log line is meant as an EMF document (it has `_aws`).
pub fn is_emf(line: &Value) -> bool {
    line.get("_aws").is_some()
}

/// Validate one log line against the specification; what it publishes, or
/// every rule it breaks.
pub fn validate(line: &str) -> Result<Vec<Published>, Vec<String>> {
    let mut errors = Vec::new();
    if line.len() > MAX_EVENT_BYTES {
        errors.push(format!("{} bytes, more than {MAX_EVENT_BYTES}", line.len()));
    }
    // serde_json refuses trailing data: "no additional data at the beginning or end".
    let root: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Err(vec![format!("not one JSON value: {e}")]),
    };
    let Some(root) = root.as_object() else {
        return Err(vec!["the log event is not a JSON object".into()]);
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return Err(vec!["no `_aws` object at the root".into()]);
    };
    only_members(
        aws,
        &["Timestamp", "CloudWatchMetrics"],
        "_aws",
        &mut errors,
    );
    check_timestamp(aws.get("Timestamp"), &mut errors);
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        errors.push("`_aws.CloudWatchMetrics` is not an array".into());
        return Err(errors);
    };
    let mut published = Vec::new();
    for (i, directive) in directives.iter().enumerate() {
        let at = format!("CloudWatchMetrics[{i}]");
        match directive.as_object() {
            Some(d) => published.extend(check_directive(root, d, &at, &mut errors)),
            None => errors.push(format!("{at} is not an object")),
        }
    }
    if errors.is_empty() {
        Ok(published)
    } else {
        Err(errors)
    }
}

fn only_members(object: &Map<String, Value>, allowed: &[&str], at: &str, errors: &mut Vec<String>) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.push(format!(
                "{at} has a member the specification does not define: `{key}`"
            ));
        }
    }
}

/// `value` as an array, noting in `errors` when it is none or holds more than `max` items.
fn bounded_array<'v>(
    value: Option<&'v Value>,
    max: usize,
    at: &str,
    errors: &mut Vec<String>,
) -> Option<&'v Vec<Value>> {
    let Some(items) = value.and_then(Value::as_array) else {
        errors.push(format!("{at} is not an array"));
        return None;
    };
    if items.len() > max {
        errors.push(format!("{at} has {} items, more than {max}", items.len()));
    }
    Some(items)
}

fn check_timestamp(timestamp: Option<&Value>, errors: &mut Vec<String>) {
    let Some(ms) = timestamp.and_then(Value::as_u64) else {
        errors.push("`_aws.Timestamp` is not an integer of milliseconds".into());
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let (two_weeks, two_hours) = (14 * 24 * 3_600_000, 2 * 3_600_000);
    if ms + two_weeks < now || ms > now + two_hours {
        errors.push(format!(
            "`_aws.Timestamp` {ms} is outside what CloudWatch accepts (now {now})"
        ));
    }
}

fn name_ok(name: &str) -> bool {
    (1..=255).contains(&name.chars().count())
}

fn check_directive(
    root: &Map<String, Value>,
    directive: &Map<String, Value>,
    at: &str,
    errors: &mut Vec<String>,
) -> Vec<Published> {
    only_members(
        directive,
        &["Namespace", "Dimensions", "Metrics"],
        at,
        errors,
    );
    let namespace = match directive.get("Namespace").and_then(Value::as_str) {
        Some(ns) if name_ok(ns) => ns.to_owned(),
        other => {
            errors.push(format!(
                "{at}.Namespace is not a string of 1-255: {other:?}"
            ));
            String::new()
        }
    };
    let mut dimension_sets = Vec::new();
    match directive.get("Dimensions").and_then(Value::as_array) {
        None => errors.push(format!("{at}.Dimensions is not an array")),
        Some(sets) => {
            for (j, set) in sets.iter().enumerate() {
                let at = format!("{at}.Dimensions[{j}]");
                dimension_sets.push(check_dimension_set(root, set, &at, errors));
            }
        }
    }
    let at_metrics = format!("{at}.Metrics");
    let Some(definitions) =
        bounded_array(directive.get("Metrics"), MAX_METRICS, &at_metrics, errors)
    else {
        return Vec::new();
    };
    let mut published = Vec::new();
    for (k, definition) in definitions.iter().enumerate() {
        let at = format!("{at}.Metrics[{k}]");
        let Some(definition) = definition.as_object() else {
            errors.push(format!("{at} is not an object"));
            continue;
        };
        only_members(
            definition,
            &["Name", "Unit", "StorageResolution"],
            &at,
            errors,
        );
        let Some(name) = definition
            .get("Name")
            .and_then(Value::as_str)
            .filter(|n| name_ok(n))
        else {
            errors.push(format!("{at}.Name is not a string of 1-255"));
            continue;
        };
        let unit = match definition.get("Unit") {
            None => "None".to_owned(),
            Some(Value::String(u)) if UNITS.contains(&u.as_str()) => u.clone(),
            Some(other) => {
                errors.push(format!("{at}.Unit {other} is not a CloudWatch unit"));
                String::new()
            }
        };
        if let Some(r) = definition.get("StorageResolution")
            && r != 1
            && r != 60
        {
            errors.push(format!("{at}.StorageResolution {r} is not 1 or 60"));
        }
        let values = match root.get(name) {
            Some(Value::Number(n)) => n.as_f64().into_iter().collect(),
            Some(Value::Array(items))
                if !items.is_empty()
                    && items.len() <= MAX_VALUES
                    && items.iter().all(Value::is_number) =>
            {
                items.iter().filter_map(Value::as_f64).collect()
            }
            other => {
                errors.push(format!(
                    "metric `{name}`: the root member is not a number or an array of 1-{MAX_VALUES} numbers: {other:?}"
                ));
                Vec::new()
            }
        };
        published.push(Published {
            namespace: namespace.clone(),
            name: name.to_owned(),
            unit,
            dimension_sets: dimension_sets.clone(),
            values,
        });
    }
    published
}

fn check_dimension_set(
    root: &Map<String, Value>,
    set: &Value,
    at: &str,
    errors: &mut Vec<String>,
) -> Vec<(String, String)> {
    let Some(keys) = bounded_array(Some(set), MAX_DIMENSIONS, at, errors) else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut pairs = Vec::new();
    for key in keys {
        let Some(key) = key.as_str().filter(|k| name_ok(k)) else {
            errors.push(format!("{at}: a key is not a string of 1-255: {key}"));
            continue;
        };
        if !seen.insert(key) {
            errors.push(format!("{at}: `{key}` twice"));
        }
        match root.get(key) {
            Some(Value::String(v))
                if (1..=1024).contains(&v.len())
                    && v.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
                    && v.chars().any(|c| !c.is_whitespace()) =>
            {
                pairs.push((key.to_owned(), v.clone()));
            }
            other => errors.push(format!(
                "{at}: dimension `{key}` is not a root string of 1-1024 printable ASCII characters: {other:?}"
            )),
        }
    }
    pairs
}

/// An EMF log line as text and its metrics; panics with the errors if it does not validate.
fn validated(line: &Value) -> (String, Vec<Published>) {
    let text = line.to_string();
    let published =
        validate(&text).unwrap_or_else(|errors| panic!("not valid EMF: {errors:#?}\n{text}"));
    (text, published)
}

/// Every EMF line of a function's log but the refusal reasons'
/// ([`reasons`]): each must validate, and its only dimension must be
/// `FunctionName` = `function_name`. The lines' metrics, per line.
pub fn function_metrics(log_lines: &[Value], function_name: &str) -> Vec<Vec<Published>> {
    log_lines
        .iter()
        .filter(|l| is_emf(l) && l.get("Reason").is_none())
        .map(|line| {
            let (text, published) = validated(line);
            for metric in &published {
                for set in &metric.dimension_sets {
                    assert_eq!(
                        set,
                        &[("FunctionName".to_owned(), function_name.to_owned())],
                        "a dimension other than the function's name: {text}"
                    );
                }
            }
            published
        })
        .collect()
}

/// The `Reason` of every `RefusedByReason` line, in order; each line must
/// validate and count 1 by exactly `FunctionName` and `Reason`.
pub fn reasons(log_lines: &[Value], function_name: &str) -> Vec<String> {
    log_lines
        .iter()
        .filter(|l| is_emf(l) && l.get("Reason").is_some())
        .map(|line| {
            let (text, published) = validated(line);
            let reason = line["Reason"].as_str().unwrap_or_default().to_owned();
            assert_eq!(published.len(), 1, "{text}");
            assert_eq!(published[0].name, "RefusedByReason", "{text}");
            assert_eq!(published[0].values, [1.0], "{text}");
            assert_eq!(
                published[0].dimension_sets,
                [vec![
                    ("FunctionName".to_owned(), function_name.to_owned()),
                    ("Reason".to_owned(), reason.clone())
                ]],
                "{text}"
            );
            reason
        })
        .collect()
}

/// The sum of every value of metric `name` over all lines.
pub fn sum(lines: &[Vec<Published>], name: &str) -> f64 {
    values(lines, name).iter().sum()
}

/// Every value of metric `name` over all lines, in order.
pub fn values(lines: &[Vec<Published>], name: &str) -> Vec<f64> {
    lines
        .iter()
        .flatten()
        .filter(|p| p.name == name)
        .flat_map(|p| p.values.iter().copied())
        .collect()
}
