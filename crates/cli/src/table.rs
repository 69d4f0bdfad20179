//! Plain-text tables for the terminal: columns padded to their widest cell.

/// Render a header and rows as aligned columns separated by two spaces.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header)];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.extend(rows.iter().map(|r| line(r.each_ref().map(String::as_str))));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let rows = [
            ["a".to_owned(), "long cell".to_owned()],
            ["bbb".to_owned(), "x".to_owned()],
        ];
        let text = render(["H1", "H2"], &rows);
        assert_eq!(text, "H1   H2\n---  ---------\na    long cell\nbbb  x");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let rows = [["é".to_owned(), "z".to_owned()]];
        assert_eq!(render(["A", "B"], &rows), "A  B\n-  -\né  z");
    }
}
