//! Every hostile shape against its budget (asserting the error, which the budget reaches long before time
//! or memory matter), and the pre-scan against serde_yaml itself.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::scan::{Allowance, Scanned, scan};
use super::*;

const KC: Limits = Limits::KEDA_CONTROLLER;
const MANIFEST: Limits = Limits::MANIFEST;

const KC_HEAD: &str =
    "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata:\n  name: keda\nspec:\n  operator:\n";

/// One anchored map of `keys` entries, used `uses` times (the 60 KB document that took render to 1.6 GB).
fn anchored_map_used_many_times(keys: usize, uses: usize) -> String {
    let map: Vec<String> = (0..keys).map(|i| format!("k{i}: v{i}")).collect();
    format!("{KC_HEAD}    podAnnotations: &a {{{}}}\n    args: [{}]\n", map.join(", "), vec!["*a"; uses].join(","))
}

/// The classic: nine levels, each using the one below ten times (10^9 scalars).
fn billion_laughs() -> String {
    let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        text.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 10].join(", ")));
    }
    text
}

fn unlimited() -> Allowance {
    Allowance { depth: usize::MAX, tokens: usize::MAX, documents: usize::MAX, aliases: true }
}

#[test]
fn aliases_are_refused_in_a_kedacontroller_naming_the_line() {
    let err = documents::<Value>(&anchored_map_used_many_times(200, 20_000), KC).unwrap_err();
    assert_eq!(
        err,
        YamlError::Alias { at: Location { line: 8, column: 12 }, name: "a".into(), subject: "a KedaController" }
    );
    assert_eq!(err.to_string(), "line 8 column 12: YAML aliases (*a) are not accepted in a KedaController");
}

#[test]
fn an_alias_bomb_stops_at_the_node_budget_where_aliases_are_accepted() {
    let err = documents::<Value>(&anchored_map_used_many_times(1_000, 20_000), MANIFEST).unwrap_err();
    assert!(matches!(err, YamlError::TooManyNodes { limit: 150_000, at: Some(_), .. }), "{err}");
    assert!(err.to_string().contains("more than 150000 nodes, the limit for a manifest file"), "{err}");
    // Nested aliases reach serde_yaml's own limit on replays first.
    let err = documents::<Value>(&billion_laughs(), MANIFEST).unwrap_err();
    assert_eq!(
        err.to_string(),
        "aliases are used too often in a manifest file (serde_yaml replays at most 100 aliases per node)"
    );
    // A few uses are fine, and each use counts what it repeats.
    let mut budget = Budget::new(MANIFEST);
    let value: Value = budget.document("a: &a [1, 2, 3]\nb: *a\nc: *a\n").unwrap();
    assert_eq!(value["c"], serde_json::json!([1, 2, 3]));
    assert_eq!(budget.nodes_spent(), 1 + 3 * (1 + 4));
}

