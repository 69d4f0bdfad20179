//! CloudWatch's embedded metric format (EMF): a JSON object, written as one
//! log line, from which CloudWatch Logs extracts metrics. No API call and no
//! HTTP client: the line reaches CloudWatch Logs like any other log line.
//!
//! The document, as the specification ("Specification: Embedded metric
//! format", CloudWatch User Guide) defines it:
//!
//! ```json
//! {"_aws": {"Timestamp": 1763632800000,
//!           "CloudWatchMetrics": [{"Namespace": "ChimeIdentitySync",
//!                                  "Dimensions": [["FunctionName"]],
//!                                  "Metrics": [{"Name": "Created", "Unit": "Count"}]}]},
//!  "FunctionName": "stack-PostConfirmationFunction-AbC", "Created": 1}
//! ```
//!
//! Every name in `Dimensions` and `Metrics` refers to a member of the root
//! object: a dimension to a string, a metric to a number or an array of at
//! most 100 numbers. One directive holds at most 100 metrics. [`Emf`] keeps
//! to those limits by construction: [`Emf::documents`] splits a metric with
//! more values, or more metrics than one directive holds, over as many
//! documents as needed, each with the dimensions and properties repeated,
//! and refuses what no document could carry (a namespace or dimension value
//! CloudWatch would reject, a value that is not a finite number) with an
//! [`EmfError`] instead of writing a line CloudWatch would silently drop.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use thiserror::Error;

/// Most metric definitions in one directive (and so in one document here).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// Most values in one metric's array.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// Most dimension keys in one dimension set (the specification said 9 before
/// CloudWatch raised its limit to 30 dimensions per metric).
pub const MAX_DIMENSIONS: usize = 30;
/// Longest namespace, dimension name and metric name CloudWatch accepts.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest dimension value CloudWatch accepts.
pub const MAX_DIMENSION_VALUE_CHARS: usize = 1024;

/// A CloudWatch unit (the subset this workspace uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Percent,
    None,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
            Self::Percent => "Percent",
            Self::None => "None",
        }
    }
}

/// Why a document cannot be written. Each names what is wrong, never a
/// value (a dimension value could, by mistake, be someone's data).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmfError {
    #[error(
        "namespace `{0}` is not 1-255 characters of letters, digits, space and `._#:/-` with a non-space"
    )]
    InvalidNamespace(String),
    #[error("name `{0}` is not 1-255 printable ASCII characters (or starts with `:`)")]
    InvalidName(String),
    #[error(
        "the value of dimension `{0}` is not 1-1024 printable ASCII characters with a non-space"
    )]
    InvalidDimensionValue(String),
    #[error("more than {MAX_DIMENSIONS} dimensions")]
    TooManyDimensions,
    #[error("`{0}` is used twice in one document")]
    DuplicateName(String),
    #[error("metric `{0}` has a value that is not a finite number")]
    NotANumber(String),
    /// serde_json refused the document (not expected: every member is a
    /// string, a finite number or a list of them).
    #[error("the document could not be written as JSON: {0}")]
    Json(String),
}

/// One metric and its values.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    unit: Unit,
    values: Vec<f64>,
}

/// An EMF document under construction: a namespace, its dimensions, other
/// root members, and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    namespace: String,
    timestamp_ms: u64,
    dimensions: Vec<(String, String)>,
    properties: Vec<(String, Value)>,
    series: Vec<Series>,
}

