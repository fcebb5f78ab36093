//! One task per lecture: owns the lecture's [`Room`], feeds it what sessions send, and delivers
//! what it outputs. The only place the room core meets real time and real queues.

use super::conns::Conns;
use super::rules::{Burial, PressBatch};
use super::snapshot::{Snapshot, Snapshots};
use crate::archive::timeline::{Feed, Seen};
use crate::conn::outbox::{Frames, Full, Outbox, QueueTime, Sent, encode};
use crate::gate::store::AttendanceChange;
use crate::log::redis::{LogItem, LogPos, Waiting};
use crate::log::{LocalLog, RoomEntry, Sequenced};
use crate::media::{LectureMedia, MediaSource};
use crate::metrics::Metrics;
use crate::records::Record;
use protocol::server::{LectureInfo, Phase};
use protocol::{ClientMsg, CloseCode, Command, Epoch, ServerMsg, UnixMillis};
use room::{Attendance, Audience, ConnId, Identity, Output, Room, RoomSettings};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

/// What a room is told: an entry for its log (from a session, or the gate's events), and with
/// a join, where the joining connection's frames go.
#[derive(Debug)]
pub(crate) struct RoomInput {
    pub(crate) entry: RoomEntry,
    /// The joining connection's queue (with a [`RoomEntry::Join`] only).
    pub(crate) joining: Option<Outbox>,
}

impl RoomInput {
    /// An entry that brings no connection.
    pub(crate) fn entry(entry: RoomEntry) -> Self {
        Self {
            entry,
            joining: None,
        }
    }

    /// A connection with a verified ticket wants in; its frames go to `out`.
    pub(crate) fn join(entry: RoomEntry, out: Outbox) -> Self {
        Self {
            entry,
            joining: Some(out),
        }
    }
}

/// What a room's task needs of the node that runs it: the time, the node's view of the other
/// nodes, where records go, and its counters. The node implements it; the task never sees the
/// rest of the node.
pub(crate) trait RoomHost: Send + Sync + std::fmt::Debug {
    /// The time now (the node's clock).
    fn now(&self) -> UnixMillis;
    /// How long a room with nobody of this node's in it is kept.
    fn room_idle(&self) -> Duration;
    /// Watches whether Redis is unreachable (the room then runs on alone).
    fn degraded(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Whether Redis is unreachable now.
    fn is_degraded(&self) -> bool;
    /// The node a connection belongs to.
    fn node_of(&self, conn: ConnId) -> u64;
    /// Whether that node has stopped beating (its connections are then gone).
    fn node_is_dead(&self, node: u64) -> bool;
    /// Whether a connection is one of this node's.
    fn is_local(&self, conn: ConnId) -> bool;
    /// How other nodes reach this one to pull its instructor's media.
    fn relay_url(&self) -> Option<String>;
    /// The room stopped: an over lecture stays marked over, an idle one is forgotten.
    fn room_stopped(&self, lecture: &protocol::LectureId, generation: u64, over: Option<CloseCode>);
    /// Hands a report to the record writer.
    fn record(&self, record: Record);
    /// The id of a stay: the same on every node applying the room's log.
    fn stay_id(&self, epoch: Epoch, conn: ConnId) -> String;
    /// Whether this node writes the records of `conn`'s stay.
    fn records_stays_of(&self, conn: ConnId) -> bool;
    /// The node's counters.
    fn metrics(&self) -> &Arc<Metrics>;
    /// Where a recorded lecture's archive goes when it ends; none: this node does not record.
    fn archive_store(&self) -> Option<crate::archive::ArchiveStore>;
    /// The STUN/TURN servers (with credentials) a connection is told after its welcome.
    fn ice_servers_for(&self, conn: ConnId) -> Vec<protocol::IceServer>;
}

/// Where a room's entries are sequenced.
#[derive(Debug)]
pub(crate) enum Log {
    /// One node: sequenced here, applied at once.
    Local(LocalLog),
    /// Many nodes: appended to the lecture's stream in Redis and read back from it.
    Redis {
        /// Entries with the moment they were submitted (for the append's latency).
        submit: mpsc::UnboundedSender<(RoomEntry, Instant)>,
        /// Entries handed to the submitter and not yet in Redis.
        pending: Waiting,
        /// While this many wait, the room takes no more inputs from its sessions: what its
        /// people send waits in its inbox and their sockets instead of in memory without end.
        waiting_max: usize,
        /// What the reader reads: the snapshot to start from, then entries.
        entries: mpsc::Receiver<LogItem>,
        /// Stops this node's reader and submitter of the lecture's log.
        stop: CancellationToken,
        /// When this node writes the room's snapshots.
        snapshots: Snapshots,
    },
}

impl Log {
    fn submit(&mut self, entry: RoomEntry) {
        match self {
            Log::Local(log) => log.submit(entry),
            Log::Redis {
                submit, pending, ..
            } => {
                pending.add();
                // The submitter lives as long as the room; it ends only with it.
                let _ = submit.send((entry, Instant::now()));
            }
        }
    }

