//! The blocked-words list (`chat.blocked_words_file`): whole words, compared without case;
//! a message holding one is refused or has the word masked with `*`.

use std::collections::HashSet;

/// Most words the list may hold.
pub const MAX_WORDS: usize = 100_000;

#[derive(Debug, Default)]
pub struct BlockedWords {
    words: HashSet<String>,
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '\''
}

/// The words of `text` with their byte ranges.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !word_char(c))
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

impl BlockedWords {
    /// One word per line; blank lines and lines starting with `#` skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: HashSet<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect();
        if words.len() > MAX_WORDS {
            return Err(format!("{} words, at most {MAX_WORDS}", words.len()));
        }
        if let Some(w) = words.iter().find(|w| !w.chars().all(word_char)) {
            return Err(format!("{w:?} is not one word"));
        }
        Ok(Self { words })
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn blocked(&self, w: &str) -> bool {
        self.words.contains(&w.to_lowercase())
    }

    /// Whether `text` holds a blocked word.
    pub fn matches(&self, text: &str) -> bool {
        !self.words.is_empty() && words(text).any(|(_, w)| self.blocked(w))
    }

    /// `text` with each blocked word replaced by as many `*` as it has characters.
    pub fn mask(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, w) in words(text) {
            if self.blocked(w) {
                out.push_str(&text[at..start]);
                out.extend(std::iter::repeat_n('*', w.chars().count()));
                at = start + w.len();
            }
        }
        out.push_str(&text[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_without_case() {
        let b = BlockedWords::parse("# list\nSpam\n\n  scam \n").unwrap();
        assert!(b.matches("this is SPAM!"));
        assert!(!b.matches("spammer and scampi"), "whole words only");
        assert_eq!(b.mask("Spam, spam: a scam."), "****, ****: a ****.");
        assert_eq!(b.mask("nothing here"), "nothing here");
        assert!(BlockedWords::parse("two words").is_err());
        assert!(!BlockedWords::default().matches("spam"));
    }
}
