//! A system under test for one run: its nodes (ours, the Socket.IO peer's, or one
//! nats-server), Redis when there are several, and the learners' identities.

use crate::nodes::{self, BenchLecture, Proc, RoomNodeSetup};
use crate::wire::{Dialect, Person};
use protocol::ticket::{TicketClaims, TicketKey};
use protocol::{LectureId, Nickname, Role, UserId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Where the servers come from.
#[derive(Clone, Debug)]
pub struct Servers {
    /// The `room-server` binary.
    pub room_server: PathBuf,
    /// The Socket.IO peer's folder (with `node_modules` installed).
    pub socketio_dir: PathBuf,
    /// The `nats-server` binary.
    pub nats_server: PathBuf,
    /// How many 127.0.0.x source addresses learners spread over.
    pub sources: u8,
}

/// Running servers.
#[derive(Debug)]
pub struct System {
    /// Which server it is.
    pub dialect: Dialect,
    /// The lecture.
    pub lecture: BenchLecture,
    /// The nodes, in the order learners are spread over them.
    pub nodes: Vec<Proc>,
    /// Redis, when there are several nodes.
    pub redis: Option<Proc>,
    key: Option<TicketKey>,
    sources: u8,
}

impl System {
    /// Starts `count` nodes of `dialect` for `lecture` (with Redis when more than one).
    pub async fn start(
        servers: &Servers,
        dialect: Dialect,
        lecture: BenchLecture,
        count: usize,
        extra_toml: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            count == 1 || dialect != Dialect::Nats,
            "nats-server runs as one server here: a NATS cluster is not part of the benchmarks"
        );
        let redis = if count > 1 {
            Some(nodes::spawn_redis().await?)
        } else {
            None
        };
        let redis_url = redis.as_ref().map(|r| format!("redis://{}/0", r.addr));
        let mut procs = Vec::with_capacity(count);
        let mut key = None;
        match dialect {
            Dialect::Ours => {
                let (k, secret) = nodes::ticket_key()?;
                key = Some(k);
                let setup = RoomNodeSetup {
                    bin: servers.room_server.clone(),
                    secret,
                    lecture: lecture.clone(),
                    redis_url,
                    extra_toml: extra_toml.to_owned(),
                };
                for i in 0..count {
                    procs.push(setup.spawn(&format!("node{i}")).await?);
                }
            }
            Dialect::SocketIo => {
                for i in 0..count {
                    procs.push(
                        nodes::spawn_socketio(
                            &servers.socketio_dir,
                            &lecture,
                            redis_url.as_deref(),
                            &format!("n{i}"),
                        )
                        .await?,
                    );
                }
            }
            Dialect::Nats => procs.push(nodes::spawn_nats(&servers.nats_server).await?),
        }
        Ok(Self {
            dialect,
            lecture,
            nodes: procs,
            redis,
            key,
            sources: servers.sources.max(1),
        })
    }

    /// Process ids whose CPU and memory count as the server's.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .chain(self.redis.as_ref())
            .map(|p| p.pid)
            .collect()
    }

    /// Process ids of the nodes alone.
    pub fn node_pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|p| p.pid).collect()
    }

    /// Frames room-server's nodes have written and the `write` calls that carried them; none
    /// for the peers.
    pub async fn writes(&self) -> Option<crate::scrape::Writes> {
        if self.dialect != Dialect::Ours {
            return None;
        }
        crate::scrape::Writes::of(self.nodes.iter().map(|p| p.addr)).await
    }

    /// The node learner `idx` connects to.
    pub fn node_of(&self, idx: usize) -> usize {
        idx % self.nodes.len().max(1)
    }

    /// That node's address.
    pub fn target(&self, node: usize) -> SocketAddr {
        self.nodes[node % self.nodes.len()].addr
    }

    /// The source address learner `idx` connects from: 127.0.0.1, .2, … in turn.
    pub fn source(&self, idx: usize) -> IpAddr {
        let last = 1 + (idx % usize::from(self.sources)) as u8;
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    /// Learner `idx`, with a ticket when the server needs one.
    pub fn person(&self, idx: usize) -> anyhow::Result<Person> {
        let user = format!("l{idx}");
        let nickname = format!("受講者{idx}");
        let member = match &self.key {
            Some(key) => key
                .pseudonym(
                    &LectureId::from(self.lecture.id.as_str()),
                    &UserId::from(user.as_str()),
                )
                .to_string(),
            None => user.clone(),
        };
        let ticket = match &self.key {
            Some(key) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_secs();
                key.mint(&TicketClaims {
                    lec: LectureId::from(self.lecture.id.as_str()),
                    sub: UserId::from(user.as_str()),
                    nick: Nickname::from(nickname.as_str()),
                    role: Role::Learner,
                    iat: now,
                    // Long enough for the slowest run; only the handshake checks it.
                    exp: now + 3600,
                })
            }
            None => String::new(),
        };
        Ok(Person {
            user,
            member,
            nickname,
            ticket,
        })
    }

    /// Learner `idx`'s own seat: row-major from the front.
    pub fn seat_of(&self, idx: usize) -> (u16, u16) {
        let cols = usize::from(self.lecture.cols.max(1));
        (
            u16::try_from(idx / cols).unwrap_or(u16::MAX),
            u16::try_from(idx % cols).unwrap_or(u16::MAX),
        )
    }
}
