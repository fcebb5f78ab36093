//! One simulated learner: a task that enters, maybe sits, does what the driver tells it, and
//! keeps its own account of what it heard (latencies, chat receipts, reaction totals, seats).
//! Nothing is shared on the hot path but a few counters the driver watches to know when every
//! delivery has arrived.

use crate::wire::{Cmd, Dialect, Event, Link, Person};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Counters every learner adds to; the driver reads them.
#[derive(Debug)]
pub struct Shared {
    /// The run's time origin: chat texts carry microseconds since it.
    pub epoch: Instant,
    /// Learners that entered.
    pub entered: AtomicU64,
    /// Learners that saw themselves seated for the first time.
    pub seated: AtomicU64,
    /// Learners whose connection failed or dropped.
    pub failed: AtomicU64,
    /// Messages received, all learners: frames on the room protocol and Socket.IO, `MSG`s on
    /// NATS.
    pub frames: AtomicU64,
    /// Payload bytes of the frames received after the welcome, all learners.
    pub bytes: AtomicU64,
    /// Benchmark chat messages received, all learners.
    pub chat_receipts: AtomicU64,
    /// Emotion presses heard in bursts, all learners.
    pub burst_receipts: AtomicU64,
    /// Refusals, by command.
    pub chat_refused: AtomicU64,
    /// Refused presses.
    pub react_refused: AtomicU64,
    /// Refused seat moves.
    pub seat_refused: AtomicU64,
}

impl Shared {
    /// New counters starting now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            entered: AtomicU64::new(0),
            seated: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            chat_receipts: AtomicU64::new(0),
            burst_receipts: AtomicU64::new(0),
            chat_refused: AtomicU64::new(0),
            react_refused: AtomicU64::new(0),
            seat_refused: AtomicU64::new(0),
        })
    }

    /// Microseconds since the epoch.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The text of benchmark chat message number `g`, sent from `node` at `sent_us`.
pub fn chat_text(g: u64, node: usize, sent_us: u64) -> String {
    format!("b {g} {node} {sent_us}")
}

fn parse_chat(text: &str) -> Option<(u64, usize, u64)> {
    let mut parts = text.strip_prefix("b ")?.split(' ');
    let g = parts.next()?.parse().ok()?;
    let node = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((g, node, sent))
}

/// A histogram of microseconds, 1 µs to 10 minutes at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used, reason = "constant, valid bounds")]
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// How a learner is set up.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Its number in the run.
    pub idx: usize,
    /// The node it connects to (an index into the run's nodes).
    pub node: usize,
    /// Who it is.
    pub person: Person,
    /// Source address of its TCP connection.
    pub source: IpAddr,
    /// The node's address.
    pub target: SocketAddr,
    /// The seat to take once in, if any.
    pub sit: Option<(u16, u16)>,
    /// Keep the whole seat map (one observer per run is enough).
    pub observe: bool,
    /// When to start, counted from the call to [`spawn`].
    pub start_after: Duration,
}

/// What a learner heard and did.
#[derive(Debug)]
pub struct Report {
    /// Its number.
    pub idx: usize,
    /// How the server names it to others in the room (seat occupants, chat authors).
    pub member: String,
    /// Why it could not enter or was cut off, if it was.
    pub error: Option<String>,
    /// Time from its start to the welcome.
    pub entered_after: Option<Duration>,
    /// Time from its start to seeing itself in its first seat.
    pub seated_after: Option<Duration>,
    /// Chat latency, send to receipt, µs.
    pub latency: Histogram<u64>,
    /// The same, for messages sent through another node.
    pub cross_node: Histogram<u64>,
    /// How often each benchmark chat message `g` arrived.
    pub received: Vec<u8>,
    /// Emotion presses heard, all keys.
    pub bursts: u64,
    /// Where it sits, as the room told it.
    pub seat: Option<(u16, u16)>,
    /// The whole seat map (observers only): who sits where, or only that someone does where
    /// the server does not tell learners who (room-server).
    pub seat_map: Option<HashMap<(u16, u16), Option<String>>>,
    /// The grid's columns, which seat numbers count by (observers on room-server).
    pub cols: u16,
    /// Refusals it got, by `command/code`.
    pub refused: BTreeMap<String, u64>,
}

/// A running learner: its command channel and its task.
#[derive(Debug)]
pub struct Handle {
    /// Commands to it.
    pub tx: mpsc::UnboundedSender<Cmd>,
    /// Its report, once the run stops.
    pub task: tokio::task::JoinHandle<Report>,
}

/// Starts a learner. It runs until `stop` turns true or its connection fails.
pub fn spawn(
    dialect: Dialect,
    lecture: Arc<str>,
    plan: Plan,
    shared: Arc<Shared>,
    gate: Arc<tokio::sync::Semaphore>,
    stop: watch::Receiver<bool>,
) -> Handle {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(dialect, lecture, plan, shared, gate, stop, rx));
    Handle { tx, task }
}