    /// The next entry (or snapshot) read back from Redis (never, for a local log: its entries
    /// are ready at once and taken with [`LocalLog::pop`]).
    async fn next_remote(&mut self) -> Option<LogItem> {
        match self {
            Log::Local(_) => std::future::pending().await,
            Log::Redis { entries, .. } => entries.recv().await,
        }
    }
}

/// The room of one lecture on this node: its core (made at the log's first entry, so every
/// node makes it alike), and the local connections it delivers to.
struct Holder {
    spec: LectureInfo,
    settings: RoomSettings,
    room: Option<Room>,
    /// The log time of the last entry applied.
    last_at: UnixMillis,
    /// Set while Redis is away and this node's room runs on alone.
    fork: Option<Fork>,
    /// Who publishes the lecture's media, as the log says.
    source: Option<MediaSource>,
    /// With Redis: where in the shared log the room is (its last entry applied).
    pos: Option<LogPos>,
    /// On a node that may record: what the room broadcast, for the archive's timeline.
    timeline: Option<Feed>,
}

/// A room running on alone while Redis is away: its own people keep chatting among
/// themselves; what they do is also queued for the shared log.
struct Fork {
    /// The shared state as it was when Redis went away; the room returns to it afterwards.
    shared: Room,
    /// Entries read from the shared log meanwhile, applied after the return.
    remote: Vec<(Sequenced, LogPos)>,
}

impl Log {
    /// Whether everything submitted is in the shared log (always, for a local log).
    fn settled(&self) -> bool {
        match self {
            Log::Local(_) => true,
            Log::Redis { pending, .. } => pending.count() == 0,
        }
    }

    /// Whether the room may take another input from its sessions: not while `waiting_max`
    /// entries wait to be appended.
    fn has_room(&self) -> bool {
        match self {
            Log::Local(_) => true,
            Log::Redis {
                pending,
                waiting_max,
                ..
            } => pending.count() < *waiting_max,
        }
    }
}

impl Holder {
    /// Starts running on alone: keeps the shared state aside, and gives this node's people a
    /// fresh snapshot under a new chat generation (so their later resume cannot mistake the
    /// local offsets for shared ones).
    fn fork(&mut self, now: UnixMillis, conns: &Conns) {
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if self.fork.is_some() {
            return;
        }
        let shared = room.clone();
        let mut bytes = [0u8; 8];
        // Any number other than the shared epoch does; randomness makes a clash unlikely.
        let _ = getrandom::fill(&mut bytes);
        // Within 53 bits, so a JavaScript client holds it exactly.
        room.fork(Epoch((u64::from_le_bytes(bytes) & ((1 << 53) - 1)) | 1));
        for conn in conns.keys() {
            room.rewelcome(now.max(self.last_at), *conn);
        }
        self.fork = Some(Fork {
            shared,
            remote: Vec::new(),
        });
    }

    /// Redis is back and everything queued meanwhile is in the shared log: returns to the
    /// shared state (with what was read meanwhile), and asks this node's people to reconnect,
    /// which gives them the shared state, their own words included.
    fn rejoin(&mut self, conns: &Conns) {
        let Some(fork) = self.fork.take() else { return };
        self.room = Some(fork.shared);
        for (s, pos) in fork.remote {
            self.apply(s);
            self.pos = Some(pos);
        }
        if let Some(room) = self.room.as_mut() {
            // What the shared copy would have sent while it waited was already superseded.
            while room.poll_output().is_some() {}
        }
        for out in conns.values() {
            let code = Some(CloseCode::ResyncRequired);
            out.close_after_queue(code);
        }
    }

