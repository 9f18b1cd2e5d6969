//! The real `townhall` binary as a child process, for tests that kill it or run it under
//! process limits.

use crate::ADMIN_TOKEN;
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// A running `townhall serve` on `127.0.0.1:0` (HTTP and media); killed when dropped.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    pub base: String,
    pub addr: String,
}

/// How to start a [`Process`]: the binary (a test passes `env!("CARGO_BIN_EXE_townhall")`),
/// its data folder, extra flags and environment, and optionally a program that runs it (such
/// as `prlimit --nofile=200:200 --`).
#[derive(Clone, Debug)]
pub struct Launch {
    bin: PathBuf,
    data_dir: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    wrapper: Vec<OsString>,
    log: Option<PathBuf>,
}

impl Launch {
    pub fn new(bin: impl AsRef<Path>, data_dir: impl AsRef<Path>) -> Self {
        Self {
            bin: bin.as_ref().to_path_buf(),
            data_dir: data_dir.as_ref().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            wrapper: Vec::new(),
            log: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the binary through `program` (its last argument is usually `--`), which must exec
    /// it so the child's pid stays the server's.
    pub fn wrapped_in<I, S>(mut self, program: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = program.into_iter().map(Into::into).collect();
        self
    }

    /// Appends the server's log (stderr, at `TOWNHALL_LOG`, `warn` unless set) to `path`
    /// instead of discarding it, so a failing test can show what a node said.
    pub fn log_to(mut self, path: impl AsRef<Path>) -> Self {
        self.log = Some(path.as_ref().to_path_buf());
        self
    }

    /// Starts the server and waits for its first line, which names the address it listens on.
    pub fn spawn(self) -> Process {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = std::process::Command::new(program);
                cmd.args(rest).arg(&self.bin);
                cmd
            }
            None => std::process::Command::new(&self.bin),
        };
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--media-bind-ip", "127.0.0.1"])
            .args(["--media-udp-port", "0", "--media-tcp-port", "0"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env("TOWNHALL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TOWNHALL_LOG", "warn")
            .envs(self.env)
            .stdout(Stdio::piped())
            .stderr(match &self.log {
                Some(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap()
                    .into(),
                None => Stdio::null(),
            });
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        // Keep reading so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = line
            .trim()
            .strip_prefix("townhall listening on ")
            .unwrap_or_else(|| panic!("the first line names the address, not {line:?}"))
            .to_owned();
        let addr = base.trim_start_matches("http://").to_owned();
        Process { child, base, addr }
    }
}

impl Process {
    /// `townhall serve` of `bin` on 127.0.0.1:0 with its data in `data_dir`.
    pub fn spawn(bin: impl AsRef<Path>, data_dir: impl AsRef<Path>) -> Self {
        Launch::new(bin, data_dir).spawn()
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL on unix
        let _ = self.child.wait();
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
