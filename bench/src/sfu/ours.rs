//! room-server as the SFU: a node with a `[media]` table, the instructor publishing over the
//! room connection, learners answering the node's offers over theirs.

use super::peer::{self, Sink, Subscriber};
use super::{Joined, Target};
use crate::nodes::{self, BenchLecture, Proc, RoomNodeSetup};
use crate::system::Servers;
use crate::wire::{Dialect, Person, Ws};
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use protocol::ticket::{TicketClaims, TicketKey};
use protocol::{ClientMsg, Codec, IceCandidate, LectureId, Nickname, Role, ServerMsg, UserId};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A running node with its instructor publishing.
pub struct Ours {
    node: Proc,
    key: TicketKey,
    lecture: BenchLecture,
    /// The instructor's room connection task and peer connection.
    publisher: (tokio::task::JoinHandle<()>, Arc<dyn PeerConnection>),
    publisher_state: watch::Receiver<RTCPeerConnectionState>,
}

impl std::fmt::Debug for Ours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ours")
            .field("node", &self.node)
            .field("lecture", &self.lecture)
            .finish_non_exhaustive()
    }
}

fn ticket(
    key: &TicketKey,
    lecture: &str,
    user: &str,
    nick: &str,
    role: Role,
) -> anyhow::Result<Person> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let ticket = key.mint(&TicketClaims {
        lec: LectureId::from(lecture),
        sub: UserId::from(user),
        nick: Nickname::from(nick),
        role,
        iat: now,
        exp: now + 3600,
    });
    Ok(Person {
        user: user.to_owned(),
        member: key
            .pseudonym(&LectureId::from(lecture), &UserId::from(user))
            .to_string(),
        nickname: nick.to_owned(),
        ticket,
    })
}

fn to_wire(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        sdp_mid: init.sdp_mid,
        sdp_mline_index: init.sdp_mline_index,
        username_fragment: init.username_fragment,
    }
}

