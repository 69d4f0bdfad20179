//! Every setting with a range or a default says the same in each place a
//! person may read it: README.md, docs/DEPLOY.md, template.yaml, and the
//! configuration code that enforces it. A disagreement fails the test with a
//! table of what each source says.
//!
//! The documents are read as people read them: README's table of
//! environment variables (`default N`, `N–M`), DEPLOY's table of parameters
//! (the default column, `N to M`), the template's `Parameters` (`Default`,
//! `MinValue`, `MaxValue`) and that the function receives the parameter
//! (`Environment.Variables.VAR: !Ref Param`), and the functions' timeouts.
//! The code is asked, not copied: the configuration parser must give the
//! stated default when the variable is unset, accept the stated minimum and
//! maximum, and refuse one below and one above.
//!
//! To cover a new setting, add a [`Setting`] to [`settings`] naming where
//! each source states it.

use std::collections::BTreeMap;
use std::path::Path;

use chime_sync_aws::config::{self, IdpSyncConfig, PostConfirmationConfig, ReconcileConfig};
use chime_sync_core::DisplayNamePolicy;
use chime_sync_core::directory::DeleteMode;
use chime_sync_core::handlers::pre_signup::SignUpRejected;

/// What one source says about a setting; `None`: it does not say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Stated {
    default: Option<u64>,
    min: Option<u64>,
    max: Option<u64>,
}

