//! Bytes to text: UTF-8 when valid, else Windows-1252.

/// A file's text and how it was decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The text, without a leading byte order mark.
    pub text: String,
    /// The bytes were not valid UTF-8 and were read as Windows-1252.
    pub windows_1252: bool,
    /// Bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D), replaced by U+FFFD.
    pub replacements: usize,
}

/// Decodes a whole file: valid UTF-8 (a leading BOM stripped) as is, anything else as Windows-1252.
///
/// Windows-1252 rather than Latin-1 because that is what old English corpora hold in practice
/// (0x85 '…', 0x92 '’'); it decodes every byte, so this never fails.
pub fn decode(bytes: &[u8]) -> Decoded {
    match std::str::from_utf8(bytes) {
        Ok(text) => utf8(text.strip_prefix('\u{FEFF}').unwrap_or(text).to_owned()),
        Err(_) => windows_1252(bytes),
    }
}

/// [`decode`] without copying valid UTF-8.
pub(crate) fn decode_owned(bytes: Vec<u8>) -> Decoded {
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{FEFF}') {
                text.drain(..'\u{FEFF}'.len_utf8());
            }
            utf8(text)
        }
        Err(err) => windows_1252(err.as_bytes()),
    }
}

fn utf8(text: String) -> Decoded {
    Decoded { text, windows_1252: false, replacements: 0 }
}

/// 0x80..=0x9F in Windows-1252 (WHATWG encoding table); U+FFFD where undefined.
const WINDOWS_1252_HIGH: [char; 32] = [
    '€', '\u{FFFD}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{FFFD}', 'Ž', '\u{FFFD}', //
    '\u{FFFD}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{FFFD}', 'ž', 'Ÿ',
];

fn windows_1252(bytes: &[u8]) -> Decoded {
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 8);
    let mut replacements = 0;
    for &byte in bytes {
        let c = match byte {
            0x80..=0x9F => WINDOWS_1252_HIGH[usize::from(byte - 0x80)],
            // ASCII and 0xA0..=0xFF coincide with Unicode (Latin-1).
            _ => char::from(byte),
        };
        replacements += usize::from(c == '\u{FFFD}');
        text.push(c);
    }
    Decoded { text, windows_1252: true, replacements }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn check(bytes: &[u8], text: &str, windows_1252: bool, replacements: usize) {
        let expected = Decoded { text: text.to_owned(), windows_1252, replacements };
        assert_eq!(decode(bytes), expected, "{bytes:?}");
        assert_eq!(decode_owned(bytes.to_vec()), expected, "{bytes:?} (owned)");
    }

    #[test]
    fn decode_table() {
        check(b"", "", false, 0);
        check(b"plain ascii", "plain ascii", false, 0);
        check("caf\u{e9} \u{2026}".as_bytes(), "café …", false, 0);
        check(b"\xEF\xBB\xBFwith bom", "with bom", false, 0);
        check(b"\xEF\xBB\xBF", "", false, 0);
        // Only a leading BOM is stripped.
        check(b"a\xEF\xBB\xBF", "a\u{FEFF}", false, 0);
        check(b"wait\x85 it\x92s \x81odd", "wait… it’s \u{FFFD}odd", true, 1);
        check(b"caf\xE9 \x80\x8D\x8F\x90\x9D\x9F\xFF", "café €\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}Ÿÿ", true, 4);
        // Truncated UTF-8 makes the whole file Windows-1252.
        check(b"\xC3\xA9\xC3", "Ã©Ã", true, 0);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes() {
        let mut rng = Rng::new(7);
        for _ in 0..2_000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let decoded = decode(&bytes);
            if decoded.windows_1252 {
                assert_eq!(decoded.text.chars().count(), bytes.len());
            }
            assert_eq!(decode_owned(bytes), decoded);
        }
    }
}
