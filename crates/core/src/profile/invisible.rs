//! The characters a display name drops: every one that renders as nothing.
//!
//! A chat UI shows a name as it is. A right-to-left override
//! (`"\u{202e}evoL adA"` shows as "Ada Love"), a zero-width space
//! (`"Ad\u{200b}a"`), a Hangul filler or a run of tag characters lets a name
//! look like someone else's, hide text from a reader (tags spell ASCII that
//! only software sees), or show nothing at all. So every code point that is a
//! format character (General_Category `Cf`) or default-ignorable
//! (Unicode's `Default_Ignorable_Code_Point`: what a renderer shows as
//! nothing when it does not support it) is dropped, with two exceptions that
//! only ever shape an emoji:
//!
//! - the zero-width joiner U+200D between two emoji (👨‍👩‍👧, 🏳️‍🌈, 👩🏽‍💻);
//! - the presentation selectors U+FE0E (text) and U+FE0F (emoji) after an
//!   emoji (❤️), or after `0`–`9`, `#` or `*` when the keycap mark U+20E3
//!   follows (1️⃣). Anywhere else they change nothing a reader sees.
//!
//! The category comes from the `unicode-properties` crate, so a format
//! character a later Unicode version adds is dropped without a change here;
//! [`IGNORABLE_NOT_FORMAT`] lists the default-ignorable code points of other
//! categories, which Unicode keeps stable.
//!
//! The price, accepted: a ZWJ or ZWNJ inside Persian or Indic words, the
//! Mongolian free variation selectors, the ideographic variation selectors
//! (a Japanese name keeps its kanji, not the registered glyph variant) and the
//! tag sequences of subdivision flags (🏴󠁧󠁢󠁥󠁮󠁧󠁿 shows as 🏴) render slightly
//! differently; the visible Arabic number signs (U+0600–U+0605), being `Cf`,
//! are dropped too.

