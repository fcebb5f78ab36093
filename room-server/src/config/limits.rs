//! The `[limits]` table: what keeps one node healthy under load and abuse.

use serde::Deserialize;

/// Limits that keep one node healthy under load and abuse.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Concurrent room connections; more are refused with 503.
    pub max_connections: usize,
    /// Largest WebSocket message (and frame) a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Messages waiting for a slow client before it is disconnected with 4001.
    pub outbound_queue: usize,
    /// Commands a connection may send per second, sustained…
    pub commands_per_sec: u32,
    /// …and in a burst.
    pub command_burst: u32,
    /// Commands refused for rate within one minute before the connection is closed (4110).
    pub flood_strikes: u32,
    /// New room connections per second from one IP address, sustained…
    pub connects_per_sec_per_ip: u32,
    /// …and in a burst.
    pub connect_burst_per_ip: u32,
    /// Time a new connection has to send `hello`.
    pub hello_timeout_ms: u64,
    /// How often the node pings each connection.
    pub ping_interval_ms: u64,
    /// The moment a busy connection waits to send frames together: one that wrote less than
    /// this ago sends what is queued this long after its last write, in one `write`. A
    /// connection that has been quiet writes at once. 0: every batch at once. At most 5,000.
    pub write_coalesce_us: u64,
    /// Silence after which a connection is closed (4002).
    pub idle_timeout_ms: u64,
    /// Draining (SIGTERM, Ctrl-C, or `POST /drain` on the operators' address): how long the
    /// node goes on serving, `/readyz` answering 503, before it closes anyone, so the load
    /// balancer stops sending it new learners. Skipped when nobody is connected.
    pub drain_window_ms: u64,
    /// …then the interval over which it closes its connections with `4000` (reconnect
    /// elsewhere), each at a random moment within it, so the other nodes see a ramp instead of
    /// everyone reconnecting in the same second. 0: all at once.
    pub drain_spread_ms: u64,
    /// …then the longest wait for connections to close before the process exits.
    pub shutdown_grace_ms: u64,
    /// How long an empty room with no held seats is kept before it is dropped.
    pub room_idle_ms: u64,
    /// Inputs waiting for one room's task before senders wait.
    pub room_inbox: usize,
    /// Ticket requests per minute per person (the Enter button), sustained…
    pub tickets_per_min: u32,
    /// …and in a burst.
    pub ticket_burst: u32,
    /// Sign-in attempts (demo sign-in) per minute per client address.
    pub sign_ins_per_min: u32,
    /// Connection-check downloads (`/api/v1/check/download`) per minute per client address:
    /// each sends up to 8 MiB, so a page cannot be used to pull the node's bandwidth.
    pub downloads_per_min: u32,
    /// Time a client has to send an HTTP request's headers, from the connection's start or the
    /// end of the previous response: slow headers and idle keep-alive connections end here.
    pub header_read_timeout_ms: u64,
    /// Time an HTTP request may take until its response starts (reading its body included).
    pub request_timeout_ms: u64,
    /// Time a write may wait for a client to take bytes before the connection is dropped: a
    /// client that keeps its socket open but stops reading is let go within this.
    pub write_stall_ms: u64,
    /// The kernel send buffer of each room connection (the kernel doubles it for its own
    /// bookkeeping). Bounded so that a client that stops reading fills it, and is cut off
    /// (4001, or the stall limit above), within seconds instead of minutes, and costs the node
    /// little memory meanwhile.
    pub socket_send_buffer_bytes: usize,
    /// Open-file descriptors kept out of reach of client sockets, for the node's own needs
    /// (database, Redis, media sockets, files): the node holds at most the open-file limit
    /// minus this many client sockets at once; more wait in the listen backlog.
    pub reserved_descriptors: usize,
    /// Connection-check WebRTC probes open at once on this node: each is a peer connection
    /// (a UDP port, a few file descriptors, some 200 KiB), made for anyone who asks, so their
    /// number is bounded whatever the number of askers. 0: no probes.
    pub max_check_probes: u32,
    /// …and from one client address: one page's check needs one.
    pub check_probes_per_ip: u32,
    /// How long a probe lives before the node closes it (a check's echo takes a second or
    /// two; the check socket itself lives 60 s).
    pub check_probe_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 50_000,
            max_message_bytes: 16 * 1024,
            outbound_queue: 512,
            commands_per_sec: 20,
            command_burst: 40,
            flood_strikes: 200,
            connects_per_sec_per_ip: 50,
            connect_burst_per_ip: 500,
            hello_timeout_ms: 10_000,
            ping_interval_ms: 15_000,
            write_coalesce_us: 2_000,
            idle_timeout_ms: 45_000,
            drain_window_ms: 5_000,
            drain_spread_ms: 10_000,
            shutdown_grace_ms: 10_000,
            room_idle_ms: 30 * 60 * 1000,
            room_inbox: 4096,
            tickets_per_min: 30,
            ticket_burst: 10,
            sign_ins_per_min: 30,
            downloads_per_min: 20,
            header_read_timeout_ms: 20_000,
            request_timeout_ms: 30_000,
            write_stall_ms: 15_000,
            socket_send_buffer_bytes: 128 * 1024,
            reserved_descriptors: 1024,
            max_check_probes: 50,
            check_probes_per_ip: 2,
            check_probe_secs: 20,
        }
    }
}
