//! `{{name}}` placeholders in the markdown templates under `crates/bench/templates/`.
//!
//! A placeholder is replaced by its value as is (values are not searched for placeholders in
//! turn). A placeholder without a value, a value without a placeholder and an unclosed `{{`
//! are errors naming the template, never a panic or a silently empty figure.

use thiserror::Error;

/// The values of one template's placeholders, by name.
pub type Values = Vec<(&'static str, String)>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("{template}: no value for the placeholder {{{{{name}}}}}")]
    Unfilled {
        template: &'static str,
        name: String,
    },
    #[error("{template}: a value for `{name}`, which has no placeholder there")]
    Unknown {
        template: &'static str,
        name: &'static str,
    },
    #[error("{template}: `{{{{` at byte {at} is never closed by `}}}}`")]
    Unclosed { template: &'static str, at: usize },
    #[error("{template}: no line `{key}: …`")]
    NoText {
        template: &'static str,
        key: &'static str,
    },
}

/// `text` (the template `template`) with every `{{name}}` replaced by its value in `values`.
pub fn fill(
    template: &'static str,
    text: &str,
    values: &[(&'static str, String)],
) -> Result<String, TemplateError> {
    let mut out =
        String::with_capacity(text.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut used = vec![false; values.len()];
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed {
            template,
            at: text.len() - rest.len() + open,
        })?;
        let name = &after[..close];
        let i =
            values
                .iter()
                .position(|(k, _)| *k == name)
                .ok_or_else(|| TemplateError::Unfilled {
                    template,
                    name: name.to_owned(),
                })?;
        used[i] = true;
        out.push_str(&values[i].1);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    match used.iter().position(|u| !u) {
        Some(i) => Err(TemplateError::Unknown {
            template,
            name: values[i].0,
        }),
        None => Ok(out),
    }
}

/// The text of the line `{key}: text` of `lines` (the template `template`).
pub fn line<'a>(
    template: &'static str,
    lines: &'a str,
    key: &'static str,
) -> Result<&'a str, TemplateError> {
    lines
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .ok_or(TemplateError::NoText { template, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&'static str, &str)]) -> Values {
        pairs.iter().map(|(k, s)| (*k, (*s).to_owned())).collect()
    }

    #[test]
    fn placeholders_are_replaced_once_each_and_values_are_not_searched() {
        let out = fill(
            "t",
            "a {{x}} b {{y}} {{x}}\n",
            &v(&[("x", "{{y}}"), ("y", "2")]),
        );
        assert_eq!(out, Ok("a {{y}} b 2 {{y}}\n".to_owned()));
        assert_eq!(
            fill("t", "no placeholder {x}", &[]),
            Ok("no placeholder {x}".to_owned())
        );
    }

    #[test]
    fn a_missing_value_an_unused_value_and_an_unclosed_brace_are_errors() {
        assert_eq!(
            fill("t", "{{x}} {{gone}}", &v(&[("x", "1")])),
            Err(TemplateError::Unfilled {
                template: "t",
                name: "gone".to_owned()
            })
        );
        assert_eq!(
            fill("t", "{{x}}", &v(&[("x", "1"), ("typo", "2")])),
            Err(TemplateError::Unknown {
                template: "t",
                name: "typo"
            })
        );
        assert_eq!(
            fill("t", "ab {{x", &v(&[("x", "1")])),
            Err(TemplateError::Unclosed {
                template: "t",
                at: 3
            })
        );
        let e = fill("report.md", "{{x}}", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "report.md: no value for the placeholder {{x}}"
        );
    }

    #[test]
    fn lines_are_found_by_their_whole_key() {
        let lines = "<!-- comment -->\ndrain_dlq: to the DLQ\ndrain: slow\n";
        assert_eq!(line("m", lines, "drain"), Ok("slow"));
        assert_eq!(line("m", lines, "drain_dlq"), Ok("to the DLQ"));
        assert_eq!(
            line("m", lines, "dra"),
            Err(TemplateError::NoText {
                template: "m",
                key: "dra"
            })
        );
    }
}
