//! docs/SETTINGS.md is the generated reference, and every value the table
//! states is what the parsers do: driven from the table, never a copy of it.

use std::collections::HashMap;
use std::path::PathBuf;

use chime_sync_core::handlers::reconcile::SHARD_COUNTS;

use super::super::{
    ConfigError, CredentialExchangeConfig, IdpSyncConfig, PostConfirmationConfig, PreSignupConfig,
    ReconcileConfig, spec,
};
use super::{Function, REGENERATE, Reading, Setting, Unset, Value, markdown, settings};

fn settings_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/SETTINGS.md")
}

#[test]
fn settings_md_is_up_to_date() {
    let path = settings_md();
    let generated = markdown();
    if std::env::var_os("UPDATE_SETTINGS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/SETTINGS.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/SETTINGS.md is not what the settings table in crates/aws/src/config/reference.rs \
             generates (first difference at line {}). Edit the table, not the file, then run\n\n    \
             {REGENERATE}\n\nfrom the workspace root: with UPDATE_SETTINGS=1 this test writes the \
             file instead of comparing; commit the result.",
            line + 1
        );
    }
}

/// Every setting, once, with its readings.
fn all() -> Vec<Setting> {
    settings().into_iter().flat_map(|g| g.settings).collect()
}

/// The configuration `function` parses from `env`, as its `Debug` text (two
/// configurations are the same when their texts are), or its error.
fn parse(function: Function, env: &HashMap<String, String>) -> Result<String, ConfigError> {
    let lookup = |name: &str| env.get(name).cloned();
    match function {
        Function::PreSignup => PreSignupConfig::from_lookup(lookup).map(|c| format!("{c:?}")),
        Function::PostConfirmation => {
            PostConfirmationConfig::from_lookup(lookup).map(|c| format!("{c:?}"))
        }
        Function::IdpSync => IdpSyncConfig::from_lookup(lookup).map(|c| format!("{c:?}")),
        Function::Reconcile => ReconcileConfig::from_lookup(lookup).map(|c| format!("{c:?}")),
        Function::CredentialExchange => {
            CredentialExchangeConfig::from_lookup(lookup).map(|c| format!("{c:?}"))
        }
    }
}

/// `function`'s required variables, each the table's example: the least it starts with.
fn required(function: Function) -> HashMap<String, String> {
    all()
        .iter()
        .flat_map(|s| s.readings.iter().map(move |r| (s.name, r)))
        .filter(|(_, r)| r.function == function)
        .filter_map(|(name, r)| match r.value {
            Value::Required { example } => Some((name.to_owned(), example.to_owned())),
            _ => None,
        })
        .collect()
}

/// Parses `function`'s configuration with `name` set to `value` (`None`: unset).
fn with(function: Function, name: &str, value: Option<&str>) -> Result<String, ConfigError> {
    let mut env = required(function);
    match value {
        Some(v) => env.insert(name.to_owned(), v.to_owned()),
        None => env.remove(name),
    };
    parse(function, &env)
}

