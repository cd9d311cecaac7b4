//! Tests of the identity feed's announcer against a real hub: the REST router over a temporary
//! SQLite store, served on a real socket, fed by an edge service layer over its own store. The
//! outside world's misbehaviour (a hub that is down, or failing) is a real server that does so on
//! purpose. Nothing here asserts on time: each test waits for an outcome with a generous limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_auth::{AuthConfig, AuthServer, Claims};
use concord_fhir::RequestContext;
use concord_hub::identity::{IdentityConfig, InvalidNhsNumber};
use concord_hub::search::Handling;
use concord_hub::{Hub, HubConfig, SystemClock};
use concord_rest::{AppState, router};
use concord_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

const EDGE_BASE: &str = "http://edge.test/fhir";
const SOURCE: &str = "gp-a";
/// Valid NHS numbers (modulus 11).
const NHS_ANN: &str = "9434765919";
const NHS_BOB: &str = "9434765870";
/// Fails the modulus-11 check.
const NHS_BAD: &str = "9434765918";

fn ctx() -> RequestContext {
    RequestContext::system("announce-test", "announce-test")
}

/// The hub: its service layer and the node key its tokens are signed with.
struct TestHub {
    hub: Hub,
    key: AuthServer,
    _dir: tempfile::TempDir,
}

impl TestHub {
    /// A hub with the default NHS number policy (reject).
    fn new() -> TestHub {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&SqliteOptions::new(dir.path().join("hub.db"))).expect("db");
        let hub =
            Hub::new(Arc::new(store), Arc::new(SystemClock), HubConfig::default()).expect("hub");
        TestHub {
            hub,
            key: AuthServer::ephemeral(AuthConfig::default()).expect("key"),
            _dir: dir,
        }
    }

    /// A system token for the edge, as `concord token issue --system` mints it.
    fn token(&self) -> String {
        self.key
            .mint(&Claims::system("edge-gp-a", "system/Patient.*"))
            .expect("mint")
    }

    fn router(&self) -> Router {
        router(AppState {
            hub: self.hub.clone(),
            auth: self.key.clone(),
            base_url: None,
            max_body_bytes: 1024 * 1024,
            metrics: None,
        })
    }

    /// The hub's records of one edge record.
    fn records(&self, local_id: &str) -> Vec<Value> {
        let identifier = format!("{}|{local_id}", source_system(SOURCE));
        let bundle = self
            .hub
            .search(
                &ctx(),
                Some("Patient"),
                &[("identifier".into(), identifier)],
                Handling::Strict,
                "http://hub.test/fhir",
            )
            .expect("search");
        bundle
            .entry
            .iter()
            .filter_map(|e| e.resource.as_ref())
            .map(|raw| serde_json::from_str(raw.get()).expect("json"))
            .collect()
    }

    /// The one hub record of an edge record, when it is there and linked to a golden person.
    fn linked(&self, local_id: &str) -> Option<Value> {
        match self.records(local_id).as_slice() {
            [one] => {
                let id = one["id"].as_str().expect("id");
                self.hub.person_of(id).map(|_| one.clone())
            }
            _ => None,
        }
    }
}

/// An HTTP server on a real socket, stopped when dropped.
struct Server {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    async fn start(listener: TcpListener, app: Router) -> Server {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Server {
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An address nothing listens on (yet).
async fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Binds an address that was free a moment ago, trying again while the system lets it go.
async fn bind_again(addr: SocketAddr) -> TcpListener {
    for _ in 0..200 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("cannot bind {addr} again");
}

/// The edge: a service layer over its own store, flagging invalid NHS numbers instead of
/// refusing them, as a legacy feed's edge may.
struct Edge {
    hub: Hub,
    dir: tempfile::TempDir,
}

impl Edge {
    fn new() -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteStore::open(&SqliteOptions::new(dir.path().join("concord.db"))).expect("db");
        let hub = Hub::new(
            Arc::new(store),
            Arc::new(SystemClock),
            HubConfig {
                identity: IdentityConfig {
                    invalid_nhs_number: InvalidNhsNumber::Flag,
                    ..IdentityConfig::default()
                },
                ..HubConfig::default()
            },
        )
        .expect("edge");
        Edge { hub, dir }
    }

