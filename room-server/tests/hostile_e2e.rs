//! Hostile and broken clients against a real node on loopback: oversized and broken frames,
//! clients that stop reading, bursts of connections, sockets that never finish a request, and
//! floods of ill-shaped commands. Each gets the documented answer, and it arrives.

use e2e as common;

use common::{Door, LECTURE, TestNode, WAIT};
use protocol::{ClientMsg, CloseCode, Codec, Role};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A WebSocket written by hand, so that frames can be broken on purpose.
struct Raw {
    tcp: TcpStream,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
}

impl Raw {
    /// Opens `/ws/lectures/{LECTURE}` with `protocol` and reads the `101`.
    async fn open(node: &TestNode, protocol: &str) -> Self {
        let mut tcp = TcpStream::connect(node.addr).await.expect("connects");
        let request = format!(
            "GET /ws/lectures/{LECTURE} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
            node.addr
        );
        tcp.write_all(request.as_bytes()).await.expect("writes");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut chunk).await.expect("reads the answer");
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        }
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("found")
            + 4;
        assert!(
            buf.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        Self {
            tcp,
            buf: buf[end..].to_vec(),
        }
    }

    /// A client frame: `first` is the FIN, RSV and opcode byte; masked unless `masked` is false.
    fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mut out = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x12, 0x34, 0x56, 0x78];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    async fn send(&mut self, bytes: &[u8]) {
        // The node may close while a large frame is still being written: that is the point.
        let _ = self.tcp.write_all(bytes).await;
    }

    async fn hello(&mut self, node: &TestNode, codec: Codec) {
        let ticket = node.ticket("mallory", "mallory", Role::Learner);
        let bytes = codec
            .encode_client(&ClientMsg::Hello {
                ticket,
                resume: None,
            })
            .expect("encodes");
        let opcode = if codec.is_binary() { 0x82 } else { 0x81 };
        self.send(&Self::frame(opcode, &bytes, true)).await;
    }

    /// Reads the node's frames until its close frame; its code, or `None` if the connection
    /// ended (or was reset) without one.
    async fn close_code(&mut self) -> Option<u16> {
        read_close(&mut self.tcp, &mut self.buf).await
    }
}

/// Reads frames from `from` (after `buf`) until the node's close frame; its code, or `None`.
async fn read_close(from: &mut (impl AsyncReadExt + Unpin), buf: &mut Vec<u8>) -> Option<u16> {
    tokio::time::timeout(WAIT, async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            while let Some((opcode, payload, len)) = parse(buf) {
                buf.drain(..len);
                if opcode == 0x8 {
                    return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                }
            }
            match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the node ends the connection in time")
}

/// One unmasked frame from the node at the start of `buf`: its opcode, payload and length.
fn parse(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (first, second) = (*buf.first()?, *buf.get(1)?);
    let (len, head) = match second & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(head..head + len)?.to_vec();
    Some((first & 0x0f, payload, head + len))
}

#[tokio::test]
async fn an_oversized_frame_gets_4108_and_the_code_arrives() {
    let node = TestNode::start().await;
    for size in [20 * 1024, 200 * 1024, 1000 * 1024] {
        for entered in [false, true, true] {
            // As a client library does: write the whole message, then read the answer. The node
            // must read the rest of the frame away rather than reset the connection under it.
            let mut client = if entered {
                node.enter("mallory", "mallory", Role::Learner).await.0
            } else {
                node.connect(Codec::MsgPack).await
            };
            let frame = tokio_tungstenite::tungstenite::Message::Binary(vec![0x90; size].into());
            client.send_raw(frame).await;
            assert_eq!(
                client.close_code().await,
                Some(CloseCode::MessageTooBig.code()),
                "{size} bytes, entered: {entered}"
            );
        }
    }
}

#[tokio::test]
async fn an_oversized_frame_is_read_away_so_the_connection_ends_without_a_reset() {
    let node = TestNode::start().await;
    for size in [64 * 1024, 1000 * 1024] {
        let mut raw = Raw::open(&node, Codec::MsgPack.subprotocol()).await;
        raw.hello(&node, Codec::MsgPack).await;
        let frame = Raw::frame(0x82, &vec![0x90; size], true);
        let (mut read, mut write) = raw.tcp.into_split();
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&frame).await;
            write
        });
        let code = read_close(&mut read, &mut raw.buf).await;
        assert_eq!(code, Some(CloseCode::MessageTooBig.code()), "{size} bytes");
        // The client ends its side, as it does after a close; the node, having read everything
        // the client sent, ends with a FIN. Dropping unread bytes would have sent a reset, which
        // many systems deliver before the data still queued, the close frame included.
        let mut write = writer.await.expect("the writer ends");
        write.shutdown().await.expect("shuts down");
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(WAIT, read.read_to_end(&mut rest))
            .await
            .expect("ends in time");
        assert!(ended.is_ok(), "{size} bytes: {ended:?}");
    }
}

