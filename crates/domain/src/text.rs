//! What may stand in text that buyers and sellers are shown: no characters that
//! change how the rest is displayed without being seen themselves.

/// True for an invisible formatting character: the bidirectional controls (which
/// can show `gpj.exe` as `exe.jpg`), zero-width characters, joiners, word and line
/// separators, the byte order mark, interlinear annotation and tag characters —
/// Unicode's format category (Cf) and the line and paragraph separators.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_zero_width_characters_are_invisible_format() {
        for c in [
            '\u{202E}',
            '\u{202A}',
            '\u{2066}',
            '\u{2067}',
            '\u{2069}',
            '\u{200F}',
            '\u{200E}',
            '\u{200B}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{061C}',
            '\u{00AD}',
            '\u{2028}',
            '\u{E0041}',
        ] {
            assert!(is_invisible_format(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'é', '日', ' ', '-', '\u{1F600}', 'ß', '\u{05D0}'] {
            assert!(!is_invisible_format(c), "U+{:04X}", c as u32);
        }
    }
}