    /// Takes what the shared log's reader read: an entry (applied, or kept for later while the
    /// room runs on alone), or a snapshot to start from.
    fn receive(&mut self, item: LogItem, conns: &Conns, node: &dyn RoomHost) {
        match item {
            LogItem::Entry(s, pos) => match self.fork.as_mut() {
                Some(fork) => fork.remote.push((s, pos)),
                None => {
                    self.apply(s);
                    self.deliver(conns, node);
                    self.pos = Some(pos);
                }
            },
            LogItem::Snapshot { pos, bytes } => self.restore(pos, &bytes, conns, node),
        }
    }

    /// Starts from the snapshot of the room after `pos`. A room this node already had (it fell
    /// behind the trimmed log) is replaced, and its people asked to reconnect for a fresh state.
    fn restore(&mut self, pos: LogPos, bytes: &[u8], conns: &Conns, node: &dyn RoomHost) {
        let snapshot = match Snapshot::decode(bytes) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                error!(error = %e, entry = pos.n, "the room's snapshot cannot be read; going on without it");
                return;
            }
        };
        node.metrics().snapshot_restores_total.inc();
        debug!(
            entry = pos.n,
            bytes = bytes.len(),
            "starting from the room's snapshot"
        );
        self.last_at = self.last_at.max(snapshot.at);
        self.source = snapshot.source;
        self.pos = Some(pos);
        match self.fork.as_mut() {
            Some(fork) => {
                fork.shared = snapshot.room;
                fork.remote.clear();
            }
            None => {
                if self.room.replace(snapshot.room).is_some() {
                    for out in conns.values() {
                        out.close_after_queue(Some(CloseCode::ResyncRequired));
                    }
                }
            }
        }
    }

    /// The room as it is now, for a snapshot (its outputs were all delivered).
    fn snapshot(&self) -> Option<Snapshot> {
        Some(Snapshot {
            at: self.last_at,
            source: self.source.clone(),
            room: self.room.clone()?,
        })
    }

    /// Applies one sequenced entry to the core.
    fn apply(&mut self, s: Sequenced) -> &mut Room {
        let Sequenced { at, entry } = s;
        self.last_at = self.last_at.max(at);
        let room = self
            .room
            .get_or_insert_with(|| Room::new(self.spec.clone(), self.settings.clone(), at));
        match entry {
            RoomEntry::Join {
                conn,
                user,
                account,
                nickname,
                role,
                issued_at,
                resume,
            } => {
                room.handle_join(
                    at,
                    ConnId(conn),
                    Identity {
                        user,
                        account,
                        nickname,
                        role,
                        issued_at,
                    },
                    resume,
                );
            }
            RoomEntry::Command { conn, id, msg } => {
                room.handle_command(at, ConnId(conn), Command { id, msg });
            }
            RoomEntry::Reactions { presses } => {
                for (conn, emotion, id) in presses {
                    let msg = ClientMsg::React { emotion };
                    room.handle_command(at, ConnId(conn), Command { id, msg });
                }
            }
            RoomEntry::Disconnected { conn } => {
                // A publisher whose connection (or node) is gone publishes no more.
                if self.source.as_ref().is_some_and(|s| s.conn.0 == conn) {
                    self.source = None;
                }
                room.handle_disconnect(at, ConnId(conn));
            }
            RoomEntry::Revoke {
                user,
                at: revoked_at,
            } => room.handle_revoke(at, user, revoked_at),
            RoomEntry::Cancel { reason } => room.handle_cancel(at, reason),
            RoomEntry::Reschedule {
                title,
                starts_at,
                ends_at,
            } => {
                room.handle_reschedule(at, title, starts_at, ends_at);
            }
            RoomEntry::Tick => room.handle_timeout(at),
            RoomEntry::MediaPublished { conn, relay } => {
                self.source = Some(MediaSource {
                    conn: ConnId(conn),
                    relay,
                });
            }
            RoomEntry::MediaUnpublished { conn } => {
                if self.source.as_ref().is_some_and(|s| s.conn.0 == conn) {
                    self.source = None;
                }
            }
        }
        room
    }
}

