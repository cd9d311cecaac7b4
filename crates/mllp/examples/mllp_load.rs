//! Load generator for the MLLP listener: N connections each send M ADT^A04 messages (MSH, EVN,
//! PID, PV1 and AL1 of the sample; every one a
//! new patient and visit, with its own name, birth date, address, phones, identifiers and control
//! id), one after another, waiting for each ACK; prints
//! messages per second and the send-to-ACK latency percentiles. Used by `tools/bench/mllp.sh`.
//!
//! Usage: `mllp_load ADDR CONNECTIONS MESSAGES_PER_CONNECTION SAMPLE.hl7`

use std::time::{Duration, Instant};

use concord_hl7v2::mllp::{Deframer, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, connections, per_connection, sample] = args.as_slice() else {
        eprintln!("usage: mllp_load ADDR CONNECTIONS MESSAGES_PER_CONNECTION SAMPLE.hl7");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("connections");
    let per_connection: usize = per_connection.parse().expect("messages per connection");
    // Keep the segments whose records are keyed by the patient or varied below; the sample's
    // other segments carry fixed business identifiers (a diagnosis id, an episode id), which would
    // make every message update the same few records instead of adding a patient.
    let sample: String = std::fs::read_to_string(sample)
        .expect("sample message")
        .split('\r')
        .filter(|segment| {
            ["MSH|", "EVN|", "PID|", "PV1|", "AL1|"]
                .iter()
                .any(|id| segment.starts_with(id))
        })
        .map(|segment| format!("{segment}\r"))
        .collect();
    let run = std::process::id();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (addr, sample) = (addr.clone(), sample.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.expect("connect");
            let mut deframer = Deframer::new(1 << 20);
            let mut buf = vec![0u8; 65536];
            let mut latencies = Vec::with_capacity(per_connection);
            let mut rejected = 0usize;
            for m in 0..per_connection {
                let id = format!("L{run}x{c}x{m}");
                // A different person each time: a surname spelled from the numbers, and a birth
                // date that moves with them.
                let family: String = format!("{c}x{m}x{run}")
                    .chars()
                    .map(|ch| match ch.to_digit(10) {
                        Some(d) => char::from(b'A' + d as u8),
                        None => 'Q',
                    })
                    .collect();
                let birth = format!(
                    "19{:02}{:02}{:02}",
                    20 + m % 80,
                    1 + m % 12,
                    1 + (m + c) % 28
                );
                let message = sample
                    .replace("EVERYMAN&", &format!("{family}&"))
                    .replace(
                        "78788788^^CP^5555^^^1111^^^^^2222",
                        &format!("{0:08}^^CP^^^^{0:08}", 10_000_000 + m * 97 + c),
                    )
                    .replace("12121212^", &format!("{:08}^", 20_000_000 + m * 89 + c))
                    .replace("^ADAM^A^III^", &format!("^{}^A^III^", given(c, m)))
                    .replace("|EOC124^", &format!("|{id}E^"))
                    .replace("1000&Hospital Lane", &format!("{m}&Hospital Lane {c}"))
                    .replace(
                        "^MI^99999^",
                        &format!("^MI^{:05}^", (m * 7 + c * 13) % 100_000),
                    )
                    .replace("|198808181126+0215|", &format!("|{birth}|"))
                    .replace("|40007716^^^AccMng", &format!("|{id}V^^^AccMng"))
                    .replace("|MSG00001|", &format!("|{id}|"))
                    .replace("PATID1234^", &format!("{id}P^"))
                    .replace("~123456789^", &format!("~{id}S^"))
                    .replace("|1234567^4^M11^", &format!("|{id}^4^M11^"));
                let sent = Instant::now();
                stream
                    .write_all(&frame(message.as_bytes()))
                    .await
                    .expect("send");
                let ack = loop {
                    if let Some(next) = deframer.next_message() {
                        break next.expect("a framed ACK");
                    }
                    let n = stream.read(&mut buf).await.expect("read");
                    assert!(n > 0, "the server closed the connection");
                    deframer.push(&buf[..n]);
                };
                latencies.push(sent.elapsed());
                if !String::from_utf8_lossy(&ack).contains("MSA|AA|") {
                    rejected += 1;
                }
            }
            (latencies, rejected)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let mut rejected = 0;
    for task in tasks {
        let (l, r) = task.await.expect("connection task");
        latencies.extend(l);
        rejected += r;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "connections {connections}: {} messages in {:.2} s = {:.0} messages/s; send-to-ACK p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; not AA: {rejected}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
}

/// A given name that differs between neighbouring patients.
fn given(c: usize, m: usize) -> String {
    const NAMES: [&str; 12] = [
        "ADAM", "BEATRICE", "CONOR", "DIVYA", "EMEKA", "FIONA", "GARETH", "HANNA", "IBRAHIM",
        "JOAN", "KWAME", "LUCY",
    ];
    format!(
        "{}{}",
        NAMES[(m + c) % NAMES.len()],
        char::from(b'A' + (m / 12 % 26) as u8)
    )
}
