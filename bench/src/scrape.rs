//! Counters read from a room node's `/metrics` (OpenMetrics text): what the generator cannot
//! see from outside, such as how many `write` calls carried the frames it received.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Frames written to room sockets and the `write` calls that carried them, summed over nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Writes {
    /// `room_frames_written_total`.
    pub frames: f64,
    /// `room_socket_writes_total`.
    pub writes: f64,
}

impl Writes {
    /// Reads both counters from every node; `None` if a node does not answer.
    pub async fn of(nodes: impl IntoIterator<Item = SocketAddr>) -> Option<Self> {
        let mut sum = Self::default();
        for addr in nodes {
            let text = metrics_text(addr).await?;
            sum.frames += counter(&text, "room_frames_written_total")?;
            sum.writes += counter(&text, "room_socket_writes_total")?;
        }
        Some(sum)
    }

    /// Frames per `write` between `before` and `self`.
    pub fn per_write_since(&self, before: &Self) -> Option<f64> {
        let writes = self.writes - before.writes;
        (writes > 0.0).then(|| (self.frames - before.frames) / writes)
    }
}

/// `GET /metrics` over plain HTTP/1.0: the body, or `None`.
async fn metrics_text(addr: SocketAddr) -> Option<String> {
    let fetch = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?;
        (status == "200").then(|| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
}

/// The value of the sample line named `name` (no labels).
fn counter(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_read_by_its_exact_name() {
        let text = "# TYPE room_socket_writes counter\nroom_socket_writes_total 12\n\
                    room_frames_written_total 30\nroom_frames_written_totalx 5\n";
        assert_eq!(counter(text, "room_socket_writes_total"), Some(12.0));
        assert_eq!(counter(text, "room_frames_written_total"), Some(30.0));
        let before = Writes {
            frames: 10.0,
            writes: 2.0,
        };
        let after = Writes {
            frames: 30.0,
            writes: 12.0,
        };
        assert_eq!(after.per_write_since(&before), Some(2.0));
    }
}
