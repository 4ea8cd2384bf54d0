//! A fault-injecting TCP proxy between the SDK and the server: a small tokio program run on a
//! thread of its own. Each new connection takes the next fault from a repeating schedule:
//! pass through, drop after N bytes of the request (mid-body), stall then drop, or answer
//! `503` with `Retry-After` without reaching the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// Forward this many request bytes, then cut both sides.
    DropAfter(u64),
    /// Forward this many request bytes, then go silent for the duration, then cut.
    StallAfter(u64, Duration),
    /// Read the request head and answer 503 with this Retry-After (seconds).
    Unavailable(u64),
}

#[derive(Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub dropped: AtomicU64,
    pub stalled: AtomicU64,
    pub unavailable: AtomicU64,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    enabled: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` applying `schedule` (cycled) to successive connections.
    pub fn start(upstream: SocketAddr, schedule: Vec<Fault>) -> FaultProxy {
        let stats = Arc::new(Stats::default());
        let enabled = Arc::new(AtomicBool::new(true));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_stats = stats.clone();
        let thread_enabled = enabled.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
                addr_tx
                    .send(listener.local_addr().expect("proxy addr"))
                    .expect("proxy addr sent");
                let mut n: usize = 0;
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let fault = if thread_enabled.load(Ordering::SeqCst) && !schedule.is_empty() {
                                schedule[n % schedule.len()]
                            } else {
                                Fault::None
                            };
                            n += 1;
                            thread_stats.connections.fetch_add(1, Ordering::SeqCst);
                            tokio::spawn(serve(client, upstream, fault, thread_stats.clone()));
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("proxy started");
        FaultProxy {
            addr,
            stats,
            enabled,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Turns faults off (or on again) for new connections.
    pub fn set_faults(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    pub fn faults_injected(&self) -> u64 {
        self.stats.dropped.load(Ordering::SeqCst)
            + self.stats.stalled.load(Ordering::SeqCst)
            + self.stats.unavailable.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, fault: Fault, stats: Arc<Stats>) {
    if let Fault::Unavailable(retry_after) = fault {
        // Read the request head so the client sees an answer, not a reset.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = r#"{"code":"service_unavailable","message":"injected by the fault proxy","message_zh":"故障代理注入","details":{}}"#;
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {retry_after}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stats.unavailable.fetch_add(1, Ordering::SeqCst);
        let _ = client.write_all(response.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let limit = match fault {
        Fault::DropAfter(n) | Fault::StallAfter(n, _) => Some(n),
        Fault::None | Fault::Unavailable(_) => None,
    };
    let upstream_copy = async {
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let allowed = match limit {
                Some(limit) => (limit.saturating_sub(sent)).min(n as u64) as usize,
                None => n,
            };
            if server_write.write_all(&buf[..allowed]).await.is_err() {
                return;
            }
            sent += allowed as u64;
            if allowed < n {
                match fault {
                    Fault::StallAfter(_, pause) => {
                        stats.stalled.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(pause).await;
                    }
                    _ => {
                        stats.dropped.fetch_add(1, Ordering::SeqCst);
                    }
                }
                return;
            }
        }
    };
    let downstream_copy = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    // Whichever side ends first ends the connection (a cut drops both halves).
    tokio::select! {
        _ = upstream_copy => {},
        _ = downstream_copy => {},
    }
}