#[tokio::test]
async fn broken_frames_close_with_4107_not_1000() {
    let node = TestNode::start().await;
    let msgpack = Codec::MsgPack.subprotocol();
    let json = Codec::Json.subprotocol();
    let leave_seat = Codec::MsgPack
        .encode_client(&ClientMsg::LeaveSeat)
        .expect("encodes");
    let as_array = Codec::MsgPack
        .encode_client(&ClientMsg::LeaveSeat)
        .map(|_| {
            vec![
                0x91, 0xaa, b'l', b'e', b'a', b'v', b'e', b'_', b's', b'e', b'a', b't',
            ]
        })
        .expect("encodes");
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "reserved bit",
            msgpack,
            Raw::frame(0x82 | 0x40, &leave_seat, true),
        ),
        (
            "reserved opcode",
            msgpack,
            Raw::frame(0x83, &leave_seat, true),
        ),
        (
            "unmasked frame",
            msgpack,
            Raw::frame(0x82, &leave_seat, false),
        ),
        ("fragmented ping", msgpack, Raw::frame(0x09, b"x", true)),
        (
            "text on MessagePack",
            msgpack,
            Raw::frame(0x81, b"{}", true),
        ),
        (
            "invalid UTF-8 text",
            json,
            Raw::frame(0x81, &[0x7b, 0xff, 0xfe, 0x7d], true),
        ),
        (
            "a message that is an array",
            msgpack,
            Raw::frame(0x82, &as_array, true),
        ),
    ];
    for (name, protocol, frame) in cases {
        for after_hello in [false, true] {
            let mut raw = Raw::open(&node, protocol).await;
            if after_hello {
                let codec = Codec::from_subprotocol(protocol).expect("ours");
                raw.hello(&node, codec).await;
            }
            raw.send(&frame).await;
            assert_eq!(
                raw.close_code().await,
                Some(CloseCode::ProtocolViolation.code()),
                "{name}, after hello: {after_hello}"
            );
        }
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_let_go_with_4001_that_arrives() {
    let node = TestNode::start_with(|c| c.limits.ping_interval_ms = 300).await;
    let (mut talker, _) = node.enter("talker", "talker", Role::Learner).await;
    let (mut sleeper, _) = node.enter("sleeper", "sleeper", Role::Learner).await;
    node.wait_metric("room_connections_active", 2).await;
    // The room goes on quietly (far too little for any buffer to fill); the talker reads all
    // along, as a browser does.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let talking = tokio::spawn(async move {
        for i in 0..5 {
            talker
                .send(&ClientMsg::Chat {
                    text: format!("quiet {i}"),
                    question: false,
                })
                .await;
        }
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return talker,
                got = talker.next_within(Duration::from_millis(50)) => {
                    assert!(!matches!(got, Some(common::Got::Closed(_))), "the talker stays");
                }
            }
        }
    });
    // The sleeper reads nothing, so answers no ping: it is let go at the next ping.
    node.wait_metric("room_slow_consumers_total", 1).await;
    // When it wakes it reads what was on its way, then the code.
    assert_eq!(
        sleeper.close_code().await,
        Some(CloseCode::SlowConsumer.code())
    );
    node.wait_metric("room_connections_active", 1).await;
    let _ = stop.send(());
    let mut talker = talking.await.expect("the talker's task");
    talker.send(&ClientMsg::Ping { t: 1 }).await;
    talker
        .recv_until(|m| matches!(m, protocol::ServerMsg::Pong { .. }).then_some(()))
        .await;
}

