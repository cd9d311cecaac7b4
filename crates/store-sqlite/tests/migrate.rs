//! Opening a store written by an earlier build: a version 2 store (rowid index tables) and a
//! version 3 store (names in the rows of `phonetic`) are migrated to version 4 in place and keep
//! answering the same searches, `phonetic` ones now by sound; a store from a newer build is
//! refused with its version named.

use concord_fhir::RequestContext;
use concord_search::parse::parse_search;
use concord_store::ResourceStore;
use concord_store_sqlite::{SqliteOptions, SqliteStore};
use rusqlite::Connection;

/// A version 2 store holding Patient/p1 (family Smith, two identifiers, an organization) and
/// Patient/p2 (family Jones), with the index rows version 2 wrote for them.
fn version_2_store(path: &std::path::Path) {
    let conn = Connection::open(path).expect("opens");
    conn.execute_batch(include_str!("schema-v2.sql"))
        .expect("version 2 schema");
    conn.execute_batch(
        r#"
        INSERT INTO schema_info (key, value) VALUES ('schema_version', 2);
        INSERT INTO resource_version (seq, resource_type, id, version_id, last_updated, method, body)
        VALUES (1, 'Patient', 'p1', 1, 1700000000000, 'POST',
                '{"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"2023-11-14T22:13:20Z"},"name":[{"family":"Smith"}]}'),
               (2, 'Patient', 'p2', 1, 1700000000000, 'POST',
                '{"resourceType":"Patient","id":"p2","meta":{"versionId":"1","lastUpdated":"2023-11-14T22:13:20Z"},"name":[{"family":"Jones"}]}');
        INSERT INTO idx_string (res_seq, resource_type, param, grp, normalized, exact)
        VALUES (1, 'Patient', 'family', NULL, 'smith', 'Smith'),
               (2, 'Patient', 'family', NULL, 'jones', 'Jones'),
               (1, 'Patient', 'phonetic', NULL, 'smith', 'Smith'),
               (2, 'Patient', 'phonetic', NULL, 'jones', 'Jones');
        INSERT INTO idx_token (res_seq, resource_type, param, grp, system, code, text)
        VALUES (1, 'Patient', 'identifier', NULL, 'urn:s', '1', NULL),
               (1, 'Patient', 'identifier', NULL, 'urn:s', '2', NULL),
               (2, 'Patient', 'identifier', NULL, 'urn:s', '3', NULL);
        INSERT INTO idx_reference (res_seq, resource_type, param, grp, target_type, target_id, url, version, ident_system, ident_value)
        VALUES (1, 'Patient', 'organization', NULL, 'Organization', 'o1', NULL, NULL, NULL, NULL);
        "#,
    )
    .expect("version 2 rows");
}

fn ids(store: &SqliteStore, query: &str) -> Vec<String> {
    let params: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            (name.to_string(), value.to_string())
        })
        .collect();
    let parsed = parse_search(Some("Patient"), &params).expect("parses");
    let page = store
        .search(
            &RequestContext::system("migration-test", "req-1"),
            &parsed.query,
        )
        .expect("searches");
    page.matches.iter().map(|m| m.id.clone()).collect()
}

/// Runs SQL on the database file directly, as another program (or a damaged disk) might.
fn execute(path: &std::path::Path, sql: &str) {
    Connection::open(path)
        .expect("opens")
        .execute_batch(sql)
        .expect("runs");
}

fn query_number(path: &std::path::Path, sql: &str) -> i64 {
    Connection::open(path)
        .expect("opens")
        .query_row(sql, [], |r| r.get(0))
        .expect("answers")
}

fn schema_version(path: &std::path::Path) -> i64 {
    query_number(
        path,
        "SELECT value FROM schema_info WHERE key = 'schema_version'",
    )
}

#[test]
fn a_version_2_store_is_migrated_and_answers_the_same_searches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    version_2_store(&path);

    let store = SqliteStore::open(&SqliteOptions::new(&path)).expect("migrates");
    assert_eq!(ids(&store, "family=smi"), ["p1"]);
    assert_eq!(ids(&store, "identifier=urn:s|2"), ["p1"]);
    assert_eq!(ids(&store, "identifier=urn:s|1&family=smith"), ["p1"]);
    assert_eq!(ids(&store, "organization=Organization/o1"), ["p1"]);
    assert_eq!(ids(&store, "identifier=urn:s|3"), ["p2"]);
    assert_eq!(
        ids(&store, "family:missing=false&_sort=family"),
        ["p2", "p1"]
    );
    assert_eq!(ids(&store, "phonetic=Smyth"), ["p1"]);
    drop(store);
    assert_eq!(schema_version(&path), 4);

    // Opening again finds version 4 and changes nothing.
    let store = SqliteStore::open(&SqliteOptions::new(&path)).expect("opens again");
    assert_eq!(ids(&store, "identifier=urn:s|1"), ["p1"]);
}

