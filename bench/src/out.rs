//! Writing lines to stdout and stderr without panicking when the reader goes away.
//!
//! `println!` panics when a write fails, and `segexpand demo | head -1` closes the pipe
//! after one line: the next write gets EPIPE (Rust ignores SIGPIPE). These helpers treat
//! a closed or failing stream as "stop printing to it": the write is dropped, every
//! later write to that stream too, and the program carries on (its exit code, not its
//! output, says how it went).
//!
//! ```ignore
//! out::line(format_args!("{n} rows"));      // stdout, with a newline
//! out::err_line(format_args!("warning: {e}")); // stderr, with a newline
//! out::err_text(format_args!("\r{bar}"));   // stderr, no newline (progress bars)
//! ```

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write(closed: &AtomicBool, w: &mut dyn Write, args: fmt::Arguments<'_>, newline: bool) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let r = (|| {
        w.write_fmt(args)?;
        if newline {
            w.write_all(b"\n")?;
        }
        w.flush()
    })();
    if r.is_err() {
        // EPIPE (the reader is gone) or another failure: nothing more to say there.
        closed.store(true, Ordering::Relaxed);
    }
}

/// Prints `args` and a newline to stdout; a failed write (a closed pipe) ends printing
/// to stdout, silently.
pub fn line(args: fmt::Arguments<'_>) {
    write(&STDOUT_CLOSED, &mut std::io::stdout().lock(), args, true);
}

/// Prints `args` and a newline to stderr; a failed write ends printing to stderr.
pub fn err_line(args: fmt::Arguments<'_>) {
    write(&STDERR_CLOSED, &mut std::io::stderr().lock(), args, true);
}

/// Prints `args` to stderr without a newline (a progress line redrawn with `\r`).
pub fn err_text(args: fmt::Arguments<'_>) {
    write(&STDERR_CLOSED, &mut std::io::stderr().lock(), args, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_stops_printing_without_a_panic() {
        let closed = AtomicBool::new(false);
        write(&closed, &mut Broken, format_args!("one"), true);
        assert!(closed.load(Ordering::Relaxed));
        // Later writes are dropped (and do not touch the writer).
        write(&closed, &mut Broken, format_args!("two"), true);
        let mut v = Vec::new();
        let open = AtomicBool::new(false);
        write(&open, &mut v, format_args!("x {}", 1), true);
        write(&open, &mut v, format_args!("y"), false);
        assert_eq!(v, b"x 1\ny");
    }
}
