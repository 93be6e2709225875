//! Names that cannot lie: the characters refused in everything a user or an
//! agent names (agent and rule names, rule labels, mounts, interfaces,
//! sensors, host facts), because they make text display differently from
//! what it is: bidirectional overrides and isolates reorder it (U+202E before `gpj.exe` shows `exe.jpg`),
//! zero-width characters make two different names look the same, and line
//! separators break a one-line name. Control characters (Cc) are refused by
//! the callers' own checks.
//!
//! Refused: every format character (Unicode general category Cf, the table
//! below, Unicode 16) and U+2028/U+2029. That includes U+200C/U+200D
//! (zero-width non-joiner and joiner), which some scripts and emoji
//! sequences use: such a name must be written without them.

/// Whether `c` may not appear in a name (see the module docs); shared
/// with the agent, which replaces such characters before sending.
pub use storage::model::hidden::is_hidden;

/// The problem with `text` as a name, if it holds a hidden character:
/// `contains U+202E, an invisible formatting character …`.
pub fn hidden_problem(text: &str) -> Option<String> {
    // Nearly every name is ASCII: one pass decides.
    if text.is_ascii() {
        return None;
    }
    let c = text.chars().find(|&c| is_hidden(c))?;
    Some(format!(
        "contains U+{:04X}, an invisible formatting character (bidirectional or zero-width) that makes text display differently from what it is",
        u32::from(c)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_zero_width_and_other_format_characters_are_hidden() {
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}', // embeddings, overrides
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}', // isolates
            '\u{200E}',
            '\u{200F}',
            '\u{061C}', // marks
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}', // zero width
            '\u{00AD}',
            '\u{E0041}',
            '\u{2028}',
            '\u{2029}',
        ] {
            assert!(is_hidden(c), "U+{:04X}", u32::from(c));
            let name = format!("nas{c}01");
            let problem = hidden_problem(&name).expect("refused");
            assert!(
                problem.contains(&format!("U+{:04X}", u32::from(c))),
                "{problem}"
            );
        }
    }

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for name in [
            "nas-01",
            "Büro",
            "サーバー",
            "сервер",
            "خادم",
            "/mnt/données",
            "eth0",
            "🖥 rack",
        ] {
            assert_eq!(hidden_problem(name), None, "{name}");
        }
    }
}
