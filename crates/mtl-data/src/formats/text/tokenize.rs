//! Word tokens for the text stems: lower-cased words and single punctuation marks.

use super::parallel_map;

/// Splits `text` into lower-case tokens.
///
/// A token is a maximal run of alphanumeric characters, with apostrophes inside it (`don't`; a typographic
/// `’` becomes `'`); every other character that is not whitespace is a token by itself. HTML line breaks
/// (`<br />`, `<br/>`, `<br>`, any case), which aclImdb reviews are full of, count as whitespace.
///
/// ```
/// use mtl_data::formats::text::tokenize;
/// assert_eq!(tokenize("Don’t!<br />Great."), ["don't", "!", "great", "."]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::with_capacity(text.len() / 5);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // ASCII first: nearly all of the text, and no UTF-8 decoding needed.
        let (c, len) = match bytes[i] {
            b if b.is_ascii() => (char::from(b), 1),
            _ => match text[i..].chars().next() {
                Some(c) => (c, c.len_utf8()),
                None => break,
            },
        };
        if c.is_alphanumeric() {
            let end = word_end(text, i);
            tokens.push(lowercase(&text[i..end]));
            i = end;
        } else if c.is_whitespace() {
            i += len;
        } else if let Some(br_len) = html_break_len(&bytes[i..]) {
            i += br_len;
        } else {
            tokens.push(text[i..i + len].to_owned());
            i += len;
        }
    }
    tokens
}

/// [`tokenize`] over many texts, split over a few threads; the result is in the order of `texts`.
pub fn tokenize_all(texts: &[String]) -> Vec<Vec<String>> {
    parallel_map(texts, |text| tokenize(text))
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// The end of the word starting at `start`: alphanumerics, and apostrophes with an alphanumeric on each side.
fn word_end(text: &str, start: usize) -> usize {
    let mut chars = text[start..].char_indices().peekable();
    let mut end = start;
    while let Some((offset, c)) = chars.next() {
        if c.is_alphanumeric() {
            end = start + offset + c.len_utf8();
        } else if is_apostrophe(c) && chars.peek().is_some_and(|&(_, next)| next.is_alphanumeric()) {
            continue;
        } else {
            break;
        }
    }
    end
}

fn lowercase(word: &str) -> String {
    if word.is_ascii() {
        let mut token = word.to_owned();
        token.make_ascii_lowercase();
        token
    } else {
        word.to_lowercase().replace('’', "'")
    }
}

/// The length of an HTML line break at the start of `bytes`, if there is one.
fn html_break_len(bytes: &[u8]) -> Option<usize> {
    ["<br />", "<br/>", "<br>"]
        .iter()
        .find(|br| bytes.get(..br.len()).is_some_and(|head| head.eq_ignore_ascii_case(br.as_bytes())))
        .map(|br| br.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        assert_eq!(tokenize(input), expected, "tokenize({input:?})");
    }

    #[test]
    fn tokenize_table() {
        check("", &[]);
        check(" \t\n ", &[]);
        check("Great film", &["great", "film"]);
        check("great!", &["great", "!"]);
        check("Wow!!!", &["wow", "!", "!", "!"]);
        check("don't it's rock'n'roll", &["don't", "it's", "rock'n'roll"]);
        check("Don’t", &["don't"]);
        // An apostrophe not between two alphanumerics is punctuation.
        check("'quoted' dogs' it''s", &["'", "quoted", "'", "dogs", "'", "it", "'", "'", "s"]);
        check("Dull.<br /><br />Really dull.", &["dull", ".", "really", "dull", "."]);
        check("a<br/>b<BR>c<Br />d", &["a", "b", "c", "d"]);
        check("a <b>bold</b> <br", &["a", "<", "b", ">", "bold", "<", "/", "b", ">", "<", "br"]);
        check("7/10, 1990s", &["7", "/", "10", ",", "1990s"]);
        check("x-men e-mail", &["x", "-", "men", "e", "-", "mail"]);
        check("Café ÉTÉ naïve Straße", &["café", "été", "naïve", "straße"]);
        // Greek final sigma: Σ at the end of a word lower-cases to ς.
        check("ΟΔΟΣ Москва 東京", &["οδος", "москва", "東京"]);
        check("so…good — “yes”", &["so", "…", "good", "—", "“", "yes", "”"]);
        check("a\u{FFFD}b", &["a", "\u{FFFD}", "b"]);
        check("snake_case", &["snake", "_", "case"]);
    }

    #[test]
    fn tokenize_all_matches_tokenize() {
        let texts: Vec<String> = (0..1_000).map(|i| format!("Review {i}: it's <br />GOOD!")).collect();
        let expected: Vec<Vec<String>> = texts.iter().map(|t| tokenize(t)).collect();
        assert_eq!(tokenize_all(&texts), expected);
    }
}
