//! Capturing what the crate logs during a test, to assert on it.
//!
//! One global subscriber per test binary writes each event to the capture of the thread that
//! emits it. A per-test `set_default` subscriber would be simpler, but tests running in
//! parallel then race on tracing's cached callsite interest and maximum level, and a capture
//! sometimes misses events under load.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

thread_local! {
    static CURRENT: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Every line logged on this thread while the guard lives (servers spawned by a
/// current-thread test runtime log here too).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

/// Stops the capture of this thread when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Writes to this thread's capture, or nowhere.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|c| {
            if let Some(captured) = c.borrow().as_ref() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Starts capturing this thread's events at every level.
    pub fn start() -> (Self, CaptureGuard) {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(|| ThreadSink)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in tests");
        });
        let captured = Captured::default();
        CURRENT.with(|c| *c.borrow_mut() = Some(captured.clone()));
        (captured, CaptureGuard(()))
    }

    /// The same as [`start`](Self::start).
    pub fn install() -> (Self, CaptureGuard) {
        Self::start()
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A capture is also a writer, for tests that build a subscriber of their own.
impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
