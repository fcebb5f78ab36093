//! The writer's coalescing: what sending frames costs when each goes out with its own `write`
//! and when a batch goes out with one vectored `write` (what a busy connection does). A real
//! loopback TCP connection; a thread on the other end reads and drops everything.
//!
//! `cargo bench -p room-server --bench writer` (add `-- --warm-up-time 1 --measurement-time 2`
//! for a quick run). Criterion's time ÷ the batch size is the cost per delivered frame.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use room_server::bench_support::{Frame, Writer, writer};
use std::io::Read;
use tokio::runtime::Runtime;

/// A chat line's frame as a learner gets it (about 150 bytes of MessagePack).
fn chat_frame() -> Frame {
    Frame::binary(Bytes::from(vec![0x82; 150]))
}

/// A writer whose peer reads everything, on `rt`.
fn connected(rt: &Runtime) -> Writer {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        std::thread::spawn(move || {
            let mut peer = std::net::TcpStream::connect(addr).expect("connects");
            let mut buf = vec![0u8; 256 * 1024];
            while matches!(peer.read(&mut buf), Ok(n) if n > 0) {}
        });
        let (tcp, _) = listener.accept().await.expect("accepts");
        let _ = tcp.set_nodelay(true);
        writer(tcp).await
    })
}

fn coalescing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut writer = connected(&rt);
    let mut group = c.benchmark_group("writer");
    for batch in [1usize, 8, 64] {
        let frames: Vec<Frame> = (0..batch).map(|_| chat_frame()).collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new("a_write_per_frame", batch),
            &frames,
            |b, frames| {
                b.iter(|| {
                    rt.block_on(async {
                        for frame in frames {
                            writer.send([frame]).await.expect("written");
                        }
                    });
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("one_write_per_batch", batch),
            &frames,
            |b, frames| {
                b.iter(|| {
                    rt.block_on(async { writer.send(frames).await.expect("written") });
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, coalescing);
criterion_main!(benches);