/// What `reading` of `name` states that the parser does not: one line each.
fn disagreements(name: &str, reading: &Reading) -> Vec<String> {
    let f = reading.function;
    let mut out = Vec::new();
    let mut expect = |what: String, ok: bool| {
        if !ok {
            out.push(format!("{name} in {}: {what}", f.binary()));
        }
    };
    let refused = |value: &str| matches!(with(f, name, Some(value)), Err(e) if e.to_string().starts_with(name));
    let same = |a: Option<&str>, b: Option<&str>| matches!((with(f, name, a), with(f, name, b)), (Ok(x), Ok(y)) if x == y);
    let differ = |a: &str, b: &str| matches!((with(f, name, Some(a)), with(f, name, Some(b))), (Ok(x), Ok(y)) if x != y);
    match reading.value {
        Value::Required { example } => {
            expect(
                format!("the example `{example}` is refused"),
                with(f, name, Some(example)).is_ok(),
            );
            let missing = with(f, name, None);
            expect(
                format!("unset should be refused naming it, got {missing:?}"),
                matches!(missing, Err(ConfigError::Missing { name: n, .. }) if n == name),
            );
        }
        Value::Number { bounds, .. } => {
            let [default, min, max] =
                [bounds.default, bounds.min, bounds.max].map(|n| n.to_string());
            let accepted = |v: &str| with(f, name, Some(v)).is_ok();
            expect(
                format!("unset is not the stated default {default}"),
                same(None, Some(&default)),
            );
            expect(format!("the minimum {min} is refused"), accepted(&min));
            expect(format!("the maximum {max} is refused"), accepted(&max));
            let both = accepted(&min) && accepted(&max) && min != max;
            expect(
                format!("{min} and {max} read the same: is it read at all?"),
                !both || differ(&min, &max),
            );
            if bounds.min > 0 {
                expect(
                    format!("{} below the minimum is accepted", bounds.min - 1),
                    refused(&(bounds.min - 1).to_string()),
                );
            }
            expect(
                format!("{} above the maximum is accepted", bounds.max + 1),
                refused(&(bounds.max + 1).to_string()),
            );
        }
        Value::Flag { default } => {
            expect(
                format!("unset is not the stated `{default}`"),
                same(None, Some(&default.to_string())),
            );
            expect(
                "true and false read the same".to_owned(),
                differ("true", "false"),
            );
            expect("`maybe` is accepted".to_owned(), refused("maybe"));
        }
        Value::OneOf(choice) => {
            expect(
                format!("unset is not the stated `{}`", choice.default),
                same(None, Some(choice.default)),
            );
            for word in choice.allowed.iter().filter(|w| **w != choice.default) {
                expect(
                    format!("`{word}` is refused or reads as the default"),
                    differ(word, choice.default),
                );
            }
            expect(
                "`no-such-value` is accepted".to_owned(),
                refused("no-such-value"),
            );
        }
        Value::Text { unset, example } => {
            if let Unset::Is(default) = unset {
                expect(
                    format!("unset is not the stated `{default}`"),
                    same(None, Some(default)),
                );
            }
            let read = matches!((with(f, name, None), with(f, name, Some(example))), (Ok(x), Ok(y)) if x != y);
            expect(
                format!("the example `{example}` is refused or not read"),
                read,
            );
        }
    }
    out
}

#[test]
fn each_stated_default_and_range_is_what_the_parser_does() {
    let problems: Vec<String> = all()
        .iter()
        .flat_map(|s| s.readings.iter().flat_map(|r| disagreements(s.name, r)))
        .collect();
    assert!(
        problems.is_empty(),
        "the settings table (crates/aws/src/config/reference.rs) and the parsers disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The check itself catches a table that claims what the parser does not.
#[test]
fn a_wrong_statement_is_caught() {
    let wrong = Reading {
        function: Function::IdpSync,
        value: Value::Number {
            bounds: super::Bounds {
                default: 9,
                min: 0,
                max: 11,
            },
            unit: "",
        },
        feed: super::Feed::NotSet,
    };
    let found = disagreements(super::super::MAX_CONCURRENT_GROUPS, &wrong);
    assert_eq!(
        found,
        [
            "MAX_CONCURRENT_GROUPS in idp-sync: unset is not the stated default 9",
            "MAX_CONCURRENT_GROUPS in idp-sync: the minimum 0 is refused",
            "MAX_CONCURRENT_GROUPS in idp-sync: the maximum 11 is refused",
        ]
    );
}

#[test]
fn each_variable_is_stated_once_and_each_function_once_per_variable() {
    let mut names: Vec<&str> = all().iter().map(|s| s.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a variable is in the table twice");
    for s in all() {
        let mut functions: Vec<Function> = s.readings.iter().map(|r| r.function).collect();
        functions.sort_unstable();
        functions.dedup();
        assert_eq!(
            functions.len(),
            s.readings.len(),
            "{}: a function reads it twice",
            s.name
        );
        assert!(!s.meaning.is_empty(), "{} has no meaning", s.name);
    }
}

/// `RECONCILE_SHARDS`' words are `auto` and the shard counts core splits by.
#[test]
fn the_shard_choices_are_the_core_shard_counts() {
    let counts: Vec<String> = SHARD_COUNTS.iter().map(u16::to_string).collect();
    let mut expected = vec![spec::RECONCILE_SHARDS.default.to_owned()];
    expected.extend(counts);
    assert_eq!(spec::RECONCILE_SHARDS.allowed, expected.as_slice());
}