/// Where a document states a setting.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// README's environment table, the row of this variable; for a variable
    /// several functions read, the part of the row after `function:`.
    ReadmeVariable {
        variable: &'static str,
        function: Option<&'static str>,
    },
    /// README prose stating the default: `before` N `after`.
    ReadmePhrase {
        before: &'static str,
        after: &'static str,
    },
    /// docs/DEPLOY.md's parameters table, the row of this parameter.
    DeployParameter(&'static str),
    /// template.yaml's parameter; with `passed_as`, the function (binary)
    /// must receive it as that environment variable.
    TemplateParameter {
        parameter: &'static str,
        passed_as: Option<(&'static str, &'static str)>,
    },
    /// docs/DEPLOY.md's timeouts table, the row of this function (seconds).
    DeployTimeout(&'static str),
    /// template.yaml's `Timeout` of this function (seconds).
    TemplateTimeout(&'static str),
}

/// How the code states a setting.
#[derive(Clone, Copy)]
enum Code {
    /// The configuration parser, given the variable's value (`None`: unset):
    /// the value it uses, or its error.
    Parser(fn(Option<&str>) -> Result<u64, String>),
    /// A constant the code budgets with.
    Constant(u64),
}

/// One setting and everywhere it is stated.
struct Setting {
    name: &'static str,
    sources: Vec<Source>,
    code: Vec<(&'static str, Code)>,
}

const ARN: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/demo";
const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/sync.fifo";

/// A function's required variables (`APP_INSTANCE_ARN`, `LEDGER_TABLE` and
/// its queue's URL), plus `variable` set to `value` (`None`: unset): the lookup its
/// configuration reads.
fn lookup(
    queue_variable: &'static str,
    variable: &'static str,
    value: Option<&str>,
) -> impl Fn(&str) -> Option<String> {
    let value = value.map(str::to_owned);
    move |name| match name {
        "APP_INSTANCE_ARN" => Some(ARN.to_owned()),
        "LEDGER_TABLE" => Some("ledger".to_owned()),
        n if n == queue_variable => Some(QUEUE.to_owned()),
        n if n == variable => value.clone(),
        _ => None,
    }
}

/// post-confirmation's configuration with `variable` set to `value`.
fn post_confirmation(
    variable: &'static str,
    value: Option<&str>,
) -> Result<PostConfirmationConfig, String> {
    PostConfirmationConfig::from_lookup(lookup("SYNC_QUEUE_URL", variable, value))
        .map_err(|e| e.to_string())
}

/// idp-sync's configuration with `variable` set to `value`.
fn idp_sync(variable: &'static str, value: Option<&str>) -> Result<IdpSyncConfig, String> {
    IdpSyncConfig::from_lookup(lookup("DLQ_URL", variable, value)).map_err(|e| e.to_string())
}

/// reconcile's configuration with `variable` set to `value`.
fn reconcile(variable: &'static str, value: Option<&str>) -> Result<ReconcileConfig, String> {
    let base = lookup("SYNC_QUEUE_URL", variable, value);
    ReconcileConfig::from_lookup(move |name| match name {
        "USER_POOL_ID" if name != variable => Some("us-east-1_AbCdEf123".to_owned()),
        _ => base(name),
    })
    .map_err(|e| e.to_string())
}

/// The grace days of a delete mode (0 when immediate).
fn grace_days(mode: DeleteMode) -> u64 {
    match mode {
        DeleteMode::Grace { days } => u64::from(days),
        DeleteMode::Immediate => 0,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).expect("milliseconds fit")
}

/// Every documented setting with a range or a default.
fn settings() -> Vec<Setting> {
    use Source::*;
    vec![
        Setting {
            name: "CHIME_BUDGET_MS of post-confirmation",
            sources: vec![
                ReadmeVariable {
                    variable: "CHIME_BUDGET_MS",
                    function: Some("post-confirmation"),
                },
                DeployParameter("ChimeBudgetMs"),
                TemplateParameter {
                    parameter: "ChimeBudgetMs",
                    passed_as: Some(("post-confirmation", "CHIME_BUDGET_MS")),
                },
            ],
            code: vec![(
                "PostConfirmationConfig",
                Code::Parser(|v| {
                    post_confirmation("CHIME_BUDGET_MS", v).map(|c| millis(c.chime_budget()))
                }),
            )],
        },
        Setting {
            name: "CHIME_BUDGET_MS of idp-sync",
            sources: vec![ReadmeVariable {
                variable: "CHIME_BUDGET_MS",
                function: Some("idp-sync"),
            }],
            code: vec![(
                "IdpSyncConfig",
                Code::Parser(|v| {
                    idp_sync("CHIME_BUDGET_MS", v).map(|c| millis(c.chime.operation_timeout))
                }),
            )],
        },
        Setting {
            name: "CHIME_MAX_ATTEMPTS",
            sources: vec![ReadmeVariable {
                variable: "CHIME_MAX_ATTEMPTS",
                function: None,
            }],
            code: vec![
                (
                    "PostConfirmationConfig",
                    Code::Parser(|v| {
                        post_confirmation("CHIME_MAX_ATTEMPTS", v)
                            .map(|c| u64::from(c.chime.max_attempts))
                    }),
                ),
                (
                    "IdpSyncConfig",
                    Code::Parser(|v| {
                        idp_sync("CHIME_MAX_ATTEMPTS", v).map(|c| u64::from(c.chime.max_attempts))
                    }),
                ),
            ],
        },
        Setting {
            name: "MAX_CONCURRENT_GROUPS",
            sources: vec![
                ReadmeVariable {
                    variable: "MAX_CONCURRENT_GROUPS",
                    function: None,
                },
                DeployParameter("MaxConcurrentGroups"),
                TemplateParameter {
                    parameter: "MaxConcurrentGroups",
                    passed_as: Some(("idp-sync", "MAX_CONCURRENT_GROUPS")),
                },
            ],
            code: vec![(
                "IdpSyncConfig",
                Code::Parser(|v| {
                    idp_sync("MAX_CONCURRENT_GROUPS", v).map(|c| c.max_concurrent_groups as u64)
                }),
            )],
        },
        Setting {
            name: "SyncMaxReceiveCount (redrive)",
            sources: vec![
                ReadmePhrase {
                    before: "redrive after ",
                    after: " receives",
                },
                DeployParameter("SyncMaxReceiveCount"),
                TemplateParameter {
                    parameter: "SyncMaxReceiveCount",
                    passed_as: None,
                },
            ],
            code: vec![],
        },
        Setting {
            name: "SyncMaxConcurrency",
            sources: vec![
                DeployParameter("SyncMaxConcurrency"),
                TemplateParameter {
                    parameter: "SyncMaxConcurrency",
                    passed_as: None,
                },
            ],
            code: vec![],
        },
        Setting {
            name: "HandOffAlarmPercent",
            sources: vec![
                DeployParameter("HandOffAlarmPercent"),
                TemplateParameter {
                    parameter: "HandOffAlarmPercent",
                    passed_as: None,
                },
            ],
            code: vec![],
        },
        Setting {
            name: "CHIME_BUDGET_MS of reconcile",
            sources: vec![ReadmeVariable {
                variable: "CHIME_BUDGET_MS",
                function: Some("reconcile"),
            }],
            code: vec![(
                "ReconcileConfig",
                Code::Parser(|v| {
                    reconcile("CHIME_BUDGET_MS", v).map(|c| millis(c.chime.operation_timeout))
                }),
            )],
        },
        Setting {
            name: "DELETE_LIMIT",
            sources: vec![
                ReadmeVariable {
                    variable: "DELETE_LIMIT",
                    function: None,
                },
                DeployParameter("DeleteLimit"),
                TemplateParameter {
                    parameter: "DeleteLimit",
                    passed_as: Some(("reconcile", "DELETE_LIMIT")),
                },
            ],
            code: vec![(
                "ReconcileConfig",
                Code::Parser(|v| {
                    reconcile("DELETE_LIMIT", v).map(|c| c.settings.breaker.limit as u64)
                }),
            )],
        },
        Setting {
            name: "DELETE_LIMIT_PERCENT",
            sources: vec![
                ReadmeVariable {
                    variable: "DELETE_LIMIT_PERCENT",
                    function: None,
                },
                DeployParameter("DeleteLimitPercent"),
                TemplateParameter {
                    parameter: "DeleteLimitPercent",
                    passed_as: Some(("reconcile", "DELETE_LIMIT_PERCENT")),
                },
            ],
            code: vec![(
                "ReconcileConfig",
                Code::Parser(|v| {
                    reconcile("DELETE_LIMIT_PERCENT", v)
                        .map(|c| u64::from(c.settings.breaker.percent))
                }),
            )],
        },
        Setting {
            name: "DELETE_GRACE_DAYS",
            sources: vec![
                ReadmeVariable {
                    variable: "DELETE_GRACE_DAYS",
                    function: None,
                },
                DeployParameter("DeleteGraceDays"),
                TemplateParameter {
                    parameter: "DeleteGraceDays",
                    passed_as: Some(("idp-sync", "DELETE_GRACE_DAYS")),
                },
                TemplateParameter {
                    parameter: "DeleteGraceDays",
                    passed_as: Some(("reconcile", "DELETE_GRACE_DAYS")),
                },
            ],
            code: vec![
                (
                    "IdpSyncConfig",
                    Code::Parser(|v| {
                        idp_sync("DELETE_GRACE_DAYS", v).map(|c| grace_days(c.rules.delete_mode))
                    }),
                ),
                (
                    "ReconcileConfig",
                    Code::Parser(|v| {
                        reconcile("DELETE_GRACE_DAYS", v)
                            .map(|c| grace_days(c.settings.delete_mode))
                    }),
                ),
            ],
        },
        Setting {
            name: "COGNITO_QUOTA_SHARE_PERCENT",
            sources: vec![
                ReadmeVariable {
                    variable: "COGNITO_QUOTA_SHARE_PERCENT",
                    function: None,
                },
                DeployParameter("CognitoQuotaSharePercent"),
                TemplateParameter {
                    parameter: "CognitoQuotaSharePercent",
                    passed_as: Some(("reconcile", "COGNITO_QUOTA_SHARE_PERCENT")),
                },
            ],
            code: vec![(
                "ReconcileConfig",
                Code::Parser(|v| {
                    reconcile("COGNITO_QUOTA_SHARE_PERCENT", v).map(|c| {
                        let share = c.settings.pool_rate
                            / chime_sync_core::user_pool::LIST_USERS_QUOTA_RPS
                            * 100.0;
                        share.round() as u64
                    })
                }),
            )],
        },
        Setting {
            name: "ReconcileScheduleMinutes",
            sources: vec![
                ReadmePhrase {
                    before: "a cycle starts every ",
                    after: " minutes",
                },
                DeployParameter("ReconcileScheduleMinutes"),
                TemplateParameter {
                    parameter: "ReconcileScheduleMinutes",
                    passed_as: None,
                },
            ],
            code: vec![],
        },
        Setting {
            name: "reconcile's timeout (s)",
            sources: vec![DeployTimeout("reconcile"), TemplateTimeout("reconcile")],
            code: vec![(
                "config::RECONCILE_TIMEOUT",
                Code::Constant(config::RECONCILE_TIMEOUT.as_secs()),
            )],
        },
        Setting {
            name: "post-confirmation's timeout (s)",
            sources: vec![
                DeployTimeout("post-confirmation"),
                TemplateTimeout("post-confirmation"),
            ],
            code: vec![(
                "config::POST_CONFIRMATION_TIMEOUT",
                Code::Constant(config::POST_CONFIRMATION_TIMEOUT.as_secs()),
            )],
        },
        Setting {
            name: "pre-signup's timeout (s)",
            sources: vec![DeployTimeout("pre-signup"), TemplateTimeout("pre-signup")],
            code: vec![],
        },
        Setting {
            name: "idp-sync's timeout (s)",
            sources: vec![DeployTimeout("idp-sync"), TemplateTimeout("idp-sync")],
            code: vec![],
        },
    ]
}

// ---------------------------------------------------------------------------
// Reading the sources
// ---------------------------------------------------------------------------

struct Documents {
    readme: String,
    deploy: String,
    template: serde_yaml::Value,
}

impl Documents {
    fn load() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |path: &str| {
            std::fs::read_to_string(root.join(path))
                .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        };
        Self {
            readme: read("README.md"),
            deploy: read("docs/DEPLOY.md"),
            template: serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML"),
        }
    }

    /// What `source` states; panics when the place it names is missing,
    /// so a renamed row cannot silently drop out of the comparison.
    fn stated(&self, source: Source) -> Stated {
        match source {
            Source::ReadmeVariable { variable, function } => {
                let cell = last_cell(table_row(&self.readme, variable, "README.md"));
                let part = match function {
                    None => cell,
                    Some(f) => {
                        let (_, after) = cell.split_once(&format!("{f}:")).unwrap_or_else(|| {
                            panic!("README.md: the row of {variable} says nothing for {f}: {cell}")
                        });
                        after.split(';').next().unwrap_or(after)
                    }
                };
                let (min, max) = range(part, "–").unzip();
                Stated {
                    default: number_after(part, "default "),
                    min,
                    max,
                }
            }
            Source::ReadmePhrase { before, after } => {
                let at = self
                    .readme
                    .find(before)
                    .unwrap_or_else(|| panic!("README.md never says {before:?}"));
                let rest = &self.readme[at + before.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                assert!(
                    rest[digits.len()..].starts_with(after),
                    "README.md: {before:?} is not followed by a number and {after:?}"
                );
                Stated {
                    default: digits.parse().ok(),
                    ..Stated::default()
                }
            }
            Source::DeployParameter(parameter) => {
                let row = table_row(&self.deploy, parameter, "docs/DEPLOY.md");
                let cells = cells(row);
                let (min, max) = range(cells.get(2).copied().unwrap_or_default(), " to ").unzip();
                Stated {
                    default: cells.get(1).and_then(|c| c.trim_matches('`').parse().ok()),
                    min,
                    max,
                }
            }
            Source::TemplateParameter {
                parameter,
                passed_as,
            } => {
                let p = &self.template["Parameters"][parameter];
                assert!(!p.is_null(), "template.yaml has no parameter {parameter}");
                if let Some((binary, variable)) = passed_as {
                    let value =
                        &self.function(binary)["Properties"]["Environment"]["Variables"][variable];
                    assert_eq!(
                        tagged_ref(value),
                        Some(parameter),
                        "template.yaml: {binary} should get {variable}: !Ref {parameter}, not {value:?}"
                    );
                }
                Stated {
                    default: p["Default"].as_u64(),
                    min: p["MinValue"].as_u64(),
                    max: p["MaxValue"].as_u64(),
                }
            }
            Source::DeployTimeout(binary) => {
                let row = table_row(&self.deploy, binary, "docs/DEPLOY.md (timeouts)");
                Stated {
                    default: cells(row)
                        .get(1)
                        .and_then(|c| c.strip_suffix(" s"))
                        .and_then(|n| n.parse().ok()),
                    ..Stated::default()
                }
            }
            Source::TemplateTimeout(binary) => Stated {
                default: self.function(binary)["Properties"]["Timeout"].as_u64(),
                ..Stated::default()
            },
        }
    }

    /// The template's function whose `BuildProperties.Binary` is `binary`.
    fn function(&self, binary: &str) -> &serde_yaml::Value {
        self.template["Resources"]
            .as_mapping()
            .expect("template.yaml has Resources")
            .values()
            .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .unwrap_or_else(|| panic!("template.yaml has no function building {binary}"))
    }
}

/// `!Ref X` as serde_yaml reads it: X.
fn tagged_ref(value: &serde_yaml::Value) -> Option<&str> {
    match value {
        serde_yaml::Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

/// The first table row of `text` whose first cell is `` `key` ``.
fn table_row<'t>(text: &'t str, key: &str, file: &str) -> &'t str {
    let start = format!("| `{key}` |");
    text.lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("{file} has no table row for `{key}`"))
}

/// A table row's cells, trimmed (the outer pipes give empty ends).
fn cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split(" | ").map(str::trim).collect()
}

fn last_cell(row: &str) -> &str {
    cells(row).pop().unwrap_or_default()
}

/// The number right after the first `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let at = text.find(prefix)?;
    let digits: String = text[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The first `A{separator}B` of two numbers in `text`.
fn range(text: &str, separator: &str) -> Option<(u64, u64)> {
    text.match_indices(separator).find_map(|(at, _)| {
        let before: String = text[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let after = number_after(&text[at..], separator)?;
        Some((before.parse().ok()?, after))
    })
}

// ---------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------

/// Reads one field of what a source states.
type Field = fn(&Stated) -> Option<u64>;

/// The disagreements among `stated` (source name, what it says): one line
/// per field on which two sources that state it differ.
fn disagreements(setting: &str, stated: &[(String, Stated)]) -> Vec<String> {
    let fields: [(&str, Field); 3] = [
        ("default", |s| s.default),
        ("minimum", |s| s.min),
        ("maximum", |s| s.max),
    ];
    let mut out = Vec::new();
    for (field, get) in fields {
        let said: BTreeMap<&str, u64> = stated
            .iter()
            .filter_map(|(source, s)| get(s).map(|v| (source.as_str(), v)))
            .collect();
        let mut values: Vec<u64> = said.values().copied().collect();
        values.sort_unstable();
        values.dedup();
        if values.len() > 1 {
            let each: Vec<String> = said.iter().map(|(s, v)| format!("{s} {v}")).collect();
            out.push(format!("{setting}: {field} differs: {}", each.join(", ")));
        }
    }
    out
}

/// The agreed value of each field (the documents' and the constants').
fn agreed(stated: &[(String, Stated)]) -> Stated {
    let first = |get: Field| stated.iter().find_map(|(_, s)| get(s));
    Stated {
        default: first(|s| s.default),
        min: first(|s| s.min),
        max: first(|s| s.max),
    }
}

/// Whether the parser behaves as `expected` says: the default when unset,
/// the bounds accepted, one past each refused. The failures, as lines.
fn check_parser(
    setting: &str,
    name: &str,
    parse: fn(Option<&str>) -> Result<u64, String>,
    expected: Stated,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut expect = |value: Option<u64>, want: Result<u64, ()>| {
        let text = value.map(|v| v.to_string());
        let got = parse(text.as_deref());
        let ok = match (&got, want) {
            (Ok(g), Ok(w)) => *g == w,
            (Err(_), Err(())) => true,
            _ => false,
        };
        if !ok {
            let shown = text.as_deref().unwrap_or("unset");
            let want = want.map_or("an error".to_owned(), |w| w.to_string());
            out.push(format!(
                "{setting}: {name} with {shown} gives {got:?}, the documents say {want}"
            ));
        }
    };
    if let Some(default) = expected.default {
        expect(None, Ok(default));
    }
    if let Some(min) = expected.min {
        expect(Some(min), Ok(min));
        if min > 0 {
            expect(Some(min - 1), Err(()));
        }
    }
    if let Some(max) = expected.max {
        expect(Some(max), Ok(max));
        expect(Some(max + 1), Err(()));
    }
    out
}

#[test]
fn every_range_and_default_is_the_same_in_docs_template_and_code() {
    let docs = Documents::load();
    let mut problems = Vec::new();
    for setting in settings() {
        let mut stated: Vec<(String, Stated)> = setting
            .sources
            .iter()
            .map(|s| (source_name(*s), docs.stated(*s)))
            .collect();
        for (name, code) in &setting.code {
            if let Code::Constant(value) = code {
                stated.push((
                    (*name).to_owned(),
                    Stated {
                        default: Some(*value),
                        ..Stated::default()
                    },
                ));
            }
        }
        // A comparison needs two sides, and the documents must say the default.
        assert!(
            setting.sources.len() + setting.code.len() >= 2,
            "{}: name at least two places that state it",
            setting.name
        );
        assert!(
            stated.iter().any(|(_, s)| s.default.is_some()),
            "{}: no source states the default: {stated:?}",
            setting.name
        );
        for (source, s) in &stated {
            assert!(
                *s != Stated::default(),
                "{}: {source} states nothing that could be read",
                setting.name
            );
        }
        problems.extend(disagreements(setting.name, &stated));
        let expected = agreed(&stated);
        for (name, code) in &setting.code {
            if let Code::Parser(parse) = code {
                problems.extend(check_parser(setting.name, name, *parse, expected));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "documents, template and code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The built-in display-name order is text, not a number: README's and
/// DEPLOY's rows, the template's parameter and docs/ARCHITECTURE.md each state
/// the code's `DisplayNamePolicy::DEFAULT`, and README quotes the rejection a
/// sign-up without a name gets under it.
#[test]
fn the_display_name_order_is_stated_as_the_code_has_it() {
    let docs = Documents::load();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let template = docs.template["Parameters"]["DisplayNameAttributes"]["Description"]
        .as_str()
        .expect("DisplayNameAttributes has a Description");
    let default = format!("`{}`", DisplayNamePolicy::DEFAULT);
    for (source, text) in [
        (
            "README.md",
            table_row(&docs.readme, "DISPLAY_NAME_ATTRIBUTES", "README.md"),
        ),
        (
            "docs/DEPLOY.md",
            table_row(&docs.deploy, "DisplayNameAttributes", "docs/DEPLOY.md"),
        ),
        ("template.yaml", template),
        ("docs/ARCHITECTURE.md", architecture.as_str()),
    ] {
        // Folded: the template's and ARCHITECTURE's prose is wrapped.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.contains(&default),
            "{source} should state the default {default}: {text}"
        );
    }
    let readme = docs.readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let rejection = SignUpRejected::NoDisplayName(DisplayNamePolicy::default().describe());
    assert!(
        readme.contains(&rejection.to_string()),
        "README.md should quote {rejection}"
    );
}

fn source_name(source: Source) -> String {
    match source {
        Source::ReadmeVariable { function, .. } => match function {
            Some(f) => format!("README ({f})"),
            None => "README".to_owned(),
        },
        Source::ReadmePhrase { .. } => "README (prose)".to_owned(),
        Source::DeployParameter(_) | Source::DeployTimeout(_) => "docs/DEPLOY.md".to_owned(),
        Source::TemplateParameter { .. } | Source::TemplateTimeout(_) => "template.yaml".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// The checker itself
// ---------------------------------------------------------------------------

#[test]
fn the_readers_find_what_the_documents_say() {
    let row = "| `CHIME_BUDGET_MS` | a, b | Longest. a: default 2000 (100–2000), and x; b: default 5000 (100–900000) per call. |";
    let cell = last_cell(row);
    assert_eq!(number_after(cell, "default "), Some(2000));
    assert_eq!(range(cell, "–"), Some((100, 2000)));
    let b = cell.split_once("b:").unwrap().1;
    assert_eq!(range(b, "–"), Some((100, 900000)));
    let deploy = "| `MaxConcurrentGroups` | `10` | `idp-sync`: users of one batch; 1 to 10. |";
    assert_eq!(cells(deploy)[1], "`10`");
    assert_eq!(range(cells(deploy)[2], " to "), Some((1, 10)));
    assert_eq!(range("no range here – at all", "–"), None);
}

#[test]
fn a_disagreement_is_reported_with_what_each_source_says() {
    let readme = Stated {
        default: Some(10),
        min: Some(1),
        max: Some(100),
    };
    let template = Stated {
        max: Some(10),
        ..readme
    };
    let found = disagreements(
        "MAX_CONCURRENT_GROUPS",
        &[
            ("README".to_owned(), readme),
            ("template.yaml".to_owned(), template),
        ],
    );
    assert_eq!(
        found,
        ["MAX_CONCURRENT_GROUPS: maximum differs: README 100, template.yaml 10"]
    );
    // A parser that accepts more than the documents say is caught.
    let lenient: fn(Option<&str>) -> Result<u64, String> =
        |v| v.map_or(Ok(10), |v| v.parse().map_err(|_| "not a number".to_owned()));
    let found = check_parser("X", "lenient", lenient, template);
    assert_eq!(
        found,
        [
            "X: lenient with 0 gives Ok(0), the documents say an error",
            "X: lenient with 11 gives Ok(11), the documents say an error"
        ]
    );
}
