//! The in-process server's and worker's log lines, captured for a test that asserts
//! what is (and is not) logged. Install it before the app starts: the harness's own
//! subscriber then stays out of the way.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// Every line logged at info or above since [`LogCapture::install`].
#[derive(Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<u8>>>,
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Captures this process's logs at info and above, from now on. Panics when a
    /// subscriber was installed before (the test must call it first).
    pub fn install() -> Self {
        let capture = Self::default();
        let lines = Arc::clone(&capture.lines);
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&lines)))
            .try_init()
            .expect("the log capture is the first subscriber");
        capture
    }

    /// The lines captured so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}
