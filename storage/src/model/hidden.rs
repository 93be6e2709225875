//! The characters no name may hold: format characters (Unicode general
//! category Cf) and the line and paragraph separators. The server refuses
//! them in every name (`server/src/text.rs` says why); the agent replaces
//! them in what it reads from the machine (process, container and unit
//! names), so a name chosen by someone on that machine cannot get the
//! agent's reports refused.

/// Unicode 16's format characters (Cf), as inclusive ranges.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound/piastre mark above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x180E, 0x180E),   // Mongolian vowel separator
    (0x200B, 0x200F),   // zero width space, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),   // LRE, RLE, PDF, LRO, RLO
    (0x2060, 0x2064),   // word joiner, invisible operators
    (0x2066, 0x206F),   // LRI, RLI, FSI, PDI, deprecated format characters
    (0xFEFF, 0xFEFF),   // zero width no-break space (BOM)
    (0xFFF9, 0xFFFB),   // interlinear annotation
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0001, 0xE0001), // language tag
    (0xE0020, 0xE007F), // tag characters
];

/// Whether `c` may not appear in a name (see the module docs).
pub fn is_hidden(c: char) -> bool {
    let c = u32::from(c);
    c == 0x2028 || c == 0x2029 || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}