impl Holder {
    /// Delivers what the room output after an entry of the shared log, feeding the archive's
    /// timeline on the way.
    fn deliver(&mut self, conns: &Conns, node: &dyn RoomHost) {
        if let Some(room) = self.room.as_mut() {
            let seen = self.timeline.as_mut().map(|feed| (feed, self.last_at));
            deliver_with(room, conns, node, true, seen);
        }
    }

    /// An input of this node's: into the shared log, and — while the room runs on alone — also
    /// applied here at once, so this node's people see it now.
    fn input(&mut self, entry: RoomEntry, log: &mut Log, conns: &Conns, node: &dyn RoomHost) {
        if self.fork.is_some() {
            let at = self.last_at.max(node.now());
            let room = self.apply(Sequenced {
                at,
                entry: entry.clone(),
            });
            deliver_local(room, conns, node);
        }
        log.submit(entry);
    }
}

/// Runs a room until its lecture is over and this node's people are gone, or it sits empty
/// too long.
///
/// **Time.** With Redis, the room's core runs on the log's clock, and time moves when an entry
/// comes. When nothing happens, one node — the lecture's time keeper, the lowest-numbered live
/// node holding one of its connections, the same for every node — submits a tick each period;
/// the others tick only when the keeper's has not come two periods after it was due. A quiet
/// lecture so costs one entry a period however many nodes hold it.
pub(crate) async fn run(
    node: Arc<dyn RoomHost>,
    spec: LectureInfo,
    settings: RoomSettings,
    mut inbox: mpsc::Receiver<RoomInput>,
    generation: u64,
    mut log: Log,
    media: Arc<LectureMedia>,
) {
    info!("room opened");
    let shared = matches!(log, Log::Redis { .. });
    let tick = Duration::from_millis(settings.tick_ms);
    let mut holder = Holder {
        spec,
        settings,
        room: None,
        last_at: UnixMillis(0),
        fork: None,
        source: None,
        pos: None,
        timeline: node
            .archive_store()
            .map(|_| Feed::new(crate::archive::timeline::DEFAULT_BUCKET_MS)),
    };
    let mut conns = Conns::default();
    let idle_limit = node.room_idle();
    // With Redis the room's state lives on in the shared log: a node lets go of a lecture a
    // minute after its own last participant, rather than keeping reading it.
    let idle_limit = if shared {
        idle_limit.min(Duration::from_secs(60))
    } else {
        idle_limit
    };
    let mut empty_since = Some(Instant::now());
    // With Redis: connections of dead nodes, disconnected once each; looked for once a second.
    let mut burial = Burial::default();
    let mut last_inspection = Instant::now();
    // With Redis: this node's emotion presses of the current tick, sent as one entry.
    let mut presses = PressBatch::default();
    let mut degraded = node.degraded();
    // With Redis: this node's publishing connection as last told to the log.
    let mut publisher = media.publisher.subscribe();
    let mut announced: Option<ConnId> = None;
    // With Redis: a tick this node left to the lecture's time keeper (see `keeps_time`), and
    // the moment it submits one itself if none has come from the log by then.
    let mut deferred: Option<Instant> = None;
    // When the lecture went live (the archive's time 0).
    let mut live_since: Option<UnixMillis> = None;
    loop {
        if let Log::Local(local) = &mut log {
            while let Some(s) = local.pop() {
                holder.apply(s);
                holder.deliver(&conns, &*node);
            }
        }
        if let Some(room) = &holder.room {
            if room.is_over() && conns.is_empty() {
                break;
            }
            // Without Redis this node holds the only copy: it keeps it while seats are held.
            let quiet = conns.is_empty()
                && (shared || (room.connection_count() == 0 && room.held_seat_count() == 0));
            if quiet {
                let since = *empty_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= idle_limit {
                    break;
                }
            } else {
                empty_since = None;
            }
        }
        let now = node.now();
        let wake = holder.room.as_ref().and_then(Room::poll_timeout).map(|t| {
            // With Redis the core runs on Redis's clock: tick at least every period.
            let wait = Duration::from_millis(t.since(now));
            Instant::now() + if shared { wait.min(tick) } else { wait }
        });
        // No idle timer before the room exists (its first entry may wait for Redis).
        let idle_end = empty_since
            .filter(|_| holder.room.is_some())
            .map(|t| t + idle_limit);
        let wake = match (wake, deferred) {
            (Some(w), Some(d)) => Some(w.max(d)),
            (w, _) => w,
        };
        let deadline = match (wake, idle_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            input = inbox.recv(), if log.has_room() => {
                let Some(input) = input else { break };
                let RoomInput { entry, joining } = input;
                match entry {
                    RoomEntry::Command { conn, id, msg: ClientMsg::React { emotion } } if shared => {
                        presses.press((conn, emotion, id));
                    }
                    // A question that changes nothing: this node's copy answers it, and the
                    // log (every node's work, with Redis) never carries it.
                    RoomEntry::Command { conn, id, msg: ClientMsg::SeatNames { seats } } => {
                        if let Some(room) = holder.room.as_mut() {
                            room.handle_seat_names(ConnId(conn), id, &seats);
                            deliver(room, &conns, &*node);
                        }
                    }
                    entry => {
                        match &entry {
                            RoomEntry::Join { conn, user, .. } => {
                                debug!(conn, %user, "join");
                                if let Some(out) = joining {
                                    conns.insert(ConnId(*conn), out);
                                }
                            }
                            RoomEntry::Disconnected { conn } => {
                                conns.remove(&ConnId(*conn));
                                // Its presses go first, while it is still in the room.
                                if let Some(entry) = presses.take() {
                                    holder.input(entry, &mut log, &conns, &*node);
                                }
                            }
                            _ => {}
                        }
                        holder.input(entry, &mut log, &conns, &*node);
                    }
                }
            }
            Ok(()) = degraded.changed(), if shared => {
                let is_degraded = *degraded.borrow_and_update();
                let msg = ServerMsg::Service { degraded: is_degraded };
                let mut frames = Frames::new(&msg);
                for out in conns.values() {
                    if let Some(frame) = frames.get(out.codec) {
                        let _ = out.queue(frame, QueueTime::now());
                    }
                }
                if is_degraded {
                    holder.fork(node.now(), &conns);
                    if let Some(room) = holder.room.as_mut() {
                        deliver_local(room, &conns, &*node);
                    }
                }
            }
            Ok(()) = publisher.changed(), if shared => {
                // Only this node's own instructor is announced; a relayed one is another
                // node's announcement.
                let now = (*publisher.borrow_and_update()).filter(|c| node.is_local(*c));
                if now != announced {
                    let mut entries = Vec::new();
                    if let Some(old) = announced {
                        entries.push(RoomEntry::MediaUnpublished { conn: old.0 });
                    }
                    if let Some(new) = now {
                        entries.push(RoomEntry::MediaPublished { conn: new.0, relay: node.relay_url() });
                    }
                    announced = now;
                    for entry in entries {
                        holder.input(entry, &mut log, &conns, &*node);
                    }
                }
            }
            item = log.next_remote() => match item {
                Some(item) => {
                    // The log moves: its time with it.
                    deferred = None;
                    if let (LogItem::Snapshot { pos, .. }, Log::Redis { snapshots, .. }) = (&item, &mut log) {
                        snapshots.started_from(pos.n);
                    }
                    holder.receive(item, &conns, &*node);
                    // The time keeper writes the room's snapshots (any node may: each is the
                    // state after an entry every node applied alike).
                    if let Log::Redis { snapshots, .. } = &mut log
                        && holder.fork.is_none()
                        && let (Some(room), Some(pos)) = (&holder.room, &holder.pos)
                        && snapshots.due(pos.n)
                        && keeps_time(room, &*node)
                        && let Some(snapshot) = holder.snapshot()
                    {
                        snapshots.write(snapshot, pos.clone(), Arc::clone(node.metrics()));
                    }
                }
                None => break,
            },
            () = sleep_until_some(deadline) => {
                if let Some(entry) = presses.take() {
                    holder.input(entry, &mut log, &conns, &*node);
                }
                if holder.fork.is_some() {
                    let at = holder.last_at.max(node.now());
                    deliver_local(holder.apply(Sequenced { at, entry: RoomEntry::Tick }), &conns, &*node);
                } else if let Some(room) = holder.room.as_ref().filter(|r| r.poll_timeout().is_some()) {
                    let overdue = deferred.is_some_and(|d| Instant::now() >= d);
                    if deferred.is_some() && !overdue {
                        // Waiting for a tick on its way through the log.
                    } else if !shared || overdue || keeps_time(room, &*node) {
                        log.submit(RoomEntry::Tick);
                        // Until it comes back through the log (a period at most), the room's
                        // time stands still here: no second tick meanwhile.
                        deferred = shared.then(|| Instant::now() + tick);
                    } else {
                        // The keeper's tick is due about now: two periods' grace before this
                        // node ticks itself (a keeper that stalls or dies).
                        deferred = Some(Instant::now() + 2 * tick);
                    }
                }
            }
        }
        // Back from running alone once Redis answers and holds all this node queued meanwhile:
        // a client resuming elsewhere before that would lose its last words.
        if holder.fork.is_some() && !node.is_degraded() && log.settled() {
            holder.rejoin(&conns);
        }
        if let Some(room) = &holder.room {
            media.set_live(matches!(room.phase(), Phase::Live { .. }));
            if let Phase::Live { since } = room.phase() {
                live_since.get_or_insert(*since);
                if let Some(feed) = holder.timeline.as_mut() {
                    feed.went_live(*since);
                }
            }
        }
        media.set_source(holder.source.as_ref());
        if shared && last_inspection.elapsed() >= Duration::from_secs(1) {
            last_inspection = Instant::now();
            if let Some(room) = &holder.room {
                let dead = burial.newly_dead(room, |c| node.node_of(c), |n| node.node_is_dead(n));
                for conn in dead {
                    debug!(conn = conn.0, "its node is gone");
                    log.submit(RoomEntry::Disconnected { conn: conn.0 });
                }
            }
        }
    }
    if let Log::Redis { stop, .. } = &log {
        stop.cancel();
    }
    let over = match holder.room.as_ref().map(Room::phase) {
        Some(Phase::Ended { .. }) => Some(CloseCode::LectureEnded),
        Some(Phase::Cancelled { .. }) => Some(CloseCode::LectureCancelled),
        _ => None,
    };
    node.room_stopped(&holder.spec.id, generation, over);
    if let (Some(Phase::Ended { at }), Some(since), Some(store)) = (
        holder.room.as_ref().map(Room::phase),
        live_since,
        node.archive_store(),
    ) {
        tokio::spawn(crate::archive::after_lecture(
            store,
            Arc::clone(&media.broadcast),
            holder.spec.id.clone(),
            since,
            *at,
            holder.timeline.take().and_then(Feed::finish),
            Arc::clone(node.metrics()),
        ));
    }
    crate::media::retire(node.metrics(), media);
    info!(over = over.is_some(), "room closed");
}

