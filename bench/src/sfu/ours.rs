//! room-server as the SFU: a node with a `[media]` table, the instructor publishing over the
//! room connection, learners answering the node's offers over theirs.

use super::{Joined, Target};
use crate::nodes::{self, BenchLecture, Proc, RoomNodeSetup};
use crate::system::Servers;
use crate::wire::{Dialect, Person, Ws};
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use protocol::ticket::{TicketClaims, TicketKey};
use protocol::{ClientMsg, Codec, IceCandidate, LectureId, Nickname, Role, ServerMsg, UserId};
use signaling::test_peer::{Feed, Network, Pump, Sent, Synthetic, TestPeer};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A running node with its instructor publishing.
pub struct Ours {
    node: Proc,
    key: TicketKey,
    lecture: BenchLecture,
    /// The instructor's room connection task and peer connection.
    publisher: (tokio::task::JoinHandle<()>, TestPeer),
    /// The instructor's camera and microphone media.
    pumps: [Pump; 2],
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

async fn send(ws: &mut Ws, msg: &ClientMsg) -> anyhow::Result<()> {
    ws.send(Message::binary(Codec::MsgPack.encode_client(msg)?))
        .await?;
    Ok(())
}

/// Starts [`drive`] for a peer: the sender of its outgoing messages, the answer's signal, and
/// the task.
fn spawn_drive(
    ws: Ws,
    peer: TestPeer,
    candidates: mpsc::UnboundedReceiver<IceCandidate>,
) -> (
    mpsc::UnboundedSender<ClientMsg>,
    oneshot::Receiver<()>,
    tokio::task::JoinHandle<()>,
) {
    let (out, outgoing) = mpsc::unbounded_channel();
    let (answered_tx, answered) = oneshot::channel();
    let task = tokio::spawn(drive(ws, peer, candidates, outgoing, answered_tx));
    (out, answered, task)
}

/// The page's media code on one room connection: answers the node's offers, applies its
/// answer and candidates, trickles the peer's candidates, sends `outgoing`. `answered` fires
/// when the first answer (ours or the node's) is through.
async fn drive(
    mut ws: Ws,
    peer: TestPeer,
    mut candidates: mpsc::UnboundedReceiver<IceCandidate>,
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
            Some(candidate) = candidates.recv() => {
                let msg = ClientMsg::MediaCandidate { candidate };
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
                        if let Ok(sdp) = peer.answer(sdp).await {
                            if send(&mut ws, &ClientMsg::MediaAnswer { sdp }).await.is_err() {
                                break;
                            }
                            if let Some(tx) = answered.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    ServerMsg::MediaAnswer { sdp } => {
                        if peer.apply_answer(sdp).await.is_ok()
                            && let Some(tx) = answered.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    ServerMsg::MediaCandidate { candidate } => {
                        let _ = peer.add_remote_candidate(candidate).await;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

impl Ours {
    /// Starts a node, publishes, goes live and starts the media.
    pub async fn start(servers: &Servers, subscribers: usize) -> anyhow::Result<Self> {
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
        let (peer, candidates) = TestPeer::new(LOOPBACK, Network::Open).await?;
        let camera = peer.add_track(Feed::Camera).await?;
        let microphone = peer.add_track(Feed::Microphone).await?;
        let sdp = peer.offer().await?;
        let (out, answered, task) = spawn_drive(ws, peer.clone(), candidates);
        out.send(ClientMsg::MediaOffer { sdp })?;
        tokio::time::timeout(Duration::from_secs(20), answered)
            .await
            .context("no media_answer for the instructor")??;
        peer.connected(Duration::from_secs(20))
            .await
            .context("the instructor's peer connection")?;
        out.send(ClientMsg::StartLecture)?;
        let pumps = [
            Pump::start(Synthetic::load_video(), camera),
            Pump::start(Synthetic::load_audio(), microphone),
        ];
        // The instructor's connection stays open for the run (dropping `out` would end it).
        let publisher_task = tokio::spawn(async move {
            let _keep = out;
            let _ = task.await;
        });
        Ok(Self {
            node,
            key,
            lecture,
            publisher: (publisher_task, peer),
            pumps,
        })
    }

    /// Stops the media, the publisher and the node.
    pub async fn stop(self) {
        drop(self.pumps);
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
        format!("{:?}", self.publisher.1.state())
    }

    fn sent(&self) -> Sent {
        self.pumps.iter().map(Pump::sent).sum()
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
        let (peer, candidates) = TestPeer::new(LOOPBACK, Network::Open).await?;
        let (out, answered, task) = spawn_drive(ws, peer.clone(), candidates);
        let result = async {
            tokio::time::timeout(Duration::from_secs(30), answered)
                .await
                .context("no media_offer")??;
            peer.connected(Duration::from_secs(30)).await?;
            anyhow::Ok(())
        }
        .await;
        let task = tokio::spawn(async move {
            let _keep = out;
            let _ = task.await;
        });
        let joined = Joined {
            started,
            peer,
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