#[test]
fn deep_flow_nesting_is_refused_before_parsing() {
    let text = format!("{KC_HEAD}    args: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let err = documents::<Value>(&text, KC).unwrap_err();
    // Three block levels (the document, spec, operator) and 61 flow levels fill the 64: the 62nd `[`, in
    // column 72, is one too deep.
    assert_eq!(
        err,
        YamlError::TooDeep { at: Some(Location { line: 7, column: 72 }), limit: 64, subject: "a KedaController" }
    );
    assert_eq!(err.to_string(), "line 7 column 72: nesting deeper than 64 levels, the limit for a KedaController");
    let err = documents::<Value>(&"{a: ".repeat(50_000), MANIFEST).unwrap_err();
    assert!(matches!(err, YamlError::TooDeep { limit: 100, .. }), "{err}");
}

#[test]
fn deep_block_nesting_is_refused() {
    let mappings: String = (0..1_000).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
    let err = documents::<Value>(&mappings, KC).unwrap_err();
    assert_eq!(err.location().map(|l| l.line), Some(65), "{err}");
    let sequences = format!("{}x\n", "- ".repeat(1_000));
    assert!(matches!(documents::<Value>(&sequences, KC), Err(YamlError::TooDeep { .. })));
    // A sequence at its key's indentation opens no indentation level; the counting deserializer sees it.
    let indentless: String =
        (0..40).map(|i| format!("{0}k:\n{0}-\n", "  ".repeat(i))).collect::<String>() + &"  ".repeat(40) + "x\n";
    let err = documents::<Value>(&indentless, KC).unwrap_err();
    assert!(matches!(err, YamlError::TooDeep { limit: 64, at: Some(_), .. }), "{err}");
}

#[test]
fn a_huge_input_is_refused_before_it_is_scanned() {
    let text = format!("{KC_HEAD}    args:\n{}", "      - 'x'\n".repeat(200_000));
    let err = documents::<Value>(&text, KC).unwrap_err();
    assert_eq!(err, YamlError::TooLarge { bytes: text.len(), limit: 3 * MIB / 2, subject: "a KedaController" });
    assert_eq!(err.to_string(), "the input is larger than 1.5 MiB, the limit for a KedaController");
    let err = documents::<Value>(&"#".repeat(4 << 20), MANIFEST).unwrap_err();
    assert_eq!(err.to_string(), "the input is larger than 3 MiB, the limit for a manifest file");
}

#[test]
fn many_documents_are_refused() {
    let err = documents::<Value>(&"---\n".repeat(100_000), KC).unwrap_err();
    assert_eq!(
        err,
        YamlError::TooManyDocuments {
            at: Some(Location { line: 17, column: 1 }),
            limit: 16,
            subject: "a KedaController"
        }
    );
}

#[test]
fn many_nodes_are_refused_before_parsing() {
    let text = format!("[{}0]", "0,".repeat(1_000_000));
    let err = documents::<Value>(&text, MANIFEST).unwrap_err();
    assert!(matches!(err, YamlError::TooManyNodes { at: Some(Location { line: 1, .. }), .. }), "{err}");
}

#[test]
fn a_syntax_error_ends_the_read_at_once_naming_its_line() {
    // serde_yaml's document iterator yields this error forever; the read stops at the first.
    let err = documents::<Value>("a: 1\nb: {c: 2\nd: 3\n---\ne: 4\n", MANIFEST).unwrap_err();
    assert!(matches!(err, YamlError::Parse { at: Some(Location { line: 3, .. }), .. }), "{err:?}");
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn brackets_in_strings_comments_and_scalars_open_nothing() {
    let deep = "[{".repeat(100);
    let text = format!(
        "a: '{deep}''{deep}'\nb: \"{deep}\\\"{deep}\"\n# {deep}\nc: x {deep}\n  {deep}\n\
         d: |\n  {deep}\n\n  {deep}\ne: >-\n    {deep}\nf: [x, '{deep}', \"{deep}\"] # {deep}\n"
    );
    let value: Value = from_str(&text, KC).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value["a"], format!("{deep}'{deep}"));
    assert_eq!(value["c"], format!("x {deep} {deep}"));
    assert_eq!(value["d"], format!("{deep}\n\n{deep}\n"));
    assert_eq!(value["f"][2], deep);
}

#[test]
fn a_shared_budget_is_spent_across_inputs() {
    let mut budget = Budget::new(Limits { max_nodes: 10, ..MANIFEST });
    budget.documents::<Value>("[1, 2, 3]").unwrap();
    budget.documents::<Value>("[1, 2, 3]").unwrap();
    assert_eq!(budget.nodes_spent(), 8);
    let err = budget.documents::<Value>("[1, 2, 3]").unwrap_err();
    assert!(matches!(err, YamlError::TooManyNodes { limit: 10, .. }), "{err}");
}

#[test]
fn typed_reads_keep_serde_yamls_messages_and_lines() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Release {
        version: String,
    }
    let err = from_str::<Release>("version: 1.0.0\nextra: 2\n", MANIFEST).unwrap_err();
    assert!(err.to_string().contains("unknown field `extra`"), "{err}");
    assert_eq!(err.location().map(|l| l.line), Some(2));
    let err = from_str::<Value>("a: 1\n---\nb: 2\n", MANIFEST).unwrap_err();
    assert!(err.to_string().contains("more than one document"), "{err}");
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn every_yaml_file_of_the_repository_reads_as_serde_yaml_reads_it() {
    let mut files = Vec::new();
    for dir in ["config", "bundle", "manifests"] {
        yaml_files(&repository().join(dir), &mut files);
    }
    assert!(files.len() > 20, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected: Vec<Value> =
            serde_yaml::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect();
        let read: Vec<Value> = documents(&text, MANIFEST).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(read, expected, "{}", file.display());
        let scanned = scan(&text, &unlimited()).unwrap();
        assert_eq!(scanned.documents, expected.len(), "{}", file.display());
    }
}

#[test]
fn line_breaks_and_byte_order_marks_are_libyamls() {
    // CR LF and the Unicode line and paragraph separators end comments, as in libyaml.
    for newline in ["\r\n", "\r", "\u{2028}", "\u{2029}", "\u{85}"] {
        let text = format!("# comment{newline}a: [[1]]{newline}");
        assert_eq!(scan(&text, &unlimited()).unwrap().depth, 3, "{newline:?}");
    }
    let scanned = scan("\u{feff}a: [b]\n", &unlimited()).unwrap();
    assert_eq!((scanned.depth, scanned.documents), (2, 1));
    // The mark counts as a column, so a second one is text, and so is the bracket after it.
    assert_eq!(scan("\u{feff}\u{feff}{", &unlimited()).unwrap().depth, 0);
    let value: Value = from_str("\u{feff}a: [b]\n", MANIFEST).unwrap();
    assert_eq!(value, serde_json::json!({"a": ["b"]}));
}

#[test]
fn a_document_marker_inside_a_flow_collection_keeps_the_block_indentation() {
    // libyaml closes no block collection at `---` inside `[`, so the plain scalar `a` ends at its line and
    // the brackets on the next line are flow collections (a scan that closed them would read the brackets
    // as more of `a`). Found by comparing the scan with libyaml's tokens on random texts.
    assert_eq!(scan(": [\n---\n]a\n]{{{{", &unlimited()).unwrap().depth, 5);
}

/// Nesting depth and nodes of a parsed document, counted as the budget counts them.
fn measure(value: &serde_yaml::Value) -> (usize, usize) {
    match value {
        serde_yaml::Value::Sequence(items) => {
            items.iter().map(measure).fold((1, 1), |(d, n), (cd, cn)| (d.max(cd + 1), n + cn))
        }
        serde_yaml::Value::Mapping(map) => map.iter().fold((1, 1), |(d, n), (k, v)| {
            let ((kd, kn), (vd, vn)) = (measure(k), measure(v));
            (d.max(kd + 1).max(vd + 1), n + kn + vn)
        }),
        serde_yaml::Value::Tagged(tagged) => measure(&tagged.value),
        _ => (0, 1),
    }
}

fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// JSON values whose strings hold every character that means something to YAML.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[\\[\\]{}#'\",:&*!|>?%@` a-z\\-\\\\\n\t\r\u{2028}\u{85}]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map("[a-z\\[{#:' ]{1,5}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Pieces of YAML syntax that random texts are made of.
const FRAGMENTS: &[&str] = &[
    "- ",
    "? ",
    ": ",
    ":",
    "-",
    "?",
    "a",
    "b: ",
    "k:\n",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ",",
    "'x",
    "'",
    "''",
    "\"",
    "\\",
    "\\\"",
    "#",
    " #c",
    " ",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    "|",
    ">",
    "|2",
    ">-",
    "|+\n",
    "&a ",
    "*a",
    "*a ",
    "!t ",
    "!!str ",
    "---",
    "--- ",
    "...",
    "\n---\n",
    "%YAML 1.1\n",
    "\t",
    "\r\n",
    ":x",
    "-x",
    "?x",
    "\u{2028}",
    "\u{85}",
    "\u{feff}",
    "x y",
    "é",
];

/// Every document serde_yaml reads from `text`, or `None` at the first error.
fn parse_all(text: &str) -> Option<Vec<serde_yaml::Value>> {
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        out.push(serde_yaml::Value::deserialize(document).ok()?);
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Flow collections (the nesting that costs libyaml quadratic time) are counted exactly, through
    /// strings full of brackets, quotes, escapes and line separators, at the top and under block levels.
    #[test]
    fn flow_nesting_is_counted_exactly(value in json()) {
        let json = serde_json::to_string(&value).unwrap();
        let depth = json_depth(&value);
        prop_assert_eq!(scan(&json, &unlimited()).unwrap().depth, depth);
        let under_blocks = format!("a:\n  b: {json}\n- - {json}\n");
        let block = scan(&under_blocks, &unlimited()).unwrap().depth;
        prop_assert_eq!(block, if depth == 0 { 2 } else { 2 + depth });
    }

    /// serde_yaml's own output reads back through the budget unchanged, and the pre-scan never finds it
    /// deeper or longer than it is.
    #[test]
    fn block_yaml_reads_back_and_scans_within_its_measure(value in json()) {
        let text = serde_yaml::to_string(&value).unwrap();
        let read: Value = from_str(&text, MANIFEST).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&read, &value);
        let parsed: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let (depth, nodes) = measure(&parsed);
        let scanned = scan(&text, &unlimited()).unwrap();
        prop_assert!(scanned.depth <= depth, "scanned {} > {depth}:\n{text}", scanned.depth);
        prop_assert!(scanned.tokens <= 2 * nodes, "{} tokens for {nodes} nodes:\n{text}", scanned.tokens);
    }

    /// On any text the pre-scan ends (one pass), and wherever serde_yaml reads the text it finds no more
    /// depth, tokens or documents than the text has: it never refuses what it should let through.
    #[test]
    fn the_prescan_never_overstates_what_serde_yaml_reads(text in prop_oneof![
        "[\\[\\]{}#'\",:&*!|>?%@` a-z0-9\\-\\\\.\n\t\r\u{2028}\u{feff}]{0,80}",
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40).prop_map(|f| f.concat()),
    ]) {
        let scanned: Scanned = scan(&text, &unlimited()).unwrap();
        if let Some(parsed) = parse_all(&text) {
            if !scanned.aliases {
                let (depth, nodes) = parsed.iter().map(measure).fold((0, 0), |(d, n), (pd, pn)| (d.max(pd), n + pn));
                prop_assert!(scanned.depth <= depth, "scanned {} > {depth}: {text:?}", scanned.depth);
                prop_assert!(scanned.tokens <= 2 * nodes, "{} tokens for {nodes} nodes: {text:?}", scanned.tokens);
            }
            prop_assert_eq!(scanned.documents, parsed.len(), "{:?}", text);
        }
    }
}