use unicode_properties::{GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

/// ZERO WIDTH JOINER: kept between two emoji (a family is one emoji).
const ZWJ: char = '\u{200d}';
/// VARIATION SELECTOR-15: text presentation of the emoji before it.
const TEXT_PRESENTATION: char = '\u{fe0e}';
/// VARIATION SELECTOR-16: emoji presentation of the emoji before it.
const EMOJI_PRESENTATION: char = '\u{fe0f}';
/// COMBINING ENCLOSING KEYCAP: `1`, U+FE0F, U+20E3 is the keycap emoji 1️⃣.
const KEYCAP: char = '\u{20e3}';

/// Default-ignorable code points whose General_Category is not `Cf`
/// (DerivedCoreProperties.txt, `Default_Ignorable_Code_Point`): letters,
/// marks and reserved code points that render as nothing. Ranges may
/// overlap `Cf` ones (U+180E, U+2060–U+2064, U+2066–U+206F, the tags): a
/// range reads as Unicode lists the block.
pub const IGNORABLE_NOT_FORMAT: &[(char, char)] = &[
    // COMBINING GRAPHEME JOINER (Mn).
    ('\u{034f}', '\u{034f}'),
    // HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER (Lo).
    ('\u{115f}', '\u{1160}'),
    // KHMER VOWEL INHERENT AQ, AA (Mn).
    ('\u{17b4}', '\u{17b5}'),
    // MONGOLIAN FREE VARIATION SELECTORS ONE to FOUR (Mn; U+180E is Cf).
    ('\u{180b}', '\u{180f}'),
    // WORD JOINER to NOMINAL DIGIT SHAPES, with the reserved U+2065.
    ('\u{2060}', '\u{206f}'),
    // HANGUL FILLER (Lo).
    ('\u{3164}', '\u{3164}'),
    // VARIATION SELECTOR-1 to -16 (Mn).
    ('\u{fe00}', '\u{fe0f}'),
    // HALFWIDTH HANGUL FILLER (Lo).
    ('\u{ffa0}', '\u{ffa0}'),
    // Reserved, default-ignorable (before the interlinear annotation characters, which are Cf).
    ('\u{fff0}', '\u{fff8}'),
    // Tags (Cf), VARIATION SELECTOR-17 to -256 (Mn), and the reserved rest of the plane's block.
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` renders as nothing: a format character (`Cf`) or a
/// default-ignorable code point. Such a character stays in a name only where
/// [`strip_invisible`] finds it shaping an emoji.
pub fn is_invisible(c: char) -> bool {
    // No ASCII character is Cf or default-ignorable (controls are Cc, folded as whitespace).
    !c.is_ascii()
        && (c.general_category() == GeneralCategory::Format
            || IGNORABLE_NOT_FORMAT
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&c)))
}

/// `raw` without its invisible characters ([`is_invisible`]), except a
/// joiner between two emoji and a presentation selector after one.
///
/// Each character is judged by the last one kept and the next one of `raw`.
/// What follows a kept joiner is an emoji, which is never invisible, so the
/// result strips to itself: a name is its own display name.
pub fn strip_invisible(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if !is_invisible(c) || shapes_emoji(out.chars().next_back(), c, chars.peek().copied()) {
            out.push(c);
        }
    }
    out
}

/// Whether the invisible `c`, after `before` (the last character kept) and
/// before `after`, is part of an emoji: a joiner between two, or a
/// presentation selector of one.
fn shapes_emoji(before: Option<char>, c: char, after: Option<char>) -> bool {
    let Some(before) = before else {
        return false;
    };
    match c {
        ZWJ => (is_emoji(before) || before == EMOJI_PRESENTATION) && after.is_some_and(is_emoji),
        TEXT_PRESENTATION | EMOJI_PRESENTATION => {
            is_emoji(before) || (matches!(before, '0'..='9' | '#' | '*') && after == Some(KEYCAP))
        }
        _ => false,
    }
}

/// An emoji character (Unicode's `Emoji` property, which also covers the
/// skin-tone modifiers and regional indicators), ASCII excluded: the digits,
/// `#` and `*` have the property too, but a joiner between digits joins nothing.
fn is_emoji(c: char) -> bool {
    !c.is_ascii() && c.is_emoji_char()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range of format (`Cf`) and default-ignorable code points, as
    /// UnicodeData.txt and DerivedCoreProperties.txt list them, written out
    /// here so a change of the crate's tables that loses one fails.
    const DROPPED: &[(char, char, &str)] = &[
        ('\u{00ad}', '\u{00ad}', "soft hyphen"),
        ('\u{034f}', '\u{034f}', "combining grapheme joiner"),
        ('\u{0600}', '\u{0605}', "Arabic number signs"),
        ('\u{061c}', '\u{061c}', "Arabic letter mark"),
        ('\u{06dd}', '\u{06dd}', "Arabic end of ayah"),
        ('\u{070f}', '\u{070f}', "Syriac abbreviation mark"),
        (
            '\u{0890}',
            '\u{0891}',
            "Arabic pound and piastre marks above",
        ),
        ('\u{08e2}', '\u{08e2}', "Arabic disputed end of ayah"),
        (
            '\u{115f}',
            '\u{1160}',
            "Hangul choseong and jungseong fillers",
        ),
        ('\u{17b4}', '\u{17b5}', "Khmer inherent vowels"),
        (
            '\u{180b}',
            '\u{180f}',
            "Mongolian variation selectors and vowel separator",
        ),
        (
            '\u{200b}',
            '\u{200f}',
            "zero-width characters and directional marks",
        ),
        ('\u{202a}', '\u{202e}', "bidi embeddings and overrides"),
        (
            '\u{2060}',
            '\u{206f}',
            "word joiner, invisible operators, bidi isolates",
        ),
        ('\u{2066}', '\u{2069}', "bidi isolates"),
        ('\u{3164}', '\u{3164}', "Hangul filler"),
        ('\u{fe00}', '\u{fe0f}', "variation selectors"),
        ('\u{feff}', '\u{feff}', "zero-width no-break space (BOM)"),
        ('\u{ffa0}', '\u{ffa0}', "halfwidth Hangul filler"),
        ('\u{fff0}', '\u{fff8}', "reserved default-ignorable"),
        ('\u{fff9}', '\u{fffb}', "interlinear annotation"),
        ('\u{110bd}', '\u{110bd}', "Kaithi number sign"),
        ('\u{110cd}', '\u{110cd}', "Kaithi number sign above"),
        (
            '\u{13430}',
            '\u{1343f}',
            "Egyptian hieroglyph format controls",
        ),
        ('\u{1bca0}', '\u{1bca3}', "shorthand format controls"),
        ('\u{1d173}', '\u{1d17a}', "musical symbol format controls"),
        (
            '\u{e0000}',
            '\u{e0fff}',
            "tags and variation selectors supplement",
        ),
        ('\u{e0001}', '\u{e0001}', "language tag"),
        ('\u{e0020}', '\u{e007f}', "tag characters"),
        ('\u{e0100}', '\u{e01ef}', "variation selectors supplement"),
    ];

    #[test]
    fn each_range_is_dropped_from_its_first_to_its_last_code_point() {
        for (first, last, what) in DROPPED {
            for c in [*first, *last] {
                assert!(is_invisible(c), "U+{:04X} ({what})", u32::from(c));
                for raw in [format!("A{c}da"), format!("{c}Ada"), format!("Ada{c}")] {
                    assert_eq!(
                        strip_invisible(&raw),
                        "Ada",
                        "U+{:04X} ({what})",
                        u32::from(c)
                    );
                }
            }
        }
    }

    #[test]
    fn every_format_character_is_dropped_and_no_visible_one_is() {
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            if c.general_category() == GeneralCategory::Format {
                assert!(is_invisible(c), "U+{:04X} is Cf", u32::from(c));
            }
        }
        // What the table adds is default-ignorable, never a visible letter or mark.
        for (first, last) in IGNORABLE_NOT_FORMAT {
            for c in (*first..=*last).filter(|c| c.general_category() != GeneralCategory::Format) {
                assert!(
                    matches!(
                        c.general_category(),
                        GeneralCategory::NonspacingMark
                            | GeneralCategory::OtherLetter
                            | GeneralCategory::Unassigned
                    ),
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }

    #[test]
    fn text_of_every_script_and_emoji_sequences_are_kept() {
        for kept in [
            "Ada Lovelace",
            "Zoë Ångström-Núñez",
            "Łukasz Żółć",
            "Дмитрий",
            "Γιώργος",
            "李小龙",
            "山田 太郎",
            "김민수",
            "محمد الأمين",
            "שלום כהן",
            "नमस्ते",
            "e\u{301}",
            // Emoji: a ZWJ family, a skin tone in a ZWJ sequence, a flag of two regional
            // indicators, presentation selectors after an emoji, a keycap, a selector in a
            // ZWJ sequence (rainbow flag), and text presentation.
            "👨\u{200d}👩\u{200d}👧",
            "👩\u{1f3fd}\u{200d}💻",
            "🇺🇸",
            "Ada ❤\u{fe0f}",
            "1\u{fe0f}\u{20e3}",
            "🏳\u{fe0f}\u{200d}🌈",
            "☺\u{fe0e}",
        ] {
            assert_eq!(strip_invisible(kept), kept, "{kept:?}");
        }
    }

    #[test]
    fn joiners_and_selectors_outside_emoji_are_dropped() {
        for (raw, want) in [
            // A joiner between letters, digits, or an emoji and a letter joins nothing.
            ("A\u{200d}da", "Ada"),
            ("1\u{200d}2", "12"),
            ("👨\u{200d}a", "👨a"),
            ("a\u{200d}👩", "a👩"),
            ("\u{200d}👩", "👩"),
            ("👨\u{200d}", "👨"),
            // A doubled joiner joins once.
            ("👨\u{200d}\u{200d}👩", "👨\u{200d}👩"),
            ("👨\u{200d} 👩", "👨 👩"),
            // A selector after a letter, or a keycap's without its keycap mark.
            ("Ada\u{fe0f}", "Ada"),
            ("A\u{fe0e}da", "Ada"),
            ("1\u{fe0f}", "1"),
            ("\u{fe0f}❤", "❤"),
            // Zero-width characters inside a sequence go; the sequence stays.
            ("👨\u{200b}\u{200d}👩", "👨\u{200d}👩"),
            ("❤\u{200b}\u{fe0f}", "❤\u{fe0f}"),
            // A tag sequence (a subdivision flag, or hidden ASCII) leaves its base.
            (
                "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}",
                "🏴",
            ),
            ("Ada\u{e0049}\u{e0047}\u{e004e}", "Ada"),
        ] {
            assert_eq!(strip_invisible(raw), want, "{raw:?}");
            assert_eq!(strip_invisible(want), want, "{want:?} strips to itself");
        }
    }
}
