//! Turning a stream of token bytes into text pieces: never splitting a UTF-8 character, and
//! cutting at the first stop string even when it arrives across several tokens.

/// Collects token bytes and releases the longest complete UTF-8 prefix.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Adds bytes and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_some() => {
                // Invalid, not merely incomplete: replace it so the stream moves on.
                let text = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return text;
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.pending.split_off(valid);
        let done = std::mem::replace(&mut self.pending, rest);
        String::from_utf8(done).expect("validated above")
    }

    /// Returns whatever is left, without an incomplete trailing character: when the token budget
    /// cuts a character in half, its first bytes are dropped (on every route alike), never turned
    /// into U+FFFD.
    pub fn finish(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        let complete = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => pending.len(),
        };
        String::from_utf8_lossy(&pending[..complete]).into_owned()
    }
}

/// Holds back text that could be the start of a stop string.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    stopped: bool,
}

impl StopMatcher {
    /// A matcher for these stop strings (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
            stopped: false,
        }
    }

    /// Whether a stop string has been seen.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Adds text; returns what can be emitted now. After a stop string nothing more is emitted.
    pub fn push(&mut self, text: &str) -> String {
        if self.stopped {
            return String::new();
        }
        self.held.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            let out = self.held[..at].to_string();
            self.held.clear();
            return out;
        }
        let keep = self.longest_partial_stop();
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        out
    }

    /// Releases the held text at the end of generation.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length in bytes of the longest suffix of `held` that is a proper prefix of a stop string.
    fn longest_partial_stop(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                if i > best && self.held.ends_with(&stop[..i]) {
                    best = i;
                }
            }
        }
        best
    }
}

/// Makes a stream's pieces add up to the text a non-streamed call returns, which is stripped
/// of surrounding whitespace: leading whitespace is dropped, trailing whitespace held until more
/// text follows it (and dropped at the end).
#[derive(Debug, Default)]
pub struct Trimmer {
    started: bool,
    held: String,
}

impl Trimmer {
    /// The part of `piece` that can be shown now (often empty).
    pub fn push(&mut self, piece: &str) -> String {
        let piece = if self.started {
            piece
        } else {
            piece.trim_start()
        };
        if piece.is_empty() {
            return String::new();
        }
        self.started = true;
        let body = piece.trim_end();
        if body.is_empty() {
            self.held.push_str(piece);
            return String::new();
        }
        let mut shown = std::mem::take(&mut self.held);
        shown.push_str(body);
        self.held.push_str(&piece[body.len()..]);
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_pieces_add_up_to_the_trimmed_text() {
        let cases: [&[&str]; 4] = [
            &["\n ", " Hello", " ", "\n", "world", "!\n", "\n"],
            &["  ", "\t"],
            &["a", " b ", " c"],
            &["\u{3000}x\u{3000}", "y"],
        ];
        for pieces in cases {
            let mut trimmer = Trimmer::default();
            let shown: String = pieces.iter().map(|p| trimmer.push(p)).collect();
            assert_eq!(shown, pieces.concat().trim(), "{pieces:?}");
        }
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        let mut a = Utf8Assembler::default();
        let bytes = "é€😀".as_bytes();
        let mut out = String::new();
        for b in bytes {
            let piece = a.push(&[*b]);
            assert!(piece.is_empty() || piece.chars().count() == 1);
            out.push_str(&piece);
        }
        out.push_str(&a.finish());
        assert_eq!(out, "é€😀");
    }

    #[test]
    fn a_character_cut_by_the_budget_is_dropped() {
        let mut a = Utf8Assembler::default();
        let star = "🌟".as_bytes();
        assert_eq!(a.push(b"ok "), "ok ");
        assert_eq!(a.push(&star[..2]), "");
        assert_eq!(a.finish(), "");
        assert_eq!(a.push(star), "🌟");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut a = Utf8Assembler::default();
        assert_eq!(a.push(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn stop_string_across_pieces_is_cut() {
        let mut m = StopMatcher::new(vec!["<|im_end|>".into(), "END".into()]);
        let mut out = String::new();
        for piece in ["Hello", " wor", "ld<|im", "_end|>more"] {
            out.push_str(&m.push(piece));
        }
        assert!(m.stopped());
        assert_eq!(out, "Hello world");
    }

    #[test]
    fn partial_match_that_fails_is_released() {
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("the EN"), "the ");
        assert_eq!(m.push("D?"), "");
        assert!(m.stopped());
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("the EN"), "the ");
        assert_eq!(m.push("ergy"), "ENergy");
        assert_eq!(m.finish(), "");
    }

    #[test]
    fn earliest_stop_wins() {
        let mut m = StopMatcher::new(vec!["b".into(), "a".into()]);
        assert_eq!(m.push("xxab"), "xx");
    }
}
