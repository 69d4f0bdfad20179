//! Blocks of BENCHMARKS.md that another tool owns: everything from a
//! `<!-- bench-reconcile:start -->` line to the next `<!-- bench-reconcile:end -->` line
//! (markers included) is written by `bench-reconcile`, not by this binary. When this binary
//! rewrites the file it carries each such block over byte for byte, so the two tools can
//! share the file without either erasing the other's figures.
//!
//! Where a block goes in the new text: before the same `## ` heading that followed it in the
//! old file; if the new text has no such heading, at the end of the section it was in (the
//! `## ` heading before it); failing both, at the end. Unbalanced or nested markers are an
//! error, found before a run starts, so nothing is silently dropped or duplicated.

use thiserror::Error;

pub const START: &str = "<!-- bench-reconcile:start -->";
pub const END: &str = "<!-- bench-reconcile:end -->";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MarkerError {
    #[error("line {line}: `{START}` before the previous block's `{END}`")]
    Nested { line: usize },
    #[error("line {line}: `{END}` without a `{START}` before it")]
    EndWithoutStart { line: usize },
    #[error("line {line}: `{START}` never closed by `{END}`")]
    Unclosed { line: usize },
    #[error("the new report itself contains a bench-reconcile marker")]
    MarkerInReport,
}

/// One owned block and where it sat.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// The block's lines, markers included, each with its line ending.
    text: String,
    /// The `## ` heading line before it, if any (trimmed).
    section: Option<String>,
    /// The `## ` heading line after it, if any (trimmed).
    next_heading: Option<String>,
}

fn is_heading(line: &str) -> bool {
    line.starts_with("## ")
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.trim() == marker
}

/// The owned blocks of `old`, in order.
fn blocks(old: &str) -> Result<Vec<Block>, MarkerError> {
    let mut blocks = Vec::new();
    let mut section: Option<String> = None;
    // (start line number, text so far, section at the start)
    let mut open: Option<(usize, String, Option<String>)> = None;
    for (i, line) in old.split_inclusive('\n').enumerate() {
        let number = i + 1;
        if let Some((_, text, _)) = open.as_mut() {
            if is_marker(line, START) {
                return Err(MarkerError::Nested { line: number });
            }
            text.push_str(line);
            if is_marker(line, END)
                && let Some((_, text, section)) = open.take()
            {
                blocks.push(Block {
                    text,
                    section,
                    next_heading: None,
                });
            }
            continue;
        }
        if is_marker(line, END) {
            return Err(MarkerError::EndWithoutStart { line: number });
        }
        if is_marker(line, START) {
            open = Some((number, line.to_owned(), section.clone()));
            continue;
        }
        if is_heading(line) {
            let heading = line.trim_end().to_owned();
            for block in blocks.iter_mut().rev() {
                if block.next_heading.is_some() {
                    break;
                }
                block.next_heading = Some(heading.clone());
            }
            section = Some(heading);
        }
    }
    if let Some((line, ..)) = open {
        return Err(MarkerError::Unclosed { line });
    }
    Ok(blocks)
}

/// Checks that `old` (the file about to be replaced) has well-formed markers.
pub fn check(old: &str) -> Result<(), MarkerError> {
    blocks(old).map(drop)
}

/// `new` with every owned block of `old` carried over unchanged.
pub fn splice(old: &str, new: &str) -> Result<String, MarkerError> {
    if new
        .lines()
        .any(|l| is_marker(l, START) || is_marker(l, END))
    {
        return Err(MarkerError::MarkerInReport);
    }
    let blocks = blocks(old)?;
    if blocks.is_empty() {
        return Ok(new.to_owned());
    }
    let mut lines: Vec<String> = new.split_inclusive('\n').map(str::to_owned).collect();
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
    }
    // Each block becomes one entry inserted before the line at its index; blocks at the same
    // index keep their order.
    let mut inserts: Vec<(usize, String)> = Vec::new();
    for block in blocks {
        let find = |heading: &Option<String>| {
            heading
                .as_ref()
                .and_then(|h| lines.iter().position(|l| l.trim_end() == h))
        };
        let at = find(&block.next_heading)
            .or_else(|| {
                find(&block.section).map(|s| {
                    lines
                        .iter()
                        .enumerate()
                        .skip(s + 1)
                        .find(|(_, l)| is_heading(l))
                        .map_or(lines.len(), |(i, _)| i)
                })
            })
            .unwrap_or(lines.len());
        let mut text = block.text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        inserts.push((at, text));
    }
    let mut out =
        String::with_capacity(new.len() + inserts.iter().map(|(_, t)| t.len() + 2).sum::<usize>());
    let mut next = inserts.iter().peekable();
    for (i, line) in lines.iter().enumerate() {
        while let Some((_, text)) = next.next_if(|(at, _)| *at == i) {
            put_block(&mut out, text);
        }
        out.push_str(line);
    }
    for (_, text) in next {
        put_block(&mut out, text);
    }
    Ok(out)
}