fn from_wire(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

async fn send(ws: &mut Ws, msg: &ClientMsg) -> anyhow::Result<()> {
    ws.send(Message::binary(Codec::MsgPack.encode_client(msg)?))
        .await?;
    Ok(())
}

/// Starts [`drive`] for a peer: the sender of its outgoing messages, the answer's signal, and
/// the task.
fn spawn_drive(
    ws: Ws,
    pc: Arc<dyn PeerConnection>,
    candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
) -> (
    mpsc::UnboundedSender<ClientMsg>,
    oneshot::Receiver<()>,
    tokio::task::JoinHandle<()>,
) {
    let (out, outgoing) = mpsc::unbounded_channel();
    let (answered_tx, answered) = oneshot::channel();
    let task = tokio::spawn(drive(ws, pc, candidates, outgoing, answered_tx));
    (out, answered, task)
}

/// The page's media code on one room connection: answers the node's offers, applies its
/// answer and candidates, trickles the peer's candidates, sends `outgoing`. `answered` fires
/// when the first answer (ours or the node's) is through.
async fn drive(
    mut ws: Ws,
    pc: Arc<dyn PeerConnection>,
    mut candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    mut outgoing: mpsc::UnboundedReceiver<ClientMsg>,
    answered: oneshot::Sender<()>,
) {
    let mut answered = Some(answered);
    loop {
        tokio::select! {
            msg = outgoing.recv() => {
                let Some(msg) = msg else { break };
                if send(&mut ws, &msg).await.is_err() {
                    break;
                }
            }
            Some(init) = candidates.recv() => {
                let msg = ClientMsg::MediaCandidate { candidate: to_wire(init) };
                if send(&mut ws, &msg).await.is_err() {
                    break;
                }
            }
            frame = ws.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => break,
                };
                let Ok(msg) = Codec::MsgPack.decode_server(&bytes) else { continue };
                match msg {
                    ServerMsg::MediaOffer { sdp } => {
                        if let Some(sdp) = answer(&pc, sdp).await {
                            if send(&mut ws, &ClientMsg::MediaAnswer { sdp }).await.is_err() {
                                break;
                            }
                            if let Some(tx) = answered.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    ServerMsg::MediaAnswer { sdp } => {
                        if let Ok(desc) = RTCSessionDescription::answer(sdp)
                            && pc.set_remote_description(desc).await.is_ok()
                            && let Some(tx) = answered.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    ServerMsg::MediaCandidate { candidate } => {
                        let _ = pc.add_ice_candidate(from_wire(candidate)).await;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

async fn answer(pc: &Arc<dyn PeerConnection>, offer: String) -> Option<String> {
    let offer = RTCSessionDescription::offer(offer).ok()?;
    pc.set_remote_description(offer).await.ok()?;
    let answer = pc.create_answer(None).await.ok()?;
    pc.set_local_description(answer).await.ok()?;
    Some(pc.local_description().await?.sdp)
}

impl Ours {
    /// Starts a node, publishes, goes live and starts the media.
    pub async fn start(
        servers: &Servers,
        subscribers: usize,
        sent: Arc<std::sync::Mutex<peer::Sent>>,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let (key, secret) = nodes::ticket_key()?;
        let lecture = BenchLecture::for_learners(subscribers);
        let setup = RoomNodeSetup {
            bin: servers.room_server.clone(),
            secret,
            lecture: lecture.clone(),
            redis_url: None,
            // Peer connections on loopback only, any free UDP port.
            extra_toml: "[media]\nbind_ip = \"127.0.0.1\"\n".to_owned(),
        };
        let node = setup.spawn("sfu").await?;
        let who = ticket(
            &key,
            &lecture.id,
            "bench-instructor",
            "講師",
            Role::Instructor,
        )?;
        let (ws, _) = Dialect::Ours
            .enter(LOOPBACK, node.addr, &lecture.id, &who)
            .await
            .context("the instructor entering")?;
        let Subscriber {
            pc,
            candidates,
            mut state,
            ..
        } = peer::peer(SocketAddr::new(LOOPBACK, 0)).await?;
        let (video, audio) = peer::add_publisher_tracks(&pc).await?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let sdp = pc
            .local_description()
            .await
            .context("a local description")?
            .sdp;
        let (out, answered, task) = spawn_drive(ws, Arc::clone(&pc), candidates);
        out.send(ClientMsg::MediaOffer { sdp })?;
        tokio::time::timeout(Duration::from_secs(20), answered)
            .await
            .context("no media_answer for the instructor")??;
        peer::connected(&mut state, Duration::from_secs(20))
            .await
            .context("the instructor's peer connection")?;
        out.send(ClientMsg::StartLecture)?;
        let pump = peer::pump(Sink::Tracks { video, audio }, sent);
        // The instructor's connection stays open for the run (dropping `out` would end it).
        let publisher_task = tokio::spawn(async move {
            let _keep = out;
            let _ = task.await;
        });
        Ok((
            Self {
                node,
                key,
                lecture,
                publisher: (publisher_task, pc),
                publisher_state: state,
            },
            pump,
        ))
    }

    /// Stops the publisher and the node.
    pub async fn stop(self) {
        self.publisher.0.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.publisher.1.close()).await;
        drop(self.node);
    }
}

impl Target for Ours {
    fn pid(&self) -> u32 {
        self.node.pid
    }

    fn publisher_state(&self) -> String {
        format!("{:?}", *self.publisher_state.borrow())
    }

    async fn join(&self, idx: usize) -> anyhow::Result<Joined> {
        let started = Instant::now();
        let who = ticket(
            &self.key,
            &self.lecture.id,
            &format!("l{idx}"),
            &format!("受講者{idx}"),
            Role::Learner,
        )?;
        let (ws, _) = Dialect::Ours
            .enter(LOOPBACK, self.node.addr, &self.lecture.id, &who)
            .await?;
        let Subscriber {
            pc,
            candidates,
            mut state,
            tally,
        } = peer::peer(SocketAddr::new(LOOPBACK, 0)).await?;
        let (out, answered, task) = spawn_drive(ws, Arc::clone(&pc), candidates);
        let result = async {
            tokio::time::timeout(Duration::from_secs(30), answered)
                .await
                .context("no media_offer")??;
            peer::connected(&mut state, Duration::from_secs(30)).await
        }
        .await;
        let task = tokio::spawn(async move {
            let _keep = out;
            let _ = task.await;
        });
        let joined = Joined {
            started,
            pc,
            tally,
            task,
        };
        match result {
            Ok(()) => Ok(joined),
            Err(e) => {
                joined.close().await;
                Err(e)
            }
        }
    }
}