    fn cursor_path(&self) -> PathBuf {
        self.dir.path().join("announce.cursor")
    }

    /// Stores a Patient and returns its local id.
    fn patient(&self, family: &str, given: &str, birth: &str, nhs: Option<&str>) -> String {
        let mut body = json!({
            "resourceType": "Patient",
            "name": [{"family": family, "given": [given]}],
            "gender": "female",
            "birthDate": birth,
            "address": [{"postalCode": "LS1 4AP"}]
        });
        if let Some(nhs) = nhs {
            body["identifier"] =
                json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}]);
        }
        self.hub
            .create(&ctx(), "Patient", body, None)
            .expect("create")
            .version
            .id
    }

    fn settings(&self, hub_addr: SocketAddr, token: &str) -> AnnounceSettings {
        let mut settings =
            AnnounceSettings::new(format!("http://{hub_addr}/fhir"), SOURCE, token, EDGE_BASE);
        // Short waits keep the tests quick; nothing depends on them.
        settings.poll_interval = Duration::from_millis(50);
        settings.backoff_start = Duration::from_millis(10);
        settings.backoff_max = Duration::from_millis(200);
        settings.batch_size = 2;
        settings
    }

    fn start(&self, settings: AnnounceSettings) -> Announcer {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(
            self.hub.clone(),
            settings,
            self.cursor_path(),
            async move {
                let _ = stopped.await;
            },
        ));
        Announcer { stop, task }
    }

    fn rejected_lines(&self) -> Vec<String> {
        std::fs::read_to_string(rejected_path(&self.cursor_path()))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

struct Announcer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Announcer {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("the announcer ran");
    }
}

/// Waits until `check` holds, failing after a generous limit.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