#[test]
fn a_version_3_store_gets_phonetic_codes_for_every_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    drop(SqliteStore::open(&SqliteOptions::new(&path)).expect("creates"));
    // What version 3 wrote: two versions of p1 (the first superseded) and p2, each with its
    // names in the `phonetic` rows, and a Practitioner.
    execute(
        &path,
        r#"
        UPDATE schema_info SET value = 3 WHERE key = 'schema_version';
        INSERT INTO resource_version (seq, resource_type, id, version_id, last_updated, method, body, superseded_seq)
        VALUES (1, 'Patient', 'p1', 1, 1700000000000, 'POST',
                '{"resourceType":"Patient","id":"p1","name":[{"family":"Smith","given":["Ann"],"prefix":["Dr"]}]}', 3),
               (2, 'Patient', 'p2', 1, 1700000000000, 'POST',
                '{"resourceType":"Patient","id":"p2","name":[{"family":"Jones"}]}', NULL),
               (3, 'Patient', 'p1', 2, 1700000000001, 'PUT',
                '{"resourceType":"Patient","id":"p1","name":[{"family":"Smith-Jones","given":["Ann"]}]}', NULL),
               (4, 'Practitioner', 'd1', 1, 1700000000000, 'POST',
                '{"resourceType":"Practitioner","id":"d1","name":[{"family":"Okafor"}]}', NULL);
        INSERT INTO idx_string (res_seq, param, ord, resource_type, grp, normalized, exact)
        VALUES (1, 'family', 1, 'Patient', NULL, 'smith', 'Smith'),
               (1, 'phonetic', 2, 'Patient', NULL, 'smith', 'Smith'),
               (1, 'phonetic', 3, 'Patient', NULL, 'ann', 'Ann'),
               (1, 'phonetic', 4, 'Patient', NULL, 'dr', 'Dr'),
               (2, 'phonetic', 1, 'Patient', NULL, 'jones', 'Jones'),
               (3, 'family', 1, 'Patient', NULL, 'smith-jones', 'Smith-Jones'),
               (3, 'phonetic', 2, 'Patient', NULL, 'smith-jones', 'Smith-Jones'),
               (3, 'phonetic', 3, 'Patient', NULL, 'ann', 'Ann'),
               (4, 'phonetic', 1, 'Practitioner', NULL, 'okafor', 'Okafor');
        "#,
    );
    let store = SqliteStore::open(&SqliteOptions::new(&path)).expect("migrates");
    assert_eq!(schema_version(&path), 4);
    // The current version of p1 is found by either of its surnames' sounds; p2 by its own.
    assert_eq!(ids(&store, "phonetic=Smyth"), ["p1"]);
    assert_eq!(ids(&store, "phonetic=Jonas&_sort=_id"), ["p1", "p2"]);
    assert_eq!(ids(&store, "phonetic=Smith-Jones"), ["p1"]);
    assert_eq!(ids(&store, "phonetic=smith"), ["p1"]);
    // The old rows are gone: names no longer match as strings, and prefixes not at all.
    assert_eq!(ids(&store, "phonetic=Dr"), Vec::<String>::new());
    assert_eq!(
        query_number(
            &path,
            "SELECT count(*) FROM idx_string WHERE param = 'phonetic' AND normalized = lower(normalized)"
        ),
        0
    );
    // Every version was re-indexed, the superseded one and the other type's too.
    assert_eq!(
        query_number(
            &path,
            "SELECT count(*) FROM idx_string WHERE param = 'phonetic' AND res_seq = 1"
        ),
        2,
        "Smith and Ann, not Dr"
    );
    assert_eq!(
        query_number(
            &path,
            "SELECT count(*) FROM idx_string WHERE resource_type = 'Practitioner' AND normalized = 'O216'"
        ),
        1
    );
    assert_eq!(
        query_number(
            &path,
            "SELECT count(*) FROM idx_string WHERE param = 'family'"
        ),
        2,
        "other parameters' rows are untouched"
    );
}

#[test]
fn a_migration_that_fails_leaves_the_version_2_store_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    version_2_store(&path);
    // A damaged store: one of the index tables the migration copies is gone.
    execute(&path, "DROP TABLE idx_uri");
    let err = SqliteStore::open(&SqliteOptions::new(&path)).expect_err("the migration fails");
    assert!(
        err.to_string().contains("idx_uri"),
        "the error names what is missing: {err}"
    );
    assert_eq!(schema_version(&path), 2);
    // The version 2 table and its rows are still there.
    assert_eq!(query_number(&path, "SELECT count(*) FROM idx_token"), 3);
}

#[test]
fn a_store_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    version_2_store(&path);
    execute(
        &path,
        "UPDATE schema_info SET value = 99 WHERE key = 'schema_version'",
    );
    let err = SqliteStore::open(&SqliteOptions::new(&path)).expect_err("refused");
    assert!(
        err.to_string().contains("schema version 99"),
        "the error names the version: {err}"
    );
}
