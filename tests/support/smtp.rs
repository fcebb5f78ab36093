//! A real SMTP server (aiosmtpd, from PyPI; `scripts/test` installs it) on a free loopback
//! port, writing each message it takes to a folder the test reads.

use super::*;

/// One message as the SMTP server took it.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// `tests/support/smtp_sink.py` serving on a free loopback port, stopped by its id when
/// dropped (or by [`SmtpServer::stop`], and started again on the same port and folder).
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
    /// How long it takes to answer each message (seconds).
    delay_secs: f64,
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::start_slow(0.0)
    }

    /// A server that answers each message `delay_secs` after it arrived.
    pub fn start_slow(delay_secs: f64) -> Self {
        let (port, dir) = port_and_folder("smtp");
        let mut server = Self {
            port,
            child: None,
            dir,
            delay_secs,
        };
        server.restart();
        server
    }

    /// Stops the server (SIGKILL): connections to its port are refused until it is back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its port, keeping what it received.
    pub fn restart(&mut self) {
        self.stop();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_sink.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.dir)
            .arg(self.delay_secs.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs (scripts/test installs aiosmtpd)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(std::process::Child::try_wait) {
                panic!("the SMTP server exited ({status}): is aiosmtpd installed?");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the SMTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).expect("the folder").flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a message file");
            let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let text_of = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            out.push(Received {
                from: text_of("from"),
                to: v["to"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                subject: text_of("subject"),
                body: text_of("body"),
            });
        }
        out
    }

    /// Waits (at most `within`) until `want` says the messages received are as expected;
    /// them.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        want: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if want(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {within:?}; received {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