async fn run(
    dialect: Dialect,
    lecture: Arc<str>,
    plan: Plan,
    shared: Arc<Shared>,
    gate: Arc<tokio::sync::Semaphore>,
    mut stop: watch::Receiver<bool>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
) -> Report {
    let mut report = Report {
        idx: plan.idx,
        member: plan.person.member.clone(),
        error: None,
        entered_after: None,
        seated_after: None,
        latency: histogram(),
        cross_node: histogram(),
        received: Vec::new(),
        bursts: 0,
        seat: None,
        seat_map: plan.observe.then(HashMap::new),
        cols: 0,
        refused: BTreeMap::new(),
    };
    tokio::time::sleep(plan.start_after).await;
    let began = Instant::now();
    // A bounded number of handshakes at once, so the generator does not stampede itself.
    let permit = gate.acquire().await;
    let entered = dialect
        .enter_reading(
            plan.source,
            plan.target,
            &lecture,
            &plan.person,
            plan.observe,
        )
        .await;
    drop(permit);
    let (ws, welcome) = match entered {
        Ok(ok) => ok,
        Err(e) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            report.error = Some(format!("{e:#}"));
            return report;
        }
    };
    report.entered_after = Some(began.elapsed());
    shared.entered.fetch_add(1, Ordering::Relaxed);
    report.cols = welcome.cols;
    if let Some(map) = &mut report.seat_map {
        for (r, c, u) in welcome.seats {
            map.insert((r, c), u);
        }
    }
    let mut link = Link::new(dialect, &lecture, &plan.person, &welcome.rest);
    let (mut sink, mut stream) = ws.split();
    if let Some((r, c)) = plan.sit {
        match link.encode(&Cmd::TakeSeat(r, c)) {
            Ok(frame) => {
                if let Err(e) = sink.send(frame).await {
                    report.error = Some(format!("sending: {e}"));
                }
            }
            Err(e) => report.error = Some(format!("{e:#}")),
        }
    }
    let me = plan.person.member.as_str();
    while report.error.is_none() {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let sent = match link.encode(&cmd) {
                    Ok(frame) => sink.send(frame).await.map_err(anyhow::Error::from),
                    Err(e) => Err(e),
                };
                if let Err(e) = sent {
                    report.error = Some(format!("sending: {e:#}"));
                }
            }
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => { report.error = Some(format!("reading: {e}")); break }
                    None => { report.error = Some("closed by the server".into()); break }
                };
                let now = shared.now_us();
                shared.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
                let heard = link.read(&frame, |event| {
                    hear(&mut report, &shared, me, plan.node, now, began, event);
                });
                match heard {
                    Ok(heard) => {
                        shared.frames.fetch_add(heard.deliveries, Ordering::Relaxed);
                        if let Some(answer) = heard.answer
                            && let Err(e) = sink.send(answer).await
                        {
                            report.error = Some(format!("sending: {e}"));
                        }
                    }
                    Err(e) => report.error = Some(format!("{e:#}")),
                }
            }
        }
    }
    if report.error.is_some() {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    let _ = sink.close().await;
    report
}

fn hear(
    report: &mut Report,
    shared: &Shared,
    me: &str,
    my_node: usize,
    now_us: u64,
    began: Instant,
    event: Event,
) {
    match event {
        Event::Chat(text) => {
            let Some((g, node, sent)) = parse_chat(&text) else {
                return;
            };
            let latency = now_us.saturating_sub(sent).max(1);
            let _ = report.latency.record(latency);
            if node != my_node {
                let _ = report.cross_node.record(latency);
            }
            let g = usize::try_from(g).unwrap_or(usize::MAX);
            if g >= report.received.len() {
                report
                    .received
                    .resize(g.saturating_add(1).max(report.received.len() * 2), 0);
            }
            if let Some(slot) = report.received.get_mut(g) {
                *slot = slot.saturating_add(1);
            }
            shared.chat_receipts.fetch_add(1, Ordering::Relaxed);
        }
        Event::Burst(n) => {
            report.bursts += n;
            shared.burst_receipts.fetch_add(n, Ordering::Relaxed);
        }
        Event::Seat(r, c, user) => {
            if let Some(map) = &mut report.seat_map {
                match &user {
                    Some(u) => map.insert((r, c), Some(u.clone())),
                    None => map.remove(&(r, c)),
                };
            }
            if user.as_deref() == Some(me) {
                report.seat = Some((r, c));
                if report.seated_after.is_none() {
                    report.seated_after = Some(began.elapsed());
                    shared.seated.fetch_add(1, Ordering::Relaxed);
                }
            } else if report.seat == Some((r, c)) {
                report.seat = None;
            }
        }
        Event::Occupied(n, occupied) => {
            let cols = u32::from(report.cols);
            if let Some(map) = &mut report.seat_map
                && cols > 0
                && let (Ok(r), Ok(c)) = (u16::try_from(n / cols), u16::try_from(n % cols))
            {
                if occupied {
                    map.insert((r, c), None);
                } else {
                    map.remove(&(r, c));
                }
            }
        }
        Event::YourSeat(seat) => {
            report.seat = seat;
            if seat.is_some() && report.seated_after.is_none() {
                report.seated_after = Some(began.elapsed());
                shared.seated.fetch_add(1, Ordering::Relaxed);
            }
        }
        Event::Refused { command, code } => {
            let counter = match command.as_str() {
                "chat" => &shared.chat_refused,
                "react" => &shared.react_refused,
                _ => &shared.seat_refused,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            *report
                .refused
                .entry(format!("{command}/{code}"))
                .or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_texts_parse_back() {
        assert_eq!(
            parse_chat(&chat_text(42, 2, 123_456)),
            Some((42, 2, 123_456))
        );
        assert_eq!(parse_chat("hello"), None);
        assert_eq!(parse_chat("b x 1 2"), None);
    }
}
