//! Plain-text tables for the terminal, at most [`WIDTH`] columns wide: each
//! column padded to its widest cell up to a cap (longer cells shortened in
//! the middle, where ids differ least), and one column, the text, wrapped to
//! what is left.

/// The widest line a table prints: a terminal of 100 columns shows every
/// row on one line (or a wrapped one, indented under its column).
pub const WIDTH: usize = 100;

/// How each column fits: its widest cell (`None`: no cap), and which one
/// column wraps.
pub struct Fit<const N: usize> {
    pub caps: [Option<usize>; N],
    pub wrap: usize,
}

/// Render a header and rows as aligned columns separated by two spaces.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]], fit: &Fit<N>) -> String {
    let cells: Vec<[String; N]> = rows
        .iter()
        .map(|r| {
            let mut row = r.clone();
            for (i, cell) in row.iter_mut().enumerate() {
                if let Some(cap) = fit.caps[i].filter(|_| i != fit.wrap) {
                    *cell = shorten(cell, cap);
                }
            }
            row
        })
        .collect();
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let others: usize = widths
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != fit.wrap)
        .map(|(_, w)| w + 2)
        .sum();
    widths[fit.wrap] = widths[fit.wrap].min(WIDTH.saturating_sub(others).max(20));
    let mut out = vec![line(&header.map(str::to_owned), &widths)];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    for row in &cells {
        let wrapped = wrap(&row[fit.wrap], widths[fit.wrap]);
        for (n, piece) in wrapped.iter().enumerate() {
            let mut shown: [String; N] = std::array::from_fn(|_| String::new());
            if n == 0 {
                shown = row.clone();
            }
            shown[fit.wrap] = piece.clone();
            out.push(line(&shown, &widths));
        }
    }
    out.join("\n")
}

fn line<const N: usize>(cells: &[String; N], widths: &[usize; N]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    padded.join("  ").trim_end().to_owned()
}

/// `text` in at most `max` characters: its start, `…`, and its end.
pub fn shorten(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max || max < 3 {
        return text.to_owned();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

/// `text` in lines of at most `width` characters, broken at spaces where it
/// can (a word longer than a line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let len = current.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        while current.chars().count() > width {
            let rest: String = current.chars().skip(width).collect();
            lines.push(current.chars().take(width).collect());
            current = rest;
        }
    }
    lines.push(current);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOSE: Fit<2> = Fit {
        caps: [None, None],
        wrap: 1,
    };

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let rows = [
            ["a".to_owned(), "long cell".to_owned()],
            ["bbb".to_owned(), "x".to_owned()],
        ];
        let text = render(["H1", "H2"], &rows, &LOOSE);
        assert_eq!(text, "H1   H2\n---  ---------\na    long cell\nbbb  x");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let rows = [["é".to_owned(), "z".to_owned()]];
        assert_eq!(render(["A", "B"], &rows, &LOOSE), "A  B\n-  -\né  z");
    }

    #[test]
    fn long_rows_fit_the_width_shortened_and_wrapped() {
        let rows = [[
            "fifo-two-groups-one-failing.json#c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a71".to_owned(),
            "word ".repeat(40).trim_end().to_owned(),
        ]];
        let fit = Fit {
            caps: [Some(30), None],
            wrap: 1,
        };
        let text = render(["EVENT", "OUTCOME"], &rows, &fit);
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        assert!(text.contains("fifo-two-groups…b-2c3d4e5f6a71"), "{text}");
        assert_eq!(text.matches("word").count(), 40, "nothing lost: {text}");
        assert!(text.lines().count() > 3, "wrapped: {text}");
    }
}