fn version_of(record: &Value) -> String {
    record["meta"]["versionId"]
        .as_str()
        .expect("versionId")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_while_the_hub_is_down_then_every_patient_arrives_linked() {
    let hub = TestHub::new();
    let edge = Edge::new();
    let ann = edge.patient("Smith", "Ann", "1970-01-01", Some(NHS_ANN));
    let bob = edge.patient("Jones", "Bob", "1980-02-02", Some(NHS_BOB));
    let cat = edge.patient("Brown", "Cat", "1990-03-03", None);
    let addr = free_addr().await;
    let announcer = edge.start(edge.settings(addr, &hub.token()));
    // Written while the announcer is already failing to reach the hub.
    let dan = edge.patient("Green", "Dan", "2000-04-04", None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(hub.records(&ann).is_empty());

    let _server = Server::start(bind_again(addr).await, hub.router()).await;
    eventually(
        "every Patient is at the hub, linked to a golden person",
        || {
            [&ann, &bob, &cat, &dan]
                .iter()
                .all(|id| hub.linked(id).is_some())
        },
    )
    .await;
    let copy = hub.linked(&ann).expect("ann");
    assert_eq!(copy["meta"]["source"], EDGE_BASE);
    assert_eq!(copy["name"][0]["family"], "Smith");
    let identifiers = copy["identifier"].as_array().expect("identifiers");
    assert!(
        identifiers
            .contains(&json!({"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_ANN}))
    );
    assert!(
        identifiers.contains(
            &json!({"system": "https://concord.health/fhir/sid/source/gp-a", "value": ann})
        )
    );
    announcer.stop().await;
    assert!(edge.rejected_lines().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_announcer_resumes_at_its_cursor_and_resending_is_harmless() {
    let hub = TestHub::new();
    let edge = Edge::new();
    let addr = free_addr().await;
    let _server = Server::start(bind_again(addr).await, hub.router()).await;
    let ids: Vec<String> = ["Ann", "Bob", "Cat"]
        .iter()
        .enumerate()
        .map(|(i, given)| edge.patient("Smith", given, &format!("197{i}-01-01"), None))
        .collect();
    let announcer = edge.start(edge.settings(addr, &hub.token()));
    eventually("the first Patients are at the hub", || {
        ids.iter().all(|id| hub.linked(id).is_some())
    })
    .await;
    // The hub can hold a record before its answer reaches the announcer; stopped in between, the
    // announcer would rightly send it again. Wait until the cursor covers all three.
    let last_seq = ids
        .iter()
        .map(|id| {
            edge.hub
                .read(&RequestContext::system("test", "seq"), "Patient", id)
                .expect("stored")
                .seq
        })
        .max()
        .expect("three");
    eventually("the cursor covers the first Patients", || {
        std::fs::read_to_string(edge.cursor_path())
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .is_some_and(|c| c >= last_seq)
    })
    .await;
    announcer.stop().await;
    let cursor: i64 = std::fs::read_to_string(edge.cursor_path())
        .expect("cursor saved")
        .trim()
        .parse()
        .expect("a position");
    assert!(cursor > 0);
    let persons: Vec<String> = ids
        .iter()
        .map(|id| {
            let record = hub.linked(id).expect("linked");
            hub.hub
                .person_of(record["id"].as_str().expect("id"))
                .expect("person")
        })
        .collect();

    // Restarted: a Patient written since arrives, and what was acknowledged is not sent again
    // (the announcer works in store order, so it would have come first).
    let announcer = edge.start(edge.settings(addr, &hub.token()));
    let dan = edge.patient("Green", "Dan", "2000-04-04", None);
    eventually("the new Patient is at the hub", || {
        hub.linked(&dan).is_some()
    })
    .await;
    for id in &ids {
        assert_eq!(version_of(&hub.linked(id).expect("linked")), "1", "resent");
    }
    announcer.stop().await;

    // Without its cursor it announces everything again: the hub updates the same records and
    // the same golden persons, nothing is duplicated.
    std::fs::remove_file(edge.cursor_path()).expect("remove cursor");
    let announcer = edge.start(edge.settings(addr, &hub.token()));
    eventually("every Patient has been announced again", || {
        ids.iter()
            .chain([&dan])
            .all(|id| hub.linked(id).is_some_and(|r| version_of(&r) == "2"))
    })
    .await;
    for (id, person) in ids.iter().zip(&persons) {
        let records = hub.records(id);
        assert_eq!(records.len(), 1, "one hub record per edge record");
        let hub_id = records[0]["id"].as_str().expect("id");
        assert_eq!(hub.hub.person_of(hub_id).as_ref(), Some(person));
    }
    announcer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_announced_again_and_a_deletion_deletes_at_the_hub() {
    let hub = TestHub::new();
    let edge = Edge::new();
    let addr = free_addr().await;
    let _server = Server::start(bind_again(addr).await, hub.router()).await;
    let ann = edge.patient("Smith", "Ann", "1970-01-01", Some(NHS_ANN));
    let bob = edge.patient("Jones", "Bob", "1980-02-02", None);
    let settings = edge.settings(addr, &hub.token());
    let wake = settings.wake.clone();
    let announcer = edge.start(settings);
    eventually("both Patients are at the hub", || {
        hub.linked(&ann).is_some() && hub.linked(&bob).is_some()
    })
    .await;
    let bob_at_hub = hub.linked(&bob).expect("bob")["id"]
        .as_str()
        .expect("id")
        .to_string();

    let mut married = edge.hub.read(&ctx(), "Patient", &ann).expect("read");
    let mut body: Value =
        serde_json::from_str(married.body.take().as_deref().expect("body")).expect("json");
    body["name"][0]["family"] = json!("Taylor");
    edge.hub
        .update(&ctx(), "Patient", &ann, body, None)
        .expect("update");
    edge.hub
        .delete(&ctx(), "Patient", &bob, None)
        .expect("delete");
    wake.notify_one();
    eventually("the update reached the hub", || {
        hub.linked(&ann)
            .is_some_and(|r| r["name"][0]["family"] == "Taylor")
    })
    .await;
    eventually("the deletion reached the hub", || {
        hub.records(&bob).is_empty()
    })
    .await;
    assert_eq!(
        hub.hub.person_of(&bob_at_hub),
        None,
        "unlinked from its person"
    );
    assert_eq!(hub.records(&ann).len(), 1);
    announcer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_hub_rejects_is_listed_without_patient_data_and_the_feed_goes_on() {
    let hub = TestHub::new();
    let edge = Edge::new();
    let addr = free_addr().await;
    let _server = Server::start(bind_again(addr).await, hub.router()).await;
    // The edge flags the invalid NHS number; the hub, under its default policy, refuses it.
    let bad = edge.patient("Zephaniah", "Quentin", "1955-05-05", Some(NHS_BAD));
    let good = edge.patient("Smith", "Ann", "1970-01-01", Some(NHS_ANN));
    let announcer = edge.start(edge.settings(addr, &hub.token()));
    eventually("the next Patient is at the hub", || {
        hub.linked(&good).is_some()
    })
    .await;
    announcer.stop().await;
    assert!(hub.records(&bad).is_empty());
    let lines = edge.rejected_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for value in [NHS_BAD, "Zephaniah", "Quentin", "1955", "LS1"] {
        assert!(!line.contains(value), "patient data in {line}");
    }
    let entry: Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(entry["local_id"], bad.as_str());
    assert_eq!(entry["status"], 422);
    assert_eq!(entry["method"], "PUT");
    assert!(entry["seq"].as_i64().is_some_and(|s| s > 0));
    let issue = &entry["issues"][0];
    assert_eq!(issue["code"], "value");
    assert_eq!(issue["expression"], json!(["Patient.identifier[0].value"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_failing_with_500_is_retried_until_it_recovers() {
    let hub = TestHub::new();
    let edge = Edge::new();
    let ids: Vec<String> = ["Ann", "Bob", "Cat"]
        .iter()
        .enumerate()
        .map(|(i, given)| edge.patient("Smith", given, &format!("198{i}-01-01"), None))
        .collect();
    // The first five requests fail as an overloaded or broken hub would.
    let failures = Arc::new(AtomicUsize::new(0));
    let counter = failures.clone();
    let failing = hub.router().layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 5 {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                let response: Response = next.run(request).await;
                response
            }
        },
    ));
    let addr = free_addr().await;
    let _server = Server::start(bind_again(addr).await, failing).await;
    let announcer = edge.start(edge.settings(addr, &hub.token()));
    eventually("every Patient is at the hub", || {
        ids.iter().all(|id| hub.linked(id).is_some())
    })
    .await;
    announcer.stop().await;
    assert!(failures.load(Ordering::SeqCst) > 5);
    assert!(edge.rejected_lines().is_empty(), "a 500 is not a rejection");
    for id in &ids {
        assert_eq!(hub.records(id).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cursor_stops_the_start_with_a_reason() {
    let edge = Edge::new();
    std::fs::write(edge.cursor_path(), "not a number").expect("write");
    let settings = edge.settings(free_addr().await, "token");
    let error = run(
        edge.hub.clone(),
        settings,
        edge.cursor_path(),
        std::future::pending(),
    )
    .await
    .expect_err("refused");
    assert!(
        format!("{error:#}").contains("announce.cursor"),
        "{error:#}"
    );
}

#[test]
fn the_cursor_is_replaced_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("announce.cursor");
    write_cursor(&path, 42).expect("write");
    write_cursor(&path, 43).expect("write again");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "43\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["announce.cursor"], "no temporary file left");
    assert_eq!(rejected_path(&path), dir.path().join("announce.rejected"));
}

#[test]
fn statuses_are_classified_by_whose_problem_they_are() {
    let class =
        |status: u16, delete: bool| classify(StatusCode::from_u16(status).expect("status"), delete);
    for status in [200, 201, 204] {
        assert_eq!(class(status, false), Class::Acknowledged);
    }
    for status in [400, 412, 413, 422] {
        assert_eq!(class(status, false), Class::Rejected, "{status}");
    }
    for status in [301, 401, 403, 404, 405, 408, 409, 415, 429, 500, 502, 503] {
        assert!(matches!(class(status, false), Class::Retry(_)), "{status}");
    }
    assert_eq!(class(404, true), Class::Acknowledged);
    assert_eq!(class(410, true), Class::Acknowledged);
}

#[test]
fn rejection_details_keep_codes_and_plain_paths_only() {
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "value",
         "diagnostics": "Patient.identifier[0] is not a valid NHS number: 9434765918",
         "expression": ["Patient.identifier[0].value", "Patient.identifier.where(value='9434765918')"]},
        {"severity": "error", "code": "<script>", "details": {"text": "Ann Smith"}}
    ]});
    assert_eq!(
        issue_paths(&outcome),
        [
            (
                "value".to_string(),
                vec!["Patient.identifier[0].value".to_string()]
            ),
            ("unknown".to_string(), Vec::new()),
        ]
    );
    assert!(issue_paths(&json!("not an outcome")).is_empty());
}

#[test]
fn the_patient_url_encodes_the_identifier() {
    let base = hub_base("https://hub.example/fhir/").expect("url");
    let url = patient_url(&base, &source_system("gp-a"), "a.b-1");
    assert_eq!(
        url.as_str(),
        "https://hub.example/fhir/Patient?identifier=https%3A%2F%2Fconcord.health%2Ffhir%2Fsid%2Fsource%2Fgp-a%7Ca.b-1"
    );
}

#[test]
fn settings_are_checked() {
    let good = AnnounceSettings::new("https://hub.example/fhir", "gp-a", "t", EDGE_BASE);
    good.check().expect("valid");
    for (hub_url, source_id, token) in [
        ("hub.example", "gp-a", "t"),
        ("ftp://hub.example/fhir", "gp-a", "t"),
        ("https://hub.example/fhir?x=1", "gp-a", "t"),
        ("https://hub.example/fhir", "GP A", "t"),
        ("https://hub.example/fhir", "", "t"),
        ("https://hub.example/fhir", "gp-a", " "),
    ] {
        let settings = AnnounceSettings::new(hub_url, source_id, token, EDGE_BASE);
        assert!(settings.check().is_err(), "{hub_url} {source_id} {token:?}");
    }
}

#[test]
fn the_announce_config_section_is_validated_at_start() {
    use crate::config::{Config, Overrides};
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    let load = |text: &str| {
        std::fs::write(&file, text).expect("write");
        Config::load(Some(&file), &Overrides::default())
    };
    let config = load("").expect("defaults");
    assert!(config.announce_settings().is_none(), "no feed by default");

    let config = load(
        "[server]\nlisten = \"127.0.0.1:8181\"\n[announce]\nhub_url = \"https://hub.example/fhir\"\nsource_id = \"gp-a\"\ntoken = \"t\"\npoll_interval_ms = 250\n",
    )
    .expect("valid");
    let settings = config.announce_settings().expect("a feed");
    assert_eq!(settings.base_url, "http://127.0.0.1:8181/fhir");
    assert_eq!(settings.poll_interval, Duration::from_millis(250));

    let error = format!(
        "{:#}",
        load("[announce]\nhub_url = \"https://hub.example/fhir\"\nsource_id = \"GP A\"\ntoken = \"t\"\n")
            .expect_err("bad source id")
    );
    assert!(error.contains("announce.source_id"), "{error}");
    let error = format!(
        "{:#}",
        load("[announce]\nhub_url = \"https://hub.example/fhir\"\nsource_id = \"gp-a\"\n")
            .expect_err("no token")
    );
    assert!(error.contains("announce.token"), "{error}");
    let error = format!(
        "{:#}",
        load("[announce]\nhub = \"x\"\n").expect_err("unknown key")
    );
    assert!(error.contains("hub"), "{error}");
}
