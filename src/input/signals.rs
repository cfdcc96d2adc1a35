//! Unix signals turned into [`Command`]s on their own thread (signal-hook's self-pipe iterator,
//! so nothing but an atomic flag and a pipe write happens in the handler itself).
//!
//! SIGTERM/SIGINT -> Quit, SIGHUP -> ReloadConfig, SIGUSR1 -> NextStyle, SIGUSR2 -> PrevStyle.
//! signal-hook keeps one pending flag per signal, so a storm coalesces (as the kernel does) but
//! can never hide a SIGTERM behind a thousand SIGUSR1s; the channel is unbounded, so forwarding
//! never blocks.

use crate::frame::Command;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::{Handle, Signals};
use std::io;
use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};

const HANDLED: [i32; 5] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2];

/// The command a signal stands for (`None` for signals we do not handle).
pub fn signal_command(sig: i32) -> Option<Command> {
    match sig {
        SIGTERM | SIGINT => Some(Command::Quit),
        SIGHUP => Some(Command::ReloadConfig),
        SIGUSR1 => Some(Command::NextStyle),
        SIGUSR2 => Some(Command::PrevStyle),
        _ => None,
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        SIGUSR1 => "SIGUSR1",
        SIGUSR2 => "SIGUSR2",
        _ => "signal",
    }
}

/// The running signal thread. [`close`](Self::close) (or drop) stops it.
pub struct SignalsHandle {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalsHandle {
    /// Stops the thread and waits for it. Note: the signals stay caught (and are then ignored)
    /// afterwards; signal-hook does not restore the default actions.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SignalsHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts catching SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and sends their commands to `tx`.
pub fn spawn_signals(tx: Sender<Command>) -> io::Result<SignalsHandle> {
    let mut signals = Signals::new(HANDLED)?;
    let handle = signals.handle();
    let thread = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let Some(cmd) = signal_command(sig) else {
                    continue;
                };
                if cmd == Command::Quit || cmd == Command::ReloadConfig {
                    log::info!("{} -> {cmd:?}", signal_name(sig));
                } else {
                    log::debug!("{} -> {cmd:?}", signal_name(sig));
                }
                let quit = cmd == Command::Quit;
                if tx.send(cmd).is_err() && quit {
                    // Nobody is listening any more, so nobody would quit: do what the signal
                    // would have done without us rather than swallow it.
                    log::warn!("{}: command receiver gone, terminating", signal_name(sig));
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                }
            }
            log::debug!("signal thread stopped");
        })?;
    Ok(SignalsHandle {
        handle,
        thread: Some(thread),
    })
}

/// Ignore SIGPIPE so a write to a closed socket/pipe is an `EPIPE` error, not death. (Rust
/// binaries already start with SIGPIPE ignored; this makes it explicit for library users.)
pub fn ignore_sigpipe() -> io::Result<()> {
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory-safety preconditions.
    let prev = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    if prev == libc::SIG_ERR {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_commands() {
        assert_eq!(signal_command(SIGTERM), Some(Command::Quit));
        assert_eq!(signal_command(SIGINT), Some(Command::Quit));
        assert_eq!(signal_command(SIGHUP), Some(Command::ReloadConfig));
        assert_eq!(signal_command(SIGUSR1), Some(Command::NextStyle));
        assert_eq!(signal_command(SIGUSR2), Some(Command::PrevStyle));
        assert_eq!(signal_command(libc::SIGCHLD), None);
    }
}
