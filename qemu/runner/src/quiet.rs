//! Stdout that ends the process quietly once its reader has gone.
//!
//! Rust ignores SIGPIPE, so writing to a closed pipe (`spindle-qemu --help | head -3`) is an
//! error, which `println!` turns into a panic. [`out!`] and [`outln!`] (the syntax of `print!`
//! and `println!`) instead exit at once with status [`CLOSED_STATUS`], silently,
//! as if SIGPIPE had ended the process; restoring SIGPIPE itself would take `unsafe`.

use std::fmt;
use std::io::{self, Write};

/// Exit status after the reader went away: what a shell reports for a death by SIGPIPE
/// (128 + 13).
pub const CLOSED_STATUS: i32 = 141;

/// Writing failed: stdout's reader is gone (or stdout is otherwise unusable), so the process
/// should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quit;

impl Quit {
    /// Ends the process with [`CLOSED_STATUS`], printing nothing.
    pub fn exit(self) -> ! {
        std::process::exit(CLOSED_STATUS)
    }
}

/// Writes `args` to `out` and flushes it. Any error means quitting: with the reader gone there
/// is nobody left to tell, and no later write can succeed either.
pub fn write_flushed<W: Write>(out: &mut W, args: fmt::Arguments<'_>) -> Result<(), Quit> {
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|_| Quit)
}

/// Writes `bytes` to `out` and flushes it, or tells to quit.
pub fn write_bytes_flushed<W: Write>(out: &mut W, bytes: &[u8]) -> Result<(), Quit> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|_| Quit)
}

/// Behind [`out!`] and [`outln!`]: writes to stdout, or ends the process.
///
/// Flushing every time makes a closed pipe show at once, not at exit, where the error would be
/// lost and the status would be 0.
#[doc(hidden)]
pub fn print(args: fmt::Arguments<'_>) {
    // The lock is released before exiting, so the exit's own flush of stdout cannot wait on it.
    let written = write_flushed(&mut io::stdout().lock(), args);
    if let Err(quit) = written {
        quit.exit();
    }
}

/// `print!` that exits quietly with status 141 when stdout's reader is gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::quiet::print(format_args!($($arg)*))
    };
}

/// `println!` that exits quietly with status 141 when stdout's reader is gone.
macro_rules! outln {
    () => {
        $crate::quiet::out!("\n")
    };
    // Text and newline under one lock, so no other thread's output lands between them.
    ($($arg:tt)*) => {
        $crate::quiet::out!("{}\n", format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone after `room` bytes; it records what got through.
    struct ClosingPipe {
        room: usize,
        written: Vec<u8>,
        flush_fails: bool,
    }

    impl ClosingPipe {
        fn new(room: usize) -> Self {
            ClosingPipe {
                room,
                written: Vec::new(),
                flush_fails: false,
            }
        }
    }

    impl Write for ClosingPipe {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.written.len() >= self.room {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let taken = bytes.len().min(self.room - self.written.len());
            self.written.extend_from_slice(&bytes[..taken]);
            Ok(taken)
        }

        fn flush(&mut self) -> io::Result<()> {
            if self.flush_fails {
                Err(io::ErrorKind::BrokenPipe.into())
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn an_open_pipe_takes_everything() {
        let mut pipe = ClosingPipe::new(100);
        assert_eq!(write_flushed(&mut pipe, format_args!("a{}\n", 1)), Ok(()));
        assert_eq!(write_flushed(&mut pipe, format_args!("b")), Ok(()));
        assert_eq!(write_bytes_flushed(&mut pipe, b"\x1b[0mc"), Ok(()));
        assert_eq!(pipe.written, b"a1\nb\x1b[0mc");
    }

    #[test]
    fn a_closed_pipe_means_quit() {
        let mut pipe = ClosingPipe::new(0);
        assert_eq!(write_flushed(&mut pipe, format_args!("usage")), Err(Quit));
        assert_eq!(write_bytes_flushed(&mut pipe, b"console"), Err(Quit));
        assert!(pipe.written.is_empty());
    }

    #[test]
    fn a_pipe_closing_mid_line_means_quit() {
        let mut pipe = ClosingPipe::new(3);
        assert_eq!(
            write_flushed(&mut pipe, format_args!("usage: {}\n", "x")),
            Err(Quit)
        );
        assert_eq!(pipe.written, b"usa");
    }

    #[test]
    fn a_failing_flush_means_quit() {
        let mut pipe = ClosingPipe::new(100);
        pipe.flush_fails = true;
        assert_eq!(write_flushed(&mut pipe, format_args!("x")), Err(Quit));
        assert_eq!(write_bytes_flushed(&mut pipe, b"x"), Err(Quit));
    }

    #[test]
    fn any_write_error_means_quit() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("EIO"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert_eq!(write_flushed(&mut Broken, format_args!("x")), Err(Quit));
        assert_eq!(write_bytes_flushed(&mut Broken, b"x"), Err(Quit));
    }
}
