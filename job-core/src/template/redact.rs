//! Redaction of secret values from streamed output.

use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

use super::params::MASK;

/// Secrets shorter than this are not redacted: they would mangle ordinary output and are
/// too short to be secrets worth the name.
pub const MIN_SECRET_LEN: usize = 4;

/// Replaces secret values in a stream of output chunks with [`MASK`].
///
/// It is stateful: a secret split across two chunks is still caught, because the end of
/// each chunk that could be the start of a secret is held back until the next chunk (or
/// [`finish`](Self::finish)) shows whether it is. Use one redactor per stream (stdout,
/// stderr) of each host run.
pub struct OutputRedactor {
    matcher: Option<Regex>,
    longest: usize,
    tail: Vec<u8>,
}

impl fmt::Debug for OutputRedactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputRedactor")
            .field("secrets", &self.matcher.is_some())
            .field("held_back", &self.tail.len())
            .finish()
    }
}

impl OutputRedactor {
    /// A redactor for `secrets` (values shorter than [`MIN_SECRET_LEN`] bytes are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let longest = secrets.first().map_or(0, String::len);
        let pattern = secrets
            .iter()
            .map(|s| regex::escape(s))
            .collect::<Vec<_>>()
            .join("|");
        let matcher = if secrets.is_empty() {
            None
        } else {
            RegexBuilder::new(&pattern)
                .unicode(false)
                .size_limit(64 * 1024 * 1024)
                .build()
                .ok()
        };
        Self {
            matcher,
            longest,
            tail: Vec::new(),
        }
    }

    /// Whether there is anything to redact.
    pub fn is_active(&self) -> bool {
        self.matcher.is_some()
    }

    /// Feeds the next chunk and returns the output that is safe to emit now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let Some(matcher) = &self.matcher else {
            return chunk.to_vec();
        };
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(chunk);
        // A match starting before `safe_end` lies wholly inside `buf`; one starting later
        // might continue in the next chunk.
        let safe_end = buf.len().saturating_sub(self.longest - 1);
        let mut out = Vec::with_capacity(buf.len());
        let mut emitted = 0;
        for m in matcher.find_iter(&buf) {
            if m.start() >= safe_end {
                break;
            }
            out.extend_from_slice(&buf[emitted..m.start()]);
            out.extend_from_slice(MASK.as_bytes());
            emitted = m.end();
        }
        let cut = safe_end.max(emitted);
        out.extend_from_slice(&buf[emitted..cut]);
        self.tail = buf[cut..].to_vec();
        out
    }

    /// Ends the stream and returns the held-back output, redacted.
    pub fn finish(mut self) -> Vec<u8> {
        let tail = std::mem::take(&mut self.tail);
        match &self.matcher {
            Some(m) => m.replace_all(&tail, MASK.as_bytes()).into_owned(),
            None => tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secrets: &[&str], chunks: &[&str]) -> String {
        let mut r = OutputRedactor::new(secrets);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c.as_bytes()));
        }
        out.extend(r.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn secrets_are_masked_within_and_across_chunks() {
        assert_eq!(run(&["hunter2"], &["pw=hunter2\n"]), "pw=******\n");
        assert_eq!(run(&["hunter2"], &["pw=hun", "ter2 ok"]), "pw=****** ok");
        assert_eq!(
            run(&["hunter2"], &["h", "u", "n", "t", "e", "r", "2"]),
            "******"
        );
        assert_eq!(run(&["hunter2"], &["hunt", "er"]), "hunter");
    }

    #[test]
    fn overlapping_secrets_mask_the_longest_and_short_ones_are_ignored() {
        assert_eq!(run(&["abcd", "abcdefgh"], &["xabcdefghx"]), "x******x");
        assert_eq!(run(&["ab"], &["abc"]), "abc");
    }
}