impl Emf {
    /// A document in `namespace` whose metrics are stamped `at`.
    pub fn new(namespace: &str, at: SystemTime) -> Self {
        let timestamp_ms = at
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            namespace: namespace.to_owned(),
            timestamp_ms,
            dimensions: Vec::new(),
            properties: Vec::new(),
            series: Vec::new(),
        }
    }

    /// A dimension: part of every metric's identity. Never a user's data: each
    /// distinct value is a separate (billed) metric, and it is kept for 15
    /// months.
    pub fn dimension(mut self, key: &str, value: &str) -> Self {
        self.dimensions.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A root member that is neither a dimension nor a metric (`level`,
    /// `source`): kept in the log line, ignored by the metric extraction.
    pub fn property(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.properties.push((key.to_owned(), value.into()));
        self
    }

    /// A count (unit `Count`), one value.
    pub fn count(self, name: &str, n: u64) -> Self {
        // Counts of one invocation stay far below 2^53, where f64 stops being exact.
        self.values(name, Unit::Count, [n as f64])
    }

    /// A metric with one value per observation (a latency per call). No
    /// values, no metric: CloudWatch has no datapoint without a value.
    pub fn values(mut self, name: &str, unit: Unit, values: impl IntoIterator<Item = f64>) -> Self {
        let values: Vec<f64> = values.into_iter().collect();
        if !values.is_empty() {
            self.series.push(Series {
                name: name.to_owned(),
                unit,
                values,
            });
        }
        self
    }

    /// The documents, each within the specification's limits: metrics with
    /// more than [`MAX_VALUES_PER_METRIC`] values continue in the next
    /// document, and no document holds more than [`MAX_METRICS_PER_DOCUMENT`]
    /// metrics. Every document repeats the dimensions and properties.
    pub fn documents(&self) -> Result<Vec<Value>, EmfError> {
        self.parts()?
            .iter()
            .map(|part| {
                serde_json::to_value(Document {
                    emf: self,
                    metrics: part,
                })
                .map_err(|e| EmfError::Json(e.to_string()))
            })
            .collect()
    }

    /// [`Emf::documents`], each as one line of JSON, written straight from the
    /// document (no `Value` tree: this runs once per invocation, and building
    /// the tree was most of its cost).
    pub fn lines(&self) -> Result<Vec<String>, EmfError> {
        self.parts()?
            .iter()
            .map(|part| {
                serde_json::to_string(&Document {
                    emf: self,
                    metrics: part,
                })
                .map_err(|e| EmfError::Json(e.to_string()))
            })
            .collect()
    }

    /// The metrics of each document, checked.
    fn parts(&self) -> Result<Vec<Part<'_>>, EmfError> {
        self.check()?;
        // Round k holds the k-th chunk of values of every metric.
        let mut rounds: Vec<Vec<(&Series, &[f64])>> = Vec::new();
        for series in &self.series {
            for (k, chunk) in series.values.chunks(MAX_VALUES_PER_METRIC).enumerate() {
                if rounds.len() <= k {
                    rounds.push(Vec::new());
                }
                rounds[k].push((series, chunk));
            }
        }
        if rounds.is_empty() {
            // Dimensions and properties alone: a valid document with no metric.
            rounds.push(Vec::new());
        }
        Ok(rounds
            .iter()
            .flat_map(|round| {
                let mut parts: Vec<Part<'_>> = round
                    .chunks(MAX_METRICS_PER_DOCUMENT)
                    .map(<[_]>::to_vec)
                    .collect();
                if parts.is_empty() {
                    parts.push(Vec::new());
                }
                parts
            })
            .collect())
    }

    fn check(&self) -> Result<(), EmfError> {
        if !valid_namespace(&self.namespace) {
            return Err(EmfError::InvalidNamespace(self.namespace.clone()));
        }
        if self.dimensions.len() > MAX_DIMENSIONS {
            return Err(EmfError::TooManyDimensions);
        }
        let mut seen = std::collections::BTreeSet::from(["_aws"]);
        let names = self
            .dimensions
            .iter()
            .map(|(k, _)| k)
            .chain(self.properties.iter().map(|(k, _)| k))
            .chain(self.series.iter().map(|s| &s.name));
        for name in names {
            if !seen.insert(name.as_str()) {
                return Err(EmfError::DuplicateName(name.clone()));
            }
        }
        for (key, value) in &self.dimensions {
            if !valid_name(key) {
                return Err(EmfError::InvalidName(key.clone()));
            }
            if !valid_dimension_value(value) {
                return Err(EmfError::InvalidDimensionValue(key.clone()));
            }
        }
        for series in &self.series {
            if !valid_name(&series.name) {
                return Err(EmfError::InvalidName(series.name.clone()));
            }
            if series.values.iter().any(|v| !v.is_finite()) {
                return Err(EmfError::NotANumber(series.name.clone()));
            }
        }
        Ok(())
    }
}

