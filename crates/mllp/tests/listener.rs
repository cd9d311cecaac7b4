//! The MLLP listener over real TCP on 127.0.0.1, in front of a hub over a real SQLite store:
//! many messages per connection, repeats acknowledged without being applied twice, bad frames and
//! bad messages answered or closed without disturbing other connections.

use std::sync::Arc;
use std::time::Duration;

use concord_hl7v2::mllp::{Deframer, frame};
use concord_hub::search::Handling;
use concord_hub::{Hub, HubConfig, SystemClock};
use concord_mllp::{MllpConfig, serve};
use concord_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/hl7v2/messages"
);

struct Node {
    addr: std::net::SocketAddr,
    hub: Hub,
    _dir: tempfile::TempDir,
}

async fn start(config: MllpConfig) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::new(dir.path().join("concord.db"))
    };
    let store = Arc::new(SqliteStore::open(&options).unwrap());
    let hub = Hub::new(store.clone(), Arc::new(SystemClock), HubConfig::default())
        .unwrap()
        .with_message_log(store);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, hub.clone(), config, std::future::pending()));
    Node {
        addr,
        hub,
        _dir: dir,
    }
}

/// A shared sample message. They all carry the control id MSG00001, so each gets its own here
/// (a real sender never reuses one).
fn message(name: &str) -> Vec<u8> {
    let text = std::fs::read(format!("{MESSAGES}/{name}")).unwrap();
    let text = String::from_utf8_lossy(&text).replace("|MSG00001|", &format!("|{name}|"));
    text.into_bytes()
}

/// Sends one framed message and reads one framed reply (None when the server closed).
async fn exchange(stream: &mut TcpStream, bytes: &[u8]) -> Option<String> {
    stream.write_all(bytes).await.ok()?;
    read_reply(stream).await
}

async fn read_reply(stream: &mut TcpStream) -> Option<String> {
    let mut deframer = Deframer::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        if let Some(Ok(reply)) = deframer.next_message() {
            return Some(String::from_utf8_lossy(&reply).into_owned());
        }
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        deframer.push(&buf[..n]);
    }
}

