//! Keeps `tests/security_cases.md` honest: it must list every case of the security catalog
//! (`shared/notes/security.md` §2) exactly once, every test it names must exist as a test
//! function in the named file and be about that case (the case ID in its name or its body),
//! a case without a test must say why, and at least 150 cases must be covered by a test that
//! runs (not `#[ignore]`d). Deleting or renaming a referenced test makes this fail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The catalog's case IDs in its order (§2, 174 cases), so the count check runs even where the
/// catalog itself is not checked out.
const CATALOG: &[&str] = &[
    "AUTHZ-01", "AUTHZ-02", "AUTHZ-03", "AUTHZ-04", "AUTHZ-05", "AUTHZ-06", "AUTHZ-07", "AUTHZ-08",
    "AUTHZ-09", "AUTHZ-10", "AUTHZ-11", "AUTHZ-12", "AUTHZ-13", "AUTHZ-14", "ALG-01", "ALG-02",
    "ALG-03", "ALG-04", "ALG-05", "ALG-06", "ALG-07", "ALG-08", "ALG-09", "ALG-10", "ALG-11",
    "ALG-12", "ALG-13", "ALG-14", "HDR-01", "HDR-02", "HDR-03", "HDR-04", "HDR-05", "HDR-06",
    "HDR-07", "HDR-08", "HDR-09", "HDR-10", "HDR-11", "HDR-12", "HDR-13", "HDR-14", "CLM-01",
    "CLM-02", "CLM-03", "CLM-04", "CLM-05", "CLM-06", "CLM-07", "CLM-08", "CLM-09", "CLM-10",
    "CLM-11", "CLM-12", "CLM-13", "CLM-14", "CLM-15", "CLM-16", "CLM-17", "CLM-18", "CLM-19",
    "CLM-20", "CLM-21", "CLM-22", "JWKS-01", "JWKS-02", "JWKS-03", "JWKS-04", "JWKS-05", "JWKS-06",
    "JWKS-07", "JWKS-08", "JWKS-09", "JWKS-10", "JWKS-11", "JWKS-12", "ISS-01", "ISS-02", "ISS-03",
    "ISS-04", "ISS-05", "ISS-06", "ISS-07", "OPQ-01", "OPQ-02", "OPQ-03", "OPQ-04", "OPQ-05",
    "OPQ-06", "OPQ-07", "OPQ-08", "OPQ-09", "OPQ-10", "OPQ-11", "RT-01", "RT-02", "RT-03", "RT-04",
    "RT-05", "RT-06", "RT-07", "RT-08", "BAS-01", "BAS-02", "BAS-03", "BAS-04", "BAS-05", "BAS-06",
    "BAS-07", "RBAC-01", "RBAC-02", "RBAC-03", "RBAC-04", "RBAC-05", "RBAC-06", "RBAC-07",
    "RBAC-08", "MINT-01", "MINT-02", "MINT-03", "MINT-04", "MINT-05", "MINT-06", "MINT-07",
    "MINT-08", "CACHE-01", "CACHE-02", "CACHE-03", "CACHE-04", "CACHE-05", "CACHE-06", "CACHE-07",
    "CACHE-08", "CACHE-09", "CACHE-10", "CACHE-11", "CACHE-12", "CACHE-13", "AVAIL-01", "AVAIL-02",
    "AVAIL-03", "AVAIL-04", "AVAIL-05", "AVAIL-06", "AVAIL-07", "AVAIL-08", "AVAIL-09", "AVAIL-10",
    "AVAIL-11", "AVAIL-12", "NGX-01", "NGX-02", "NGX-03", "NGX-04", "NGX-05", "NGX-06", "NGX-07",
    "NGX-08", "NGX-09", "NGX-10", "ERR-01", "ERR-02", "ERR-03", "ERR-04", "LOG-01", "LOG-02",
    "LOG-03", "LOG-04", "LOG-05", "LOG-06", "LOG-07", "LOG-08", "LOG-09", "LOG-10",
];

/// Cases that must be covered by a test that runs.
const MIN_COVERED: usize = 150;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `ABC-12`: upper-case letters, a dash, two digits.
fn is_id(s: &str) -> bool {
    let Some((prefix, num)) = s.split_once('-') else {
        return false;
    };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && num.len() == 2
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// Rows `| n | ID | ... |` of a markdown table, as their cells.
fn id_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("| "))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.len() >= 2 && is_id(&cells[1]))
        .collect()
}

