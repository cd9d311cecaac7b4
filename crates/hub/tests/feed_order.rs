//! One person's HL7 v2 messages arriving on many connections at once are applied in the order
//! they were logged: the record ends as the last logged message says, never as an earlier one
//! applied late. Runs the hub over a real SQLite store with real threads. (The window the
//! per-person turn closes, between one message's logging and its applying, is too narrow for a
//! test to hit reliably; this guards the guarantee itself against any change to how messages are
//! applied.)

mod support;

use concord_fhir::RequestContext;
use concord_hub::search::Handling;
use serde_json::Value;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/hl7v2/messages/ADT-A08-01.hl7"
);

#[test]
fn one_persons_messages_on_many_connections_apply_in_logged_order() {
    let (hub, _dir) = support::feed_hub();
    let sample = String::from_utf8(std::fs::read(SAMPLE).unwrap()).unwrap();

    for round in 0..5 {
        // Eight senders, each with a run of updates to the same person's family name.
        let threads: Vec<_> = (0..8)
            .map(|sender| {
                let hub = hub.clone();
                let sample = sample.clone();
                std::thread::spawn(move || {
                    let mut logged = Vec::new();
                    for n in 0..6 {
                        let family = format!("Order{round}x{sender}x{n}");
                        let text = sample
                            .replace("|MSG00001|", &format!("|R{round}S{sender}N{n}|"))
                            .replace("EVERYMAN&&&&Aniston", &family);
                        let ctx = RequestContext::system("test", format!("r{round}"));
                        let received = hub.receive_v2(&ctx, text.as_bytes());
                        assert_eq!(
                            received.code,
                            "AA",
                            "{}",
                            String::from_utf8_lossy(&received.ack)
                        );
                        logged.push((received.seq.unwrap(), family));
                    }
                    logged
                })
            })
            .collect();
        let logged: Vec<(i64, String)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let last = logged.iter().max_by_key(|(seq, _)| *seq).unwrap();

        let ctx = RequestContext::system("test", "check");
        let bundle = hub
            .search(
                &ctx,
                Some("Patient"),
                &[],
                Handling::Lenient,
                "http://test/fhir",
            )
            .unwrap();
        let patients: Vec<Value> = bundle
            .entry
            .iter()
            .filter_map(|e| e.resource.as_ref())
            .map(|r| serde_json::from_str(r.get()).unwrap())
            .collect();
        assert_eq!(patients.len(), 1, "one person, one record");
        assert_eq!(
            patients[0]["name"][0]["family"], last.1,
            "round {round}: the record must end as the last logged message says"
        );
    }
}