fn msa(ack: &str) -> String {
    ack.split('\r')
        .find(|s| s.starts_with("MSA|"))
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn many_messages_per_connection_each_acknowledged_and_repeats_not_applied_twice() {
    let node = start(MllpConfig::default()).await;
    let ctx = concord_fhir::RequestContext::system("test", "t");
    let count = |resource_type: Option<&str>| {
        node.hub
            .search(
                &ctx,
                resource_type,
                &[("_summary".into(), "count".into())],
                Handling::Lenient,
                "http://x",
            )
            .unwrap()
            .total
    };
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    let mut ack_ids = std::collections::BTreeSet::new();
    // The ORU sample asks for enhanced acknowledgement (MSH-15): a commit accept, CA.
    for (name, code) in [
        ("ADT-A01-01.hl7", "AA"),
        ("ADT-A08-01.hl7", "AA"),
        ("ORU-R01-01.hl7", "CA"),
    ] {
        let ack = exchange(&mut stream, &frame(&message(name)))
            .await
            .expect("an ACK");
        assert!(
            msa(&ack).starts_with(&format!("MSA|{code}|")),
            "{name}: {ack}"
        );
        // MSH-10 of the ACK itself: its own control id, within the 20 characters HL7 v2.3 to
        // v2.6 allow, so a receiver that checks lengths takes it.
        let ack_id = ack.split('|').nth(9).expect("MSH-10").to_string();
        assert!(
            !ack_id.is_empty() && ack_id.len() <= 20,
            "{name}: ACK control id {ack_id:?}"
        );
        assert!(ack_ids.insert(ack_id), "{name}: a fresh ACK control id");
    }
    assert!(
        count(Some("DiagnosticReport")) >= Some(1),
        "the accepted ORU was applied too"
    );
    assert!(count(Some("Patient")) >= Some(1));
    let before = count(None);
    let again = exchange(&mut stream, &frame(&message("ADT-A01-01.hl7")))
        .await
        .expect("an ACK");
    assert!(msa(&again).starts_with("MSA|AA|"), "{again}");
    assert_eq!(
        before,
        count(None),
        "a repeated message is not applied again"
    );
}

#[tokio::test]
async fn a_message_that_does_not_parse_gets_an_ar_and_the_connection_stays_open() {
    let node = start(MllpConfig::default()).await;
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    let ack = exchange(&mut stream, &frame(b"PID|1||123\r"))
        .await
        .expect("an ACK");
    assert!(msa(&ack).starts_with("MSA|AR|"), "{ack}");
    assert!(ack.contains("\rERR|"), "the ERR segment says why: {ack}");
    let ack = exchange(&mut stream, &frame(&message("ADT-A04-01.hl7")))
        .await
        .expect("still served");
    assert!(msa(&ack).starts_with("MSA|AA|"), "{ack}");
}

#[tokio::test]
async fn an_unsupported_event_is_a_dead_letter_with_its_reason() {
    let node = start(MllpConfig::default()).await;
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    let ack = exchange(&mut stream, &frame(&message("BAR-P01-01.hl7")))
        .await
        .expect("an ACK");
    assert!(msa(&ack).starts_with("MSA|AE|"), "{ack}");
    assert!(ack.contains("\rERR|"), "{ack}");
    let ctx = concord_fhir::RequestContext::system("test", "t");
    let dead = node.hub.dead_letters(&ctx, 0, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.as_deref().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let node = start(MllpConfig::default()).await;
    let mut bad = TcpStream::connect(node.addr).await.unwrap();
    let mut good = TcpStream::connect(node.addr).await.unwrap();
    assert_eq!(
        exchange(&mut bad, b"\x00\x01garbage without a frame").await,
        None,
        "closed"
    );
    let ack = exchange(&mut good, &frame(&message("ADT-A04-01.hl7")))
        .await
        .expect("an ACK");
    assert!(msa(&ack).starts_with("MSA|AA|"), "{ack}");
}

#[tokio::test]
async fn an_oversize_frame_closes_the_connection() {
    let node = start(MllpConfig {
        max_message_bytes: 1024,
        ..MllpConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    let mut big = message("ADT-A01-01.hl7");
    big.extend(std::iter::repeat_n(b'X', 4096));
    assert_eq!(exchange(&mut stream, &frame(&big)).await, None);
}

#[tokio::test]
async fn peers_not_allowed_are_refused() {
    let node = start(MllpConfig {
        allowed_peers: Vec::new(),
        ..MllpConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    assert_eq!(
        exchange(&mut stream, &frame(&message("ADT-A01-01.hl7"))).await,
        None
    );
}

#[tokio::test]
async fn a_reused_control_id_with_other_content_is_kept_not_dropped() {
    let node = start(MllpConfig::default()).await;
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    let first = message("ADT-A01-01.hl7");
    let ack = exchange(&mut stream, &frame(&first)).await.expect("an ACK");
    assert!(msa(&ack).starts_with("MSA|AA|"), "{ack}");
    let other = String::from_utf8(message("ADT-A04-01.hl7"))
        .unwrap()
        .replace("|ADT-A04-01.hl7|", "|ADT-A01-01.hl7|");
    let ack = exchange(&mut stream, &frame(other.as_bytes()))
        .await
        .expect("an ACK");
    assert!(msa(&ack).starts_with("MSA|AE|"), "{ack}");
    let ctx = concord_fhir::RequestContext::system("test", "t");
    let dead = node.hub.dead_letters(&ctx, 0, 10).unwrap();
    assert_eq!(dead.len(), 1, "kept for a person to look at");
    assert_eq!(dead[0].raw, other.as_bytes());
}

/// A message waits in the store for the writer, its commit and the disk. It waits on its
/// connection's thread, so a busy blocking pool (every thread held by other work, as under a
/// load of reads) does not hold it up, and it holds no thread that reads need.
#[test]
fn a_message_is_answered_while_the_blocking_pool_is_busy() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (release, held) = std::sync::mpsc::channel::<()>();
    runtime.block_on(async {
        let node = start(MllpConfig::default()).await;
        // The one blocking thread is taken until the test ends.
        let busy = tokio::task::spawn_blocking(move || {
            let _ = held.recv();
        });
        let mut stream = TcpStream::connect(node.addr).await.unwrap();
        let ack = tokio::time::timeout(
            Duration::from_secs(10),
            exchange(&mut stream, &frame(&message("ADT-A01-01.hl7"))),
        )
        .await
        .expect("the message was answered while the blocking pool was busy")
        .expect("an ACK");
        assert!(msa(&ack).starts_with("MSA|AA|"), "{ack}");
        release.send(()).unwrap();
        busy.await.unwrap();
    });
}

#[tokio::test]
async fn connections_beyond_max_connections_are_closed() {
    let node = start(MllpConfig {
        max_connections: 1,
        ..MllpConfig::default()
    })
    .await;
    let mut first = TcpStream::connect(node.addr).await.unwrap();
    let ack = exchange(&mut first, &frame(&message("ADT-A01-01.hl7"))).await;
    assert!(msa(&ack.expect("an ACK")).starts_with("MSA|AA|"));
    let mut second = TcpStream::connect(node.addr).await.unwrap();
    assert_eq!(
        exchange(&mut second, &frame(&message("ADT-A08-01.hl7"))).await,
        None,
        "a second connection is over the limit of one"
    );
    // Once the first is closed, a connection is taken again.
    drop(first);
    let mut answered = None;
    for _ in 0..50 {
        let mut third = TcpStream::connect(node.addr).await.unwrap();
        answered = exchange(&mut third, &frame(&message("ADT-A08-01.hl7"))).await;
        if answered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(msa(&answered.expect("an ACK once the first closed")).starts_with("MSA|AA|"));
}