/// Every case ID a text mentions, with `CLM-08/09/10` meaning three IDs.
fn mentioned_ids(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    for (i, _) in text.match_indices('-') {
        let start = b[..i]
            .iter()
            .rposition(|c| !c.is_ascii_uppercase())
            .map_or(0, |p| p + 1);
        if start == i || (start > 0 && b[start - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let prefix = &text[start..i];
        let mut j = i + 1;
        while j + 2 <= b.len() && b[j].is_ascii_digit() && b[j + 1].is_ascii_digit() {
            out.push(format!("{prefix}-{}", &text[j..j + 2]));
            if j + 2 < b.len() && b[j + 2] == b'/' {
                j += 3;
            } else {
                break;
            }
        }
    }
    out
}

/// A test function found in a file: its attributes and body.
struct TestFn {
    attrs: String,
    body: String,
}

fn find_test(file: &Path, name: &str) -> Result<TestFn, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let needle = format!("fn {name}(");
    let at = lines
        .iter()
        .position(|l| l.contains(&needle))
        .ok_or_else(|| format!("no `fn {name}` in {}", file.display()))?;
    let mut attrs = Vec::new();
    let mut i = at;
    while i > 0 && lines[i - 1].trim_start().starts_with("#[") {
        i -= 1;
        attrs.push(lines[i]);
    }
    let attrs = attrs.join("\n");
    if !attrs.contains("#[test]") && !attrs.contains("#[tokio::test") {
        return Err(format!("`{name}` in {} is not a test", file.display()));
    }
    let end = lines[at..]
        .iter()
        .position(|l| *l == "}")
        .map_or(lines.len(), |p| at + p);
    Ok(TestFn {
        attrs,
        body: lines[at..end].join("\n"),
    })
}

#[test]
fn every_catalog_case_is_listed_once_with_a_test_or_a_reason() {
    let table = std::fs::read_to_string(repo().join("tests/security_cases.md")).unwrap();
    let rows = id_rows(&table);

    // (a) Every catalog ID exactly once, numbered as in the catalog.
    assert_eq!(CATALOG.len(), 174);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for row in &rows {
        *seen.entry(row[1].as_str()).or_default() += 1;
    }
    for (n, id) in CATALOG.iter().enumerate() {
        assert_eq!(
            seen.get(id).copied().unwrap_or(0),
            1,
            "{id} must appear exactly once"
        );
        let row = rows.iter().find(|r| r[1] == *id).unwrap();
        assert_eq!(row[0], (n + 1).to_string(), "{id} has the catalog's number");
    }
    for id in seen.keys() {
        assert!(CATALOG.contains(id), "{id} is not a catalog case");
    }

    // The embedded list is the catalog's own (where the shared notes are checked out).
    let notes = repo().join("../shared/notes/security.md");
    match std::fs::read_to_string(&notes) {
        Ok(text) => {
            let ids: Vec<String> = id_rows(&text).into_iter().map(|r| r[1].clone()).collect();
            assert_eq!(
                ids, CATALOG,
                "the catalog changed: update CATALOG and the table"
            );
        }
        Err(_) => println!(
            "note: {} not found; checked against the embedded list of {} cases",
            notes.display(),
            CATALOG.len()
        ),
    }

    // (b) Every referenced test exists and is about its case; (c) enough of them run.
    let mut covered = 0;
    let mut problems = Vec::new();
    for row in &rows {
        let (id, tests, note) = (&row[1], &row[2], row.get(3).map_or("", String::as_str));
        if tests == "—" || tests.is_empty() {
            if !(note.starts_with("pending: depends on ") || note.starts_with("not applicable: ")) {
                problems.push(format!(
                    "{id}: no test and no `pending:`/`not applicable:` reason"
                ));
            }
            continue;
        }
        let (mut runs, mut broken) = (false, false);
        for reference in tests.split(", ") {
            let Some((file, name)) = reference.split_once("::") else {
                problems.push(format!("{id}: `{reference}` is not file::name"));
                broken = true;
                continue;
            };
            match find_test(&repo().join(file), name) {
                Err(e) => {
                    problems.push(format!("{id}: {e}"));
                    broken = true;
                }
                Ok(t) => {
                    let snake = id.to_ascii_lowercase().replace('-', "_");
                    let about = name.starts_with(&format!("{snake}_"))
                        || mentioned_ids(&t.body).iter().any(|m| m == id);
                    if !about {
                        problems.push(format!(
                            "{id}: `{reference}` neither is named after nor mentions {id}"
                        ));
                    }
                    if !t.attrs.contains("#[ignore") {
                        runs = true;
                    }
                }
            }
        }
        if runs {
            covered += 1;
        } else if !broken && !note.starts_with("bug:") {
            problems.push(format!(
                "{id}: every test is ignored; the note must start with `bug:`"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!(
        "{covered} of {} cases covered by a running test",
        CATALOG.len()
    );
    assert!(
        covered >= MIN_COVERED,
        "only {covered} cases covered; at least {MIN_COVERED} required"
    );
}

#[test]
fn case_mentions_are_parsed_like_the_test_labels() {
    assert_eq!(
        mentioned_ids("\"CLM-08/09/10 iss\""),
        ["CLM-08", "CLM-09", "CLM-10"]
    );
    assert_eq!(mentioned_ids("(RBAC-05: a dotted key)"), ["RBAC-05"]);
    assert!(mentioned_ids("x-auth-roles, ES256-1, aBC-12").is_empty());
    assert!(is_id("AUTHZ-06") && !is_id("AUTHZ-6") && !is_id("Authz-06"));
}