/// The metrics of one document, each with its chunk of values.
type Part<'a> = Vec<(&'a Series, &'a [f64])>;

/// One document: the properties, the dimensions, the metrics and the `_aws`
/// directive, as members of one object (names are unique: [`Emf::check`]).
struct Document<'a> {
    emf: &'a Emf,
    metrics: &'a [(&'a Series, &'a [f64])],
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let emf = self.emf;
        let mut root = serializer.serialize_map(None)?;
        for (key, value) in &emf.properties {
            root.serialize_entry(key, value)?;
        }
        for (key, value) in &emf.dimensions {
            root.serialize_entry(key, value)?;
        }
        for (series, values) in self.metrics {
            match values {
                [one] => root.serialize_entry(&series.name, &Num(*one))?,
                many => root.serialize_entry(&series.name, &Nums(many))?,
            }
        }
        root.serialize_entry(
            "_aws",
            &Directive {
                emf,
                metrics: self.metrics,
            },
        )?;
        root.end()
    }
}

/// `{"Timestamp": …, "CloudWatchMetrics": [{"Namespace", "Dimensions", "Metrics"}]}`.
struct Directive<'a> {
    emf: &'a Emf,
    metrics: &'a [(&'a Series, &'a [f64])],
}

impl Serialize for Directive<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut aws = serializer.serialize_map(Some(2))?;
        aws.serialize_entry("Timestamp", &self.emf.timestamp_ms)?;
        aws.serialize_entry("CloudWatchMetrics", &[Metrics(self)])?;
        aws.end()
    }
}

/// The one metric directive of a document.
struct Metrics<'a>(&'a Directive<'a>);

impl Serialize for Metrics<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Directive { emf, metrics } = self.0;
        let keys: Vec<&str> = emf.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let definitions: Vec<Definition> = metrics
            .iter()
            .map(|(series, _)| Definition {
                name: &series.name,
                unit: series.unit.as_str(),
            })
            .collect();
        let mut directive = serializer.serialize_map(Some(3))?;
        directive.serialize_entry("Namespace", &emf.namespace)?;
        directive.serialize_entry("Dimensions", &[keys])?;
        directive.serialize_entry("Metrics", &definitions)?;
        directive.end()
    }
}

#[derive(serde::Serialize)]
struct Definition<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Unit")]
    unit: &'a str,
}

/// A finite `f64` as a JSON number; whole values as integers (`3`, not `3.0`).
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
        }
    }
}

struct Nums<'a>(&'a [f64]);

impl Serialize for Nums<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|v| Num(*v)))
    }
}

/// CloudWatch's namespace rule: letters, digits, space and `._#:/-`, not blank.
fn valid_namespace(ns: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&ns.chars().count())
        && ns.chars().any(|c| c != ' ')
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._#:/-".contains(c))
}

/// Dimension and metric names: printable ASCII, not starting with `:`.
fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && !name.starts_with(':')
        && name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && name.chars().any(|c| c != ' ')
}