/// Whether this node keeps the lecture's time (see [`run`]): its number is the lowest among
/// the live nodes holding the room's connections. A room with no connection anywhere is kept
/// by every node holding it.
fn keeps_time(room: &Room, node: &dyn RoomHost) -> bool {
    room.connections()
        .filter(|c| !node.node_is_dead(node.node_of(*c)))
        .min_by_key(|c| node.node_of(*c))
        .is_none_or(|keeper| node.is_local(keeper))
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Like [`deliver`], for a room running on alone: its stays and its end are not recorded
/// (the shared log will record them once Redis is back).
fn deliver_local(room: &mut Room, conns: &Conns, node: &dyn RoomHost) {
    deliver_with(room, conns, node, false, None);
}

/// Hands every output of the room to the sessions concerned. Never waits: a session whose
/// queue is full is kicked as a slow consumer, and the others go on.
fn deliver(room: &mut Room, conns: &Conns, node: &dyn RoomHost) {
    deliver_with(room, conns, node, true, None);
}

/// Hands the room's outputs to the sessions; with `timeline`, also what was broadcast (at the
/// log time given) to the archive's timeline.
fn deliver_with(
    room: &mut Room,
    conns: &Conns,
    node: &dyn RoomHost,
    record: bool,
    mut timeline: Option<(&mut Feed, UnixMillis)>,
) {
    let metrics = node.metrics();
    while let Some(output) = room.poll_output() {
        match output {
            Output::Send { to, msg } => {
                if let Some((feed, at)) = timeline.as_mut()
                    && matches!(to, Audience::Everyone | Audience::Staff)
                    && let Some(seen) = Seen::of(&msg)
                {
                    feed.push(*at, seen);
                }
                let mut frames = Frames::new(&msg);
                let queued_at = QueueTime::now();
                // Every welcome is followed by the media settings: per connection, since a
                // TURN credential names its holder (welcomes are per connection anyway).
                let welcome = matches!(msg, ServerMsg::Welcome(_));
                let (mut sent, mut written) = (0, 0);
                let mut delivery = conns.delivery();
                room.for_each_recipient(to, |conn| {
                    let Some(out) = conns.get(&conn) else { return };
                    let Some(frame) = frames.get(out.codec) else {
                        return;
                    };
                    let result = delivery.send(out, frame, queued_at);
                    if result.is_ok() && welcome {
                        let config = ServerMsg::MediaConfig {
                            ice_servers: node.ice_servers_for(conn),
                        };
                        if let Some(frame) = encode(&config, out.codec)
                            && delivery.send(out, &frame, queued_at).is_err()
                        {
                            out.kick.kick(Some(CloseCode::SlowConsumer));
                        }
                        out.welcomed.raise();
                    }
                    match result {
                        Ok(Sent::Written) => {
                            sent += 1;
                            written += 1;
                        }
                        Ok(Sent::Queued) => sent += 1,
                        Err(Full) => {
                            if !out.kick.is_kicked() {
                                debug!(conn = conn.0, "slow consumer");
                                metrics.slow_consumers_total.inc();
                                out.kick.kick(Some(CloseCode::SlowConsumer));
                            }
                        }
                    }
                });
                metrics.frames_out_total.inc_by(sent);
                // Each written at once: one frame, one `write`.
                metrics.socket_writes_total.inc_by(written);
                metrics.frames_written_total.inc_by(written);
            }
            Output::Close { conn, code } => {
                if let Some(out) = conns.get(&conn) {
                    out.close_after_queue(code);
                }
            }
            Output::Attendance(_)
            | Output::Started { .. }
            | Output::Ended { .. }
            | Output::Banned { .. }
                if !record => {}
            // Each stay is recorded by the node that holds the connection (by the survivors, if
            // that node died), not once per node applying the log.
            Output::Attendance(
                Attendance::Entered { conn, .. } | Attendance::Left { conn, .. },
            ) if !node.records_stays_of(conn) => {}
            Output::Attendance(Attendance::Entered {
                conn,
                account,
                role,
                at,
            }) => {
                node.record(Record::Attendance(AttendanceChange::Entered {
                    id: node.stay_id(room.epoch(), conn),
                    lecture: room.lecture_id().to_string(),
                    account: account.to_string(),
                    role,
                    at,
                }));
            }
            Output::Attendance(Attendance::Left { conn, at, seat }) => {
                node.record(Record::Attendance(AttendanceChange::Left {
                    id: node.stay_id(room.epoch(), conn),
                    at,
                    seat,
                }));
            }
            Output::Started { at } => node.record(Record::Started {
                lecture: room.lecture_id().to_string(),
                at,
            }),
            Output::Ended { at } => node.record(Record::Ended {
                lecture: room.lecture_id().to_string(),
                at,
            }),
            // Like an end, written by every node applying the log: the write is idempotent.
            Output::Banned { account, at } => node.record(Record::Banned {
                lecture: room.lecture_id().to_string(),
                user: account.to_string(),
                at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Role;

    const START: UnixMillis = UnixMillis(1_800_000_000_000);

    fn holder() -> Holder {
        Holder {
            spec: LectureInfo {
                id: "l".into(),
                title: "t".into(),
                starts_at: START,
                ends_at: START.plus_ms(3_600_000),
                rows: 5,
                cols: 5,
                emotions: vec![],
                chat_max_chars: 0,
            },
            settings: RoomSettings::default(),
            room: None,
            last_at: UnixMillis(0),
            fork: None,
            pos: None,
            source: None,
            timeline: None,
        }
    }

    fn at(ms: u64, entry: RoomEntry) -> Sequenced {
        Sequenced {
            at: START.minus_ms(600_000).plus_ms(ms),
            entry,
        }
    }

    fn join(conn: u64, user: &str) -> RoomEntry {
        RoomEntry::Join {
            conn,
            user: user.into(),
            account: format!("acct-{user}").into(),
            nickname: user.into(),
            role: Role::Learner,
            issued_at: START.minus_ms(3_600_000),
            resume: None,
        }
    }

    fn chat(conn: u64, text: &str) -> RoomEntry {
        RoomEntry::Command {
            conn,
            id: None,
            msg: ClientMsg::Chat {
                text: text.into(),
                question: false,
            },
        }
    }

    /// The chat a newcomer to `room` would be shown.
    fn texts(room: &Room) -> Vec<String> {
        let mut welcome = None;
        let mut copy = room.clone();
        while copy.poll_output().is_some() {}
        copy.handle_join(
            START.minus_ms(1),
            ConnId(999),
            Identity {
                user: "observer".into(),
                account: "observer".into(),
                nickname: "observer".into(),
                role: Role::Moderator,
                issued_at: START.minus_ms(1),
            },
            None,
        );
        while let Some(output) = copy.poll_output() {
            if let Output::Send {
                msg: ServerMsg::Welcome(w),
                ..
            } = output
            {
                welcome = Some(w);
            }
        }
        welcome
            .map(|w| {
                w.chat
                    .iter()
                    .filter_map(|e| match e {
                        protocol::server::ChatEvent::Message(m) => Some(m.text.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn running_on_alone_then_rejoining_keeps_the_shared_state_and_asks_everyone_to_resync() {
        let mut holder = holder();
        let out = Outbox::for_test(64);
        let queue = std::sync::Arc::clone(&out.queue);
        let conns: Conns = [(ConnId(1), out)].into_iter().collect();
        holder.apply(at(0, join(1, "taro")));
        holder.apply(at(1, join(2, "hanako")));
        holder.apply(at(2, chat(2, "before")));
        // (Delivered by the driver; here simply taken.)
        if let Some(room) = holder.room.as_mut() {
            while room.poll_output().is_some() {}
        }
        let _delivered = queue.take(usize::MAX);

        // Redis goes away: this node's people get a fresh welcome in a new chat generation,
        // which says where the shared stream was left (one line in).
        let shared_epoch = holder.room.as_ref().map(Room::epoch).expect("a room");
        holder.fork(START.minus_ms(500_000), &conns);
        let room = holder.room.as_mut().expect("a room");
        let fork_epoch = room.epoch();
        let mut welcomed = 0;
        while let Some(output) = room.poll_output() {
            if let Output::Send {
                msg: ServerMsg::Welcome(w),
                ..
            } = output
            {
                assert_eq!(w.epoch, fork_epoch);
                let left = w.fork_of.expect("the fork's welcome says where it left");
                assert_eq!((left.epoch, left.offset.0), (shared_epoch, 1));
                welcomed += 1;
            }
        }
        assert_eq!(welcomed, 1);
        assert!(holder.fork.is_some());
        // Locally, the fork goes on; meanwhile the shared log moved on without it.
        holder.apply(at(3, chat(1, "local")));
        if let Some(fork) = holder.fork.as_mut() {
            let pos = LogPos {
                n: 4,
                id: "4-0".into(),
            };
            fork.remote.push((at(4, chat(2, "remote")), pos));
        }

        holder.rejoin(&conns);
        assert!(holder.fork.is_none());
        let room = holder.room.as_ref().expect("a room");
        assert_ne!(room.epoch(), fork_epoch, "back to the shared generation");
        // The shared state, with what the log brought meanwhile; this node's own words come
        // back through the log, not from the fork.
        assert_eq!(texts(room), ["before", "remote"]);
        let closes: Vec<_> = queue.take(usize::MAX).close.into_iter().collect();
        assert_eq!(closes, [Some(CloseCode::ResyncRequired)]);
    }
}