#[tokio::test]
async fn max_connections_holds_against_a_burst() {
    let node = TestNode::start_with(|c| c.limits.max_connections = 20).await;
    let attempts = (0..100).map(|_| {
        let url = node.url(LECTURE);
        tokio::spawn(async move { common::Client::connect(&url, Codec::MsgPack).await })
    });
    let mut open = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.expect("the attempt runs") {
            Ok(client) => open.push(client),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(
        open.len(),
        20,
        "exactly the configured number, however many at once"
    );
    assert_eq!(refused, 80);
    // Places come back when connections close.
    drop(open);
    node.wait_metric("room_connections_active", 0).await;
    let deadline = Instant::now() + WAIT;
    loop {
        if common::Client::connect(&node.url(LECTURE), Codec::MsgPack)
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "a place came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the node closes `tcp` (end of stream) within `within`.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn idle_and_slow_http_sockets_are_let_go() {
    let node = TestNode::start_with(|c| c.limits.header_read_timeout_ms = 400).await;
    // Nothing at all.
    let mut silent = TcpStream::connect(node.addr).await.expect("connects");
    // Headers begun and never finished.
    let mut slow = TcpStream::connect(node.addr).await.expect("connects");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("writes");
    // A request answered, then a keep-alive connection left idle.
    let mut idle = TcpStream::connect(node.addr).await.expect("connects");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = [0u8; 1024];
    let n = idle.read(&mut answer).await.expect("an answer");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    for (name, tcp) in [
        ("silent", &mut silent),
        ("slow headers", &mut slow),
        ("idle", &mut idle),
    ] {
        assert!(closed_within(tcp, Duration::from_secs(3)).await, "{name}");
    }
}

#[tokio::test]
async fn a_request_whose_body_trickles_gets_408() {
    let key = "integration-key-integration-key-0123456789";
    let node = TestNode::start_with(|c| {
        c.limits.request_timeout_ms = 400;
        c.integration_api_key = Some(key.into());
    })
    .await;
    let mut tcp = TcpStream::connect(node.addr).await.expect("connects");
    let head = format!(
        "PUT /api/v1/integration/accounts/a1 HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"kind\""
    );
    tcp.write_all(head.as_bytes()).await.expect("writes");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut answer))
        .await
        .expect("answered in time")
        .expect("reads");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn sockets_beyond_the_cap_wait_and_health_stays_reachable_on_the_metrics_address() {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("the limit");
    let node = TestNode::start_with(|c| {
        // At most 10 client sockets at once on the public address.
        c.limits.reserved_descriptors = soft as usize - 10;
        c.limits.header_read_timeout_ms = 1_000;
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await;
    let admin = node.metrics_addr().await;
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(
            TcpStream::connect(node.addr)
                .await
                .expect("the backlog takes it"),
        );
    }
    // The operators' address answers at once, whatever the public one holds.
    let (status, body) = common::http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("room_connections_active"), "{body}");
    assert_eq!(common::http_get(admin, "/readyz").await.0, 200);
    // …and /metrics is no longer on the public address.
    drop(idle);
    let (_, public) = node.get("/metrics").await;
    assert!(!public.contains("room_connections_active"), "{public}");
}

#[tokio::test]
async fn a_flood_of_ill_shaped_commands_is_cut_off_like_any_flood() {
    let node = TestNode::start_with(|c| c.limits.flood_strikes = 50).await;
    let (mut mallory, _) = node.enter("mallory", "mallory", Role::Learner).await;
    let bad = tokio_tungstenite::tungstenite::Message::Binary(
        Codec::MsgPack
            .encode_client(&ClientMsg::LeaveSeat)
            .map(|_| {
                // {"type": "take_seat", "seat": "front"}: well-formed, ill-shaped.
                let mut b = vec![0x82, 0xa4];
                b.extend_from_slice(b"type");
                b.push(0xa9);
                b.extend_from_slice(b"take_seat");
                b.push(0xa4);
                b.extend_from_slice(b"seat");
                b.push(0xa5);
                b.extend_from_slice(b"front");
                b
            })
            .expect("encodes")
            .into(),
    );
    for _ in 0..2_000 {
        mallory.send_raw(bad.clone()).await;
    }
    let mut replies = 0;
    let code = loop {
        match mallory.next().await {
            common::Got::Msg(protocol::ServerMsg::Error { .. }) => replies += 1,
            common::Got::Msg(_) => {}
            common::Got::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(CloseCode::Flooding.code()));
    // The burst's worth of replies and a warning or two, not one per frame.
    assert!(replies < 100, "{replies} replies");
}
