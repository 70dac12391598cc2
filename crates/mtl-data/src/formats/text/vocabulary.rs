//! Token ↔ id maps built from training texts, saved as one token per line.

use std::collections::HashMap;

/// Token ids: [`Vocabulary::PAD`], [`Vocabulary::OOV`], then tokens by descending training frequency.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocabulary {
    /// By id, the placeholders included.
    tokens: Vec<String>,
    /// Real tokens only: the placeholders are never looked up.
    ids: HashMap<String, u32>,
}

const PAD_TEXT: &str = "<pad>";
const OOV_TEXT: &str = "<oov>";

impl Vocabulary {
    /// The id that pads a sequence to its length.
    pub const PAD: u32 = 0;
    /// The id of every token not in the vocabulary.
    pub const OOV: u32 = 1;

    /// Keeps the tokens seen at least `min_freq` times, the most frequent first (ties by token text), up to
    /// `max_size` ids in all, PAD and OOV included (so at least those two).
    ///
    /// Tokens that could not be saved one per line (empty, with a line break) or that spell a placeholder
    /// ("<pad>", "<oov>") are left out; [`super::tokenize`] never makes them.
    pub fn build<'a>(
        documents: impl IntoIterator<Item = &'a [String]>,
        max_size: usize,
        min_freq: usize,
    ) -> Vocabulary {
        // Keyed by the documents' own strings: no allocation per token.
        let mut counts: HashMap<&'a str, usize> = HashMap::new();
        for document in documents {
            for token in document {
                *counts.entry(token.as_str()).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(&str, usize)> =
            counts.into_iter().filter(|&(token, count)| count >= min_freq && is_storable(token)).collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        kept.truncate(max_size.saturating_sub(2));
        Vocabulary::from_tokens(kept.into_iter().map(|(token, _)| token.to_owned()).collect())
    }

    /// Ids in all, PAD and OOV included.
    #[allow(clippy::len_without_is_empty)] // Never empty: PAD and OOV are always there.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The id of `token`, [`Vocabulary::OOV`] if it is not in the vocabulary.
    pub fn id(&self, token: &str) -> u32 {
        self.ids.get(token).copied().unwrap_or(Vocabulary::OOV)
    }

    /// The token of `id`: "<pad>" and "<oov>" for the placeholders, `None` beyond the vocabulary.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The ids of the first `max_len` tokens, padded with [`Vocabulary::PAD`] to exactly `max_len`.
    pub fn encode(&self, tokens: &[String], max_len: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = tokens.iter().take(max_len).map(|token| self.id(token)).collect();
        ids.resize(max_len, Vocabulary::PAD);
        ids
    }

    /// One token per line in id order, "<pad>" and "<oov>" first; [`Vocabulary::from_text`] reads it back.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.tokens.iter().map(|t| t.len() + 1).sum());
        for token in &self.tokens {
            text.push_str(token);
            text.push('\n');
        }
        text
    }

    /// Reads what [`Vocabulary::to_text`] wrote; the error names the line.
    pub fn from_text(text: &str) -> Result<Vocabulary, String> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        // "\r" too: the file may have been through a Windows editor, and no token holds one.
        let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
        for (line_number, placeholder) in [(1, PAD_TEXT), (2, OOV_TEXT)] {
            let line = lines.next().unwrap_or_default();
            if line != placeholder {
                return Err(format!("line {line_number}: expected {placeholder:?}, found {line:?}"));
            }
        }
        let mut tokens = Vec::new();
        let mut seen = HashMap::new();
        for (index, token) in lines.enumerate() {
            let line_number = index + 3;
            if !is_storable(token) {
                return Err(format!("line {line_number}: {token:?} is not a token"));
            }
            if let Some(first) = seen.insert(token, line_number) {
                return Err(format!("line {line_number}: {token:?} repeats line {first}"));
            }
            tokens.push(token.to_owned());
        }
        Ok(Vocabulary::from_tokens(tokens))
    }

    /// From the real tokens in id order, placeholders not included.
    fn from_tokens(real_tokens: Vec<String>) -> Vocabulary {
        let ids = real_tokens.iter().enumerate().map(|(i, token)| (token.clone(), i as u32 + 2)).collect();
        let mut tokens = Vec::with_capacity(real_tokens.len() + 2);
        tokens.extend([PAD_TEXT.to_owned(), OOV_TEXT.to_owned()]);
        tokens.extend(real_tokens);
        Vocabulary { tokens, ids }
    }
}