/// Appends `block` on lines of its own, separated from the text before and after by a blank
/// line (Markdown needs it to end a table or paragraph).
fn put_block(out: &mut String, block: &str) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(block);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "<!-- bench-reconcile:start -->\n## Reconcile\n\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- bench-reconcile:end -->\n";

    fn report(sections: &[&str]) -> String {
        sections
            .iter()
            .map(|s| format!("## {s}\n\ntext of {s}\n\n"))
            .collect::<String>()
    }

    #[test]
    fn a_file_without_blocks_is_replaced_by_the_new_report() {
        let new = report(&["A", "B"]);
        assert_eq!(splice("# old\n\n## A\n\nold text\n", &new), Ok(new));
        assert_eq!(splice("", "x\n"), Ok("x\n".to_owned()));
    }

    #[test]
    fn a_block_is_kept_byte_for_byte_before_the_heading_that_followed_it() {
        let old = format!("## A\n\nold A\n\n{BLOCK}\n## B\n\nold B\n");
        let new = report(&["A", "B", "C"]);
        let out = splice(&old, &new).unwrap();
        assert!(out.contains(BLOCK), "{out}");
        let block_at = out.find(START).unwrap();
        assert!(out.find("text of A").unwrap() < block_at);
        assert!(block_at < out.find("## B").unwrap());
        // Everything of the new report is there, in order, and nothing of the old one.
        assert_eq!(out.replace(BLOCK, "").replace("\n\n\n", "\n\n"), new);
        assert!(!out.contains("old A"));
    }

    #[test]
    fn a_block_whose_next_heading_is_gone_stays_at_the_end_of_its_section() {
        let old = format!("## A\n\n{BLOCK}\n## Gone\n");
        let new = report(&["A", "B"]);
        let out = splice(&old, &new).unwrap();
        let block_at = out.find(START).unwrap();
        assert!(out.find("text of A").unwrap() < block_at);
        assert!(block_at < out.find("## B").unwrap());
    }

    #[test]
    fn a_block_with_no_known_heading_goes_at_the_end_and_several_keep_their_order() {
        let second = BLOCK.replace("| 1 | 2 |", "| 3 | 4 |");
        let old = format!("intro\n{BLOCK}middle\n{second}");
        let new = report(&["A"]);
        let out = splice(&old, &new).unwrap();
        assert!(out.starts_with(&new));
        let first_at = out.find("| 1 | 2 |").unwrap();
        let second_at = out.find("| 3 | 4 |").unwrap();
        assert!(first_at < second_at);
        assert_eq!(out.matches(START).count(), 2);
        assert_eq!(out.matches(END).count(), 2);
    }

    #[test]
    fn splicing_twice_changes_nothing() {
        let old = format!("## A\n\n{BLOCK}\n## B\n");
        let new = report(&["A", "B"]);
        let once = splice(&old, &new).unwrap();
        assert_eq!(splice(&once, &new), Ok(once.clone()));
    }

    #[test]
    fn the_block_keeps_text_that_looks_like_a_heading_or_odd_spacing() {
        let odd = "<!-- bench-reconcile:start -->\r\n## Not ours\n   trailing   \n\n\n<!-- bench-reconcile:end -->";
        let old = format!("## A\n{odd}");
        let out = splice(&old, &report(&["A", "B"])).unwrap();
        assert!(out.contains(odd), "{out:?}");
    }

    #[test]
    fn unbalanced_markers_are_errors_naming_the_line() {
        assert_eq!(
            check(&format!("x\n{START}\ny\n")),
            Err(MarkerError::Unclosed { line: 2 })
        );
        assert_eq!(
            check(&format!("{END}\n")),
            Err(MarkerError::EndWithoutStart { line: 1 })
        );
        assert_eq!(
            check(&format!("{START}\n{START}\n{END}\n")),
            Err(MarkerError::Nested { line: 2 })
        );
        assert!(splice(&format!("{START}\n"), "new\n").is_err());
        assert_eq!(check(BLOCK), Ok(()));
    }

    #[test]
    fn a_report_containing_a_marker_is_refused() {
        assert_eq!(
            splice("", &format!("x\n{START}\n")),
            Err(MarkerError::MarkerInReport)
        );
    }
}