/// Dimension values: ASCII without control characters, not blank.
fn valid_dimension_value(value: &str) -> bool {
    (1..=MAX_DIMENSION_VALUE_CHARS).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && value.chars().any(|c| c != ' ')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_763_632_800_123)
    }

    fn emf() -> Emf {
        Emf::new("ChimeIdentitySync", at()).dimension("FunctionName", "stack-IdpSync-1")
    }

    #[test]
    fn a_document_is_the_specifications_shape() {
        let doc = emf()
            .property("level", "INFO")
            .count("Created", 2)
            .values("ChimeCallLatency", Unit::Milliseconds, [12.5, 40.0])
            .documents()
            .unwrap();
        assert_eq!(
            doc,
            vec![json!({
                "_aws": {"Timestamp": 1_763_632_800_123u64, "CloudWatchMetrics": [{
                    "Namespace": "ChimeIdentitySync",
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [{"Name": "Created", "Unit": "Count"},
                                {"Name": "ChimeCallLatency", "Unit": "Milliseconds"}]}]},
                "level": "INFO",
                "FunctionName": "stack-IdpSync-1",
                "Created": 2,
                "ChimeCallLatency": [12.5, 40]
            })]
        );
    }

    #[test]
    fn more_than_a_hundred_values_continue_in_the_next_document() {
        let docs = emf()
            .count("Decisions", 7)
            .values("Latency", Unit::Milliseconds, (0..250).map(f64::from))
            .documents()
            .unwrap();
        assert_eq!(docs.len(), 3);
        let lens: Vec<usize> = docs
            .iter()
            .map(|d| d["Latency"].as_array().unwrap().len())
            .collect();
        assert_eq!(lens, [100, 100, 50]);
        // Every value once, in order.
        let all: Vec<f64> = docs
            .iter()
            .flat_map(|d| d["Latency"].as_array().unwrap().clone())
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(all, (0..250).map(f64::from).collect::<Vec<_>>());
        // The count is not repeated (that would count it three times), the dimension is.
        assert_eq!(docs[0]["Decisions"], 7);
        assert!(docs[1].get("Decisions").is_none() && docs[2].get("Decisions").is_none());
        for d in &docs {
            assert_eq!(d["FunctionName"], "stack-IdpSync-1");
        }
    }

    #[test]
    fn more_than_a_hundred_metrics_are_split_over_documents() {
        let mut e = emf();
        for n in 0..205 {
            e = e.count(&format!("M{n}"), n);
        }
        let docs = e.documents().unwrap();
        let per_doc: Vec<usize> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(per_doc, [100, 100, 5]);
        assert_eq!(docs[2]["M204"], 204);
    }

    #[test]
    fn a_single_value_is_a_number_and_several_an_array() {
        let docs = emf()
            .values("One", Unit::Milliseconds, [1.25])
            .values("None", Unit::Milliseconds, [])
            .documents()
            .unwrap();
        assert_eq!(docs[0]["One"], json!(1.25));
        assert!(docs[0].get("None").is_none(), "no values, no metric");
    }

    #[test]
    fn what_cloudwatch_would_drop_is_refused_by_name() {
        let cases = [
            (
                Emf::new("", at()).count("A", 1),
                EmfError::InvalidNamespace(String::new()),
            ),
            (
                Emf::new("Bad\u{e9}", at()),
                EmfError::InvalidNamespace("Bad\u{e9}".into()),
            ),
            (
                emf().dimension("Who", "ad\u{e9}le"),
                EmfError::InvalidDimensionValue("Who".into()),
            ),
            (
                emf().dimension("Who", "  "),
                EmfError::InvalidDimensionValue("Who".into()),
            ),
            (
                emf().dimension(":x", "v"),
                EmfError::InvalidName(":x".into()),
            ),
            (
                emf().count("FunctionName", 1),
                EmfError::DuplicateName("FunctionName".into()),
            ),
            (
                emf().count("_aws", 1),
                EmfError::DuplicateName("_aws".into()),
            ),
            (
                emf().values("L", Unit::Milliseconds, [f64::NAN]),
                EmfError::NotANumber("L".into()),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.documents(), Err(want));
        }
        let mut many = Emf::new("N", at());
        for n in 0..=MAX_DIMENSIONS {
            many = many.dimension(&format!("D{n}"), "v");
        }
        assert_eq!(many.documents(), Err(EmfError::TooManyDimensions));
        // The error never quotes a dimension's value.
        let err = emf().dimension("Who", "ad\u{e9}le@example.com").documents();
        assert!(!format!("{err:?}").contains("example.com"));
    }

    #[test]
    fn lines_are_one_json_object_each() {
        let lines = emf().count("A", 1).lines().unwrap();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let back: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(back["A"], 1);
    }
}
