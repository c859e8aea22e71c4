//! The README's tables, read by the tests that hold them equal to the code.

/// The rows of the README's table that follows `heading`: its cells, first
/// column first, without the header row and surrounding backticks.
pub(crate) fn table(heading: &str) -> Vec<Vec<String>> {
    const README: &str = include_str!("../../../README.md");
    let start = README.find(heading).expect("the table's heading");
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}
