//! Output capture with one byte budget shared by stdout and stderr.

/// Which pipe a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Captured output, capped at `cap` bytes across both streams.
#[derive(Debug)]
pub(crate) struct Capture {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn used(&self) -> usize {
        self.stdout.len() + self.stderr.len()
    }

    /// Appends a chunk; returns true when it did not fit. The part that fits is kept and a
    /// marker line is appended to that stream, once.
    pub(crate) fn push(&mut self, stream: Stream, data: &[u8]) -> bool {
        if self.truncated {
            return true;
        }
        let room = self.cap.saturating_sub(self.used());
        let fits = data.len() <= room;
        let taken = &data[..data.len().min(room)];
        let cap = self.cap;
        let buffer = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buffer.extend_from_slice(taken);
        if !fits {
            buffer.extend_from_slice(marker(cap).as_bytes());
            self.truncated = true;
        }
        !fits
    }

    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }
}

/// The line appended where output was cut.
pub(crate) fn marker(cap: usize) -> String {
    format!("\n[output truncated: limit of {cap} bytes reached]\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_and_marker_added_once() {
        let mut c = Capture::new(10);
        assert!(!c.push(Stream::Stdout, b"hello"));
        assert!(!c.push(Stream::Stderr, b"err"));
        assert!(c.push(Stream::Stdout, b"world"));
        assert!(c.push(Stream::Stderr, b"more"));
        assert!(c.truncated());
        let expected = format!("hellowo{}", marker(10));
        assert_eq!(String::from_utf8_lossy(&c.stdout), expected);
        assert_eq!(c.stderr, b"err");
    }

    #[test]
    fn exact_fit_is_not_truncation() {
        let mut c = Capture::new(4);
        assert!(!c.push(Stream::Stdout, b"abcd"));
        assert!(!c.truncated());
        assert!(c.push(Stream::Stdout, b"e"));
        assert!(c.truncated());
    }
}