fn is_storable(token: &str) -> bool {
    !token.is_empty() && !token.contains(['\n', '\r']) && token != PAD_TEXT && token != OOV_TEXT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(texts: &[&str]) -> Vec<Vec<String>> {
        texts.iter().map(|text| text.split(' ').map(str::to_owned).collect()).collect()
    }

    /// Builds from space-separated `texts` and checks the tokens in id order (placeholders left out).
    fn check(texts: &[&str], max_size: usize, min_freq: usize, expected: &[&str]) {
        let docs = documents(texts);
        let vocabulary = Vocabulary::build(docs.iter().map(Vec::as_slice), max_size, min_freq);
        let tokens: Vec<&str> = (2..vocabulary.len() as u32).filter_map(|id| vocabulary.token(id)).collect();
        assert_eq!(tokens, expected, "build({texts:?}, max_size {max_size}, min_freq {min_freq})");
        assert_eq!(vocabulary.len(), expected.len() + 2);
    }

    #[test]
    fn vocabulary_build_table() {
        let texts = ["b a c a", "c b a d", "e"];
        // a: 3, b: 2, c: 2, d: 1, e: 1; ties by text.
        check(&texts, 100, 1, &["a", "b", "c", "d", "e"]);
        check(&texts, 100, 0, &["a", "b", "c", "d", "e"]);
        check(&texts, 100, 2, &["a", "b", "c"]);
        check(&texts, 100, 4, &[]);
        check(&texts, 4, 1, &["a", "b"]);
        check(&texts, 2, 1, &[]);
        check(&texts, 0, 1, &[]);
        check(&["x <pad> <oov> x"], 100, 1, &["x"]);
        check(&[], 100, 1, &[]);
    }

    #[test]
    fn vocabulary_ids_and_encode() {
        let docs = documents(&["the film the end", "the film"]);
        let vocabulary = Vocabulary::build(docs.iter().map(Vec::as_slice), 10, 2);
        let ids = |text: &str| vocabulary.encode(&documents(&[text])[0], 5);
        assert_eq!((Vocabulary::PAD, Vocabulary::OOV), (0, 1));
        assert_eq!([vocabulary.id("the"), vocabulary.id("film"), vocabulary.id("end")], [2, 3, Vocabulary::OOV]);
        assert_eq!(vocabulary.id("<pad>"), Vocabulary::OOV);
        assert_eq!(
            [vocabulary.token(0), vocabulary.token(1), vocabulary.token(3), vocabulary.token(4)],
            [Some("<pad>"), Some("<oov>"), Some("film"), None]
        );
        assert_eq!(ids("the film"), [2, 3, 0, 0, 0]);
        assert_eq!(ids("the end film the film the film"), [2, 1, 3, 2, 3]);
        assert_eq!(vocabulary.encode(&[], 3), [0, 0, 0]);
        assert_eq!(vocabulary.encode(&documents(&["the"])[0], 0), Vec::<u32>::new());
    }

    #[test]
    fn vocabulary_text_round_trip() {
        let docs = documents(&["don't stop — café don't 東京 !"]);
        let vocabulary = Vocabulary::build(docs.iter().map(Vec::as_slice), 100, 1);
        let text = vocabulary.to_text();
        assert_eq!(text, "<pad>\n<oov>\ndon't\n!\ncafé\nstop\n—\n東京\n");
        assert_eq!(Vocabulary::from_text(&text), Ok(vocabulary.clone()));
        assert_eq!(Vocabulary::from_text(&text.replace('\n', "\r\n")), Ok(vocabulary));
        assert_eq!(Vocabulary::from_text("<pad>\n<oov>\n"), Ok(Vocabulary::from_tokens(vec![])));
    }

    #[test]
    fn vocabulary_from_text_errors() {
        fn check_err(text: &str, expected: &str) {
            assert_eq!(Vocabulary::from_text(text), Err(expected.to_owned()), "{text:?}");
        }
        check_err("", "line 1: expected \"<pad>\", found \"\"");
        check_err("<pad>\n", "line 2: expected \"<oov>\", found \"\"");
        check_err("<oov>\n<pad>\n", "line 1: expected \"<pad>\", found \"<oov>\"");
        check_err("<pad>\n<oov>\na\n\nb\n", "line 4: \"\" is not a token");
        check_err("<pad>\n<oov>\na\n<pad>\n", "line 4: \"<pad>\" is not a token");
        check_err("<pad>\n<oov>\na\nb\na\n", "line 5: \"a\" repeats line 3");
    }
}
