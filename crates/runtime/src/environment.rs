//! Whether this process runs where `lambda_runtime` can serve events.
//!
//! `lambda_runtime` 1.5.0 reads its environment with `expect`: `run` panics
//! (exit status 101, `Missing AWS_LAMBDA_FUNCTION_NAME env var: NotPresent`)
//! when `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (which
//! must parse as an `i32`) or `AWS_LAMBDA_FUNCTION_VERSION` is missing
//! (`Config::from_env`), and when `AWS_LAMBDA_RUNTIME_API` is missing or not
//! a URI with a host (`lambda_runtime_api_client`'s `resolve_uri` and
//! `set_origin`). Someone who starts a bootstrap binary by hand meets exactly
//! that, so the entrypoints check the same things first and, outside Lambda,
//! exit with status 2 and one line that says what the binary is and how to
//! run it locally.

use std::io::Write;
use std::process::ExitCode;

/// What `lambda_runtime` needs from the environment, in the order it reads it.
pub const LAMBDA_VARIABLES: [&str; 4] = [
    RUNTIME_API,
    "AWS_LAMBDA_FUNCTION_NAME",
    MEMORY_SIZE,
    "AWS_LAMBDA_FUNCTION_VERSION",
];
const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
const MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// The exit status of a bootstrap started outside Lambda (a usage error).
pub const OUTSIDE_LAMBDA_EXIT: u8 = 2;

/// Why `lambda_runtime` could not start here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotInLambda {
    /// These variables are unset (or not valid Unicode).
    Missing(Vec<&'static str>),
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` is not a whole number.
    BadMemorySize(String),
    /// `AWS_LAMBDA_RUNTIME_API` is not `host:port` or a URL with a host.
    BadRuntimeApi(String),
}

impl std::fmt::Display for NotInLambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Without the Runtime API nothing else matters; say just that.
            Self::Missing(names) if names.contains(&RUNTIME_API) => {
                write!(f, "{RUNTIME_API} is not set")
            }
            Self::Missing(names) => write!(f, "{} not set", names.join(", ")),
            Self::BadMemorySize(v) => write!(f, "{MEMORY_SIZE} is `{v}`, not a whole number"),
            Self::BadRuntimeApi(v) => write!(f, "{RUNTIME_API} is `{v}`, not host:port"),
        }
    }
}

/// Check, through `lookup`, everything `lambda_runtime::run` would otherwise
/// panic over.
pub fn check(lookup: impl Fn(&str) -> Option<String>) -> Result<(), NotInLambda> {
    let missing: Vec<&'static str> = LAMBDA_VARIABLES
        .into_iter()
        .filter(|name| lookup(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(NotInLambda::Missing(missing));
    }
    let memory = lookup(MEMORY_SIZE).unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(NotInLambda::BadMemorySize(memory));
    }
    let api = lookup(RUNTIME_API).unwrap_or_default();
    if runtime_api_uri(&api).is_none() {
        return Err(NotInLambda::BadRuntimeApi(api));
    }
    Ok(())
}

/// `AWS_LAMBDA_RUNTIME_API` as the base URI requests go to, read as
/// `lambda_runtime_api_client` reads it: Lambda sends `host:port`;
/// cargo-lambda sends a URL with a path (`http://[::]:9000/.rt/<function>`),
/// which is kept as the base path.
pub fn runtime_api_uri(value: &str) -> Option<http::Uri> {
    let uri: http::Uri = value.parse().ok()?;
    uri.authority()?;
    Some(uri)
}

/// The one line a person sees when they start `binary` by hand.
pub fn outside_lambda_message(binary: &str, why: &NotInLambda) -> String {
    format!(
        "{binary}: this is an AWS Lambda bootstrap; it serves events from the Lambda Runtime \
         API ({why}). Run it locally with `cargo lambda watch`, then \
         `cargo lambda invoke {binary} --data-file events/{binary}/<event>.json` \
         (docs/LOCAL.md)."
    )
}

/// Check the process environment; outside Lambda, print the one line to
/// stderr and hand back exit status 2 for `main` to return.
pub fn require_lambda(binary: &str) -> Result<(), ExitCode> {
    check(|name| std::env::var(name).ok()).map_err(|why| {
        // Nothing more useful to do if stderr is gone.
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            outside_lambda_message(binary, &why)
        );
        ExitCode::from(OUTSIDE_LAMBDA_EXIT)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const LAMBDA: [(&str, &str); 4] = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("AWS_LAMBDA_FUNCTION_NAME", "post-confirmation"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ];

    fn lambda_with(name: &str, value: Option<&str>) -> Result<(), NotInLambda> {
        let pairs: Vec<(&str, &str)> = LAMBDA
            .iter()
            .filter(|(k, _)| *k != name)
            .copied()
            .chain(value.map(|v| (name, v)))
            .collect();
        check(env(&pairs))
    }

    #[test]
    fn lambdas_environment_passes() {
        assert_eq!(check(env(&LAMBDA)), Ok(()));
    }

    #[test]
    fn cargo_lambdas_runtime_url_passes() {
        let api = "http://[::]:9000/.rt/post-confirmation";
        assert_eq!(lambda_with(RUNTIME_API, Some(api)), Ok(()));
        let uri = runtime_api_uri(api).unwrap();
        assert_eq!(uri.path(), "/.rt/post-confirmation");
        assert_eq!(
            runtime_api_uri("127.0.0.1:9001")
                .unwrap()
                .authority()
                .unwrap()
                .as_str(),
            "127.0.0.1:9001"
        );
    }

    #[test]
    fn an_empty_environment_names_every_missing_variable() {
        let err = check(env(&[])).unwrap_err();
        assert_eq!(err, NotInLambda::Missing(LAMBDA_VARIABLES.to_vec()));
        assert_eq!(err.to_string(), "AWS_LAMBDA_RUNTIME_API is not set");
        let err = lambda_with("AWS_LAMBDA_FUNCTION_NAME", None).unwrap_err();
        assert_eq!(err.to_string(), "AWS_LAMBDA_FUNCTION_NAME not set");
    }

    #[test]
    fn each_variable_lambda_runtime_panics_over_is_checked() {
        for name in LAMBDA_VARIABLES {
            assert_eq!(
                lambda_with(name, None),
                Err(NotInLambda::Missing(vec![name]))
            );
        }
        assert_eq!(
            lambda_with(MEMORY_SIZE, Some("256MB")),
            Err(NotInLambda::BadMemorySize("256MB".to_owned()))
        );
        for bad in ["", "/no/host", "http://"] {
            assert_eq!(
                lambda_with(RUNTIME_API, Some(bad)),
                Err(NotInLambda::BadRuntimeApi(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_message_is_one_line_that_says_how_to_run_it() {
        let line = outside_lambda_message(
            "idp-sync",
            &NotInLambda::Missing(vec!["AWS_LAMBDA_RUNTIME_API"]),
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("idp-sync: this is an AWS Lambda bootstrap"));
        assert!(
            line.contains("(AWS_LAMBDA_RUNTIME_API is not set)"),
            "{line}"
        );
        assert!(line.contains("cargo lambda watch"), "{line}");
        assert!(
            line.contains("cargo lambda invoke idp-sync --data-file events/idp-sync/"),
            "{line}"
        );
    }
}
