//! CSV that a spreadsheet opens as data: every cell quoted (a comma, a quote or a
//! newline inside stays inside its cell), and a cell that a spreadsheet would run as
//! a formula — starting with `=`, `+`, `-`, `@`, a tab or a carriage return — prefixed
//! with `'` (OWASP's rule against CSV injection).

/// One cell, quoted and neutralised.
pub fn cell(value: &str) -> String {
    let risky = value
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let mut out = String::with_capacity(value.len() + 3);
    out.push('"');
    if risky {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One line: the cells, each through [`cell`], comma-separated, `\n`-terminated.
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = cells
        .iter()
        .map(|c| cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_separators_stay_inside_their_cell() {
        assert_eq!(cell("top_1"), "\"top_1\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for risky in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(risky).starts_with("\"'"), "{risky}");
        }
        assert_eq!(
            row(&["a,b", "line\nmatched,x"]),
            "\"a,b\",\"line\nmatched,x\"\n"
        );
        assert_eq!(row::<&str>(&[]), "\n");
    }
}
