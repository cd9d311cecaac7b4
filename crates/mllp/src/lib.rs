//! The MLLP transport (HL7 v2 Minimal Lower Layer Protocol, release 2): HL7 v2 messages over TCP,
//! each framed `<VT> message <FS><CR>`, answered by one framed acknowledgement.
//!
//! Owns the listener: accepting connections from allowed peers, many at once; reading frames
//! (many messages per connection, one after another, so one sender's messages are applied in
//! order); handing each message to [`Hub::receive_v2`] on the connection's own thread and writing
//! back its ACK; closing a connection that sends garbage between frames, an over-size frame or
//! nothing for too long, with the reason logged (never the message: it carries patient data);
//! refusing connections beyond `max_connections`; and stopping cleanly on shutdown, finishing the
//! message in hand. Does not parse, store or acknowledge by itself: the hub decides every ACK
//! after the message is durably logged.
//!
//! Each connection has a thread of its own for its messages, not tokio's blocking pool. A
//! message spends most of its time in the store waiting: for the writer, for the group commit
//! that holds it and for the disk. The blocking pool is kept small (two threads a core) for the
//! requests that need CPU, so with eight connections only four messages at once could wait for
//! a commit, and the others queued for a thread: half of a message's time from frame to ACK
//! (docs/performance.md). A connection's messages are handled one after another anyway, so one
//! thread each costs nothing in order, and the threads are bounded by `max_connections`.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use concord_fhir::RequestContext;
use concord_hl7v2::mllp::{Deframer, MllpError, frame};
use concord_hub::Hub;
use concord_hub::feed::Received;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Settings of the MLLP listener.
#[derive(Debug, Clone)]
pub struct MllpConfig {
    /// Largest message accepted; a larger frame closes the connection.
    pub max_message_bytes: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Peers allowed to connect. MLLP has no authentication of its own, so only listed
    /// addresses (by default the loopback) may send; put remote senders behind a VPN or TLS
    /// tunnel and list the tunnel's address.
    pub allowed_peers: Vec<IpAddr>,
    /// Connections open at once at most; one more is closed at once, with the reason logged.
    /// Each open connection has a thread of its own.
    pub max_connections: usize,
}

impl Default for MllpConfig {
    fn default() -> Self {
        MllpConfig {
            max_message_bytes: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(300),
            allowed_peers: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ],
            max_connections: 64,
        }
    }
}

/// Serves MLLP on `listener` until `shutdown` completes; then stops accepting, lets every
/// connection finish the message it is handling, and returns.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    config: MllpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(error = %error, "mllp: accept failed");
                        continue;
                    }
                };
                if !config.allowed_peers.contains(&peer.ip().to_canonical()) {
                    tracing::warn!(peer = %peer.ip(), "mllp: connection from a peer not in mllp.allowed_peers refused");
                    drop(stream);
                    continue;
                }
                // Finished connections leave the set here, so it counts the open ones.
                while connections.try_join_next().is_some() {}
                if connections.len() >= config.max_connections {
                    tracing::warn!(peer = %peer.ip(), open = connections.len(), "mllp: connection refused: mllp.max_connections are open");
                    drop(stream);
                    continue;
                }
                let (hub, config, stop) = (hub.clone(), Arc::clone(&config), stop_rx.clone());
                connections.spawn(async move {
                    let connection_id = uuid::Uuid::new_v4().to_string();
                    if let Err(reason) = connection(stream, &hub, &config, stop, &connection_id).await {
                        tracing::warn!(connection = %connection_id, peer = %peer.ip(), reason = %reason, "mllp: connection closed");
                    }
                });
            }
        }
    }
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Reads frames and answers each; returns why the connection ended when that was not the
/// peer closing it.
async fn connection(
    mut stream: TcpStream,
    hub: &Hub,
    config: &MllpConfig,
    mut stop: watch::Receiver<bool>,
    connection_id: &str,
) -> Result<(), String> {
    let handler = Handler::start(hub, connection_id)?;
    let mut deframer = Deframer::new(config.max_message_bytes);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut count = 0u64;
    loop {
        // Answer every complete message already received before reading more.
        while let Some(next) = deframer.next_message() {
            let message = next.map_err(|e| match e {
                MllpError::GarbageBeforeStart(n) => format!("{n} bytes outside an MLLP frame"),
                MllpError::TooLarge(n) => {
                    format!("a frame of more than {n} bytes (mllp.max_message_bytes)")
                }
            })?;
            count += 1;
            let ctx = RequestContext::system("mllp", format!("{connection_id}-{count}"));
            let received = handler
                .receive(ctx, message)
                .await
                .ok_or_else(|| "the message handler failed".to_string())?;
            tracing::info!(connection = %connection_id, message = count, ack = received.code, repeat = received.repeat, "mllp: message acknowledged");
            stream
                .write_all(&frame(&received.ack))
                .await
                .map_err(|e| format!("cannot send the ACK: {e}"))?;
        }
        if *stop.borrow() {
            return Ok(());
        }
        let read = tokio::select! {
            read = tokio::time::timeout(config.idle_timeout, stream.read(&mut buffer)) => read,
            _ = stop.changed() => return Ok(()),
        };
        match read {
            Err(_) => return Err("idle for longer than mllp.idle_timeout".into()),
            Ok(Err(e)) => return Err(format!("read failed: {e}")),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => deframer.push(&buffer[..n]),
        }
    }
}

/// A message for a connection's thread, and where its acknowledgement goes.
type Job = (RequestContext, Vec<u8>, oneshot::Sender<Received>);

/// The thread that hands one connection's messages to the hub, one at a time. It ends when the
/// connection drops its handle.
struct Handler {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Handler {
    fn start(hub: &Hub, connection_id: &str) -> Result<Handler, String> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let hub = hub.clone();
        std::thread::Builder::new()
            .name("concord-mllp".into())
            .spawn(move || {
                for (ctx, message, reply) in queue {
                    // The connection may be gone (shutdown, peer closed); the message is
                    // handled all the same, as the hub logged it before answering.
                    let _ = reply.send(hub.receive_v2(&ctx, &message));
                }
            })
            .map_err(|e| format!("cannot start the thread for connection {connection_id}: {e}"))?;
        Ok(Handler { jobs })
    }

    /// The acknowledgement of `message`, or None when the thread failed (a panic in the hub).
    async fn receive(&self, ctx: RequestContext, message: Vec<u8>) -> Option<Received> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((ctx, message, reply)).ok()?;
        answer.await.ok()
    }
}
