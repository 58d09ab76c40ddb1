//! The alert rules, the recording rules and the dashboard use only metrics that exist (KEDA 2.20's or the
//! operator's own), every metric name the product documentation lists answers a query, and the dashboard
//! stays within the Grafana subset the OpenShift console renders.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use cma_operator::metrics::Metrics;
use cma_operator::render::monitoring::{ALERT_RULES, DASHBOARD};
use serde_json::Value;

/// Metric families KEDA 2.20 exposes (operator, metrics server and webhooks), as listed in KEDA-FACTS.md.
/// Counters are exposed with the `_total` suffix, histograms with `_bucket`, `_sum` and `_count`.
const KEDA_METRICS: [&str; 20] = [
    "keda_build_info",
    "keda_scaler_metrics_value",
    "keda_scaler_metrics_latency_seconds",
    "keda_scaler_active",
    "keda_scaler_detail_errors_total",
    "keda_scaled_object_paused",
    "keda_scaled_object_errors_total",
    "keda_scaled_job_errors_total",
    "keda_scaler_empty_upstream_responses_total",
    "keda_trigger_registered_total",
    "keda_resource_registered_total",
    "keda_internal_scale_loop_latency_seconds",
    "keda_cloudeventsource_events_emitted_total",
    "keda_cloudeventsource_events_queued",
    "keda_scaler_http_requests_total",
    "keda_scaler_http_request_duration_seconds_bucket",
    "keda_webhook_scaled_object_validations_total",
    "keda_webhook_scaled_object_validation_errors_total",
    // Scrape health (Prometheus) and the aggregation layer (kube-apiserver).
    "up",
    "aggregator_unavailable_apiservice",
];

/// The operator's own series, read off its exposition.
fn operator_metrics() -> BTreeSet<String> {
    let metrics = Metrics::new();
    metrics.reconciled("success", Some("apply"), std::time::Duration::from_millis(1));
    metrics.drift_corrections.get_or_create(&cma_operator::metrics::KindLabel { kind: "Deployment".into() }).inc();
    metrics
        .component_ready
        .get_or_create(&cma_operator::metrics::ComponentLabel { component: "operator".into() })
        .set(1);
    metrics.set_info("kubernetes");
    metrics
        .certificate_expiry
        .get_or_create(&cma_operator::metrics::CertificateLabels { secret: "s".into(), key: "k".into() })
        .set(1.0);
    metrics
        .encode()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label names or
/// the contents of label matchers and strings.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const NOT_METRICS: [&str; 18] = [
        "sum",
        "max",
        "min",
        "rate",
        "increase",
        "absent",
        "by",
        "without",
        "histogram_quantile",
        "time",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "bool",
        "count",
        "avg",
    ];
    let mut names = BTreeSet::new();
    let mut rest = expr;
    // Drop label matchers `{...}`, grouping `by (...)` lists and ranges `[5m]`.
    let mut cleaned = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            _ => cleaned.push(c),
        }
    }
    let cleaned = strip_groupings(&cleaned);
    for token in cleaned.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if token.is_empty() || token.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        if !NOT_METRICS.contains(&token) {
            names.insert(token.to_string());
        }
    }
    names
}

/// Removes `by (...)` / `without (...)` label lists.
fn strip_groupings(expr: &str) -> String {
    let mut out = expr.to_string();
    for keyword in ["by (", "without ("] {
        while let Some(start) = out.find(keyword) {
            let close = out[start..].find(')').map(|i| start + i + 1).unwrap_or(out.len());
            out.replace_range(start..close, " ");
        }
    }
    out
}

/// The metric names the product documentation lists under Observe -> Metrics (operator, then webhooks).
const DOCUMENTED_METRICS: [&str; 10] = [
    "keda_scaler_activity",
    "keda_scaler_metrics_value",
    "keda_scaler_metrics_latency",
    "keda_scaler_errors",
    "keda_scaler_errors_total",
    "keda_scaled_object_errors",
    "keda_resource_totals",
    "keda_trigger_totals",
    "keda_scaled_object_validation_total",
    "keda_scaled_object_validation_errors",
];

fn known() -> BTreeSet<String> {
    KEDA_METRICS.iter().map(|m| m.to_string()).chain(operator_metrics()).collect()
}

fn rules() -> Vec<Value> {
    let rules: Value = serde_yaml::from_str(ALERT_RULES).unwrap();
    rules["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect()
}

/// (alert name, expression) of every alerting rule.
fn alert_expressions() -> Vec<(String, String)> {
    rules()
        .iter()
        .filter_map(|r| Some((r["alert"].as_str()?.to_string(), r["expr"].as_str().unwrap().to_string())))
        .collect()
}

/// (recorded name, expression) of every recording rule.
fn recording_rules() -> Vec<(String, String)> {
    rules()
        .iter()
        .filter_map(|r| Some((r["record"].as_str()?.to_string(), r["expr"].as_str().unwrap().to_string())))
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).unwrap()
}

fn panels(dashboard: &Value) -> Vec<Value> {
    dashboard["rows"].as_array().unwrap().iter().flat_map(|r| r["panels"].as_array().unwrap().clone()).collect()
}

#[test]
fn the_metric_name_scanner_finds_metrics_and_only_metrics() {
    let names =
        metric_names(r#"sum by (exported_namespace, scaler) (rate(keda_scaler_detail_errors_total{job="a"}[5m])) > 0"#);
    assert_eq!(names, BTreeSet::from(["keda_scaler_detail_errors_total".to_string()]));
    let names =
        metric_names("min by (secret) (keda_controller_certificate_expiry_timestamp_seconds) - time() < 30 * 24");
    assert_eq!(names, BTreeSet::from(["keda_controller_certificate_expiry_timestamp_seconds".to_string()]));
}

#[test]
fn every_alert_uses_existing_metrics() {
    let known = known();
    for (alert, expr) in alert_expressions() {
        let used = metric_names(&expr);
        assert!(!used.is_empty(), "{alert}: no metric found in {expr}");
        for name in used {
            assert!(known.contains(&name), "{alert} uses {name}, which neither KEDA 2.20 nor the operator exposes");
        }
    }
}

#[test]
fn every_rule_is_either_an_alert_or_a_recording() {
    for rule in rules() {
        assert!(rule["alert"].is_string() != rule["record"].is_string(), "{rule}");
    }
}

#[test]
fn every_recording_rule_reads_existing_metrics() {
    let known = known();
    for (record, expr) in recording_rules() {
        let used = metric_names(&expr);
        assert!(!used.is_empty(), "{record}: no metric found in {expr}");
        for name in used {
            assert!(known.contains(&name), "{record} reads {name}, which neither KEDA 2.20 nor the operator exposes");
        }
    }
}

#[test]
fn every_documented_metric_name_answers_a_query() {
    let known = known();
    let recorded: Vec<String> = recording_rules().into_iter().map(|(record, _)| record).collect();
    for name in DOCUMENTED_METRICS {
        let exposed = known.contains(name);
        let records = recorded.iter().filter(|r| *r == name).count();
        assert!(exposed || records == 1, "{name}: documented, not exposed by KEDA 2.20 and recorded {records} times");
    }
}

#[test]
fn no_recording_rule_writes_a_name_something_already_exposes() {
    let known = known();
    let mut seen = BTreeSet::new();
    for (record, _) in recording_rules() {
        assert!(!known.contains(&record), "{record} is exposed already: a rule would write a second series");
        assert!(seen.insert(record.clone()), "{record} is recorded twice");
        assert!(DOCUMENTED_METRICS.contains(&record.as_str()), "{record} is not a documented name");
    }
}

#[test]
fn the_metrics_page_maps_every_recorded_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let page = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    for (record, expr) in recording_rules() {
        let row = page
            .lines()
            .find(|l| l.starts_with(&format!("| `{record}` |")))
            .unwrap_or_else(|| panic!("docs/metrics.md has no row for {record}"));
        assert!(row.contains(&format!("`{expr}`")), "docs/metrics.md: the row of {record} does not show `{expr}`");
    }
}

#[test]
fn every_alert_follows_the_conventions() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for rule in rules().iter().filter(|r| r["alert"].is_string()) {
        let name = rule["alert"].as_str().unwrap();
        assert!(
            name.starts_with("Keda") && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}: CamelCase Keda… name"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap();
        assert!(["critical", "warning", "info"].contains(&severity), "{name}: severity {severity}");
        for key in ["summary", "description", "runbook_url"] {
            assert!(rule["annotations"][key].as_str().is_some_and(|s| !s.is_empty()), "{name}: no {key}");
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let file = url.split("/blob/main/").nth(1).unwrap_or_else(|| panic!("{name}: runbook URL {url}"));
        assert!(root.join(file).is_file(), "{name}: runbook {file} does not exist");
    }
}

#[test]
fn every_dashboard_panel_uses_existing_metrics() {
    let known = known();
    for panel in panels(&dashboard()) {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(
                    known.contains(&name),
                    "panel {:?} uses {name}, which neither KEDA 2.20 nor the operator exposes",
                    panel["title"]
                );
            }
        }
    }
}

#[test]
fn the_dashboard_keeps_to_what_the_openshift_console_renders() {
    let d = dashboard();
    assert!(d["rows"].as_array().is_some_and(|r| !r.is_empty()), "the console needs legacy rows");
    let mut ids = BTreeSet::new();
    for panel in panels(&d) {
        let kind = panel["type"].as_str().unwrap();
        assert!(
            ["graph", "singlestat", "gauge", "table"].contains(&kind),
            "panel type {kind} is dropped by the console"
        );
        let span = panel["span"].as_u64().unwrap();
        assert!((1..=12).contains(&span), "span {span}");
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "duplicate panel id");
        if kind == "table" {
            assert!(panel["styles"].as_array().is_some_and(|s| !s.is_empty()), "tables need styles");
        }
        for axis in panel["yaxes"].as_array().into_iter().flatten() {
            let unit = axis["format"].as_str().unwrap();
            assert!(["bytes", "bps", "Bps", "pps", "ms", "s", "percentunit", "short"].contains(&unit), "unit {unit}");
        }
    }
    for variable in d["templating"]["list"].as_array().unwrap() {
        assert!(["query", "interval"].contains(&variable["type"].as_str().unwrap()));
        assert!(variable["query"].is_string(), "variable queries must be strings");
    }
    for row in d["rows"].as_array().unwrap() {
        let width: u64 = row["panels"].as_array().unwrap().iter().map(|p| p["span"].as_u64().unwrap()).sum();
        assert!(width.is_multiple_of(12), "row {:?} does not fill its width ({width})", row["title"]);
    }
}

#[test]
fn the_grafana_copy_is_the_console_dashboard_with_a_datasource() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("config/monitoring/grafana/keda-dashboard.json");
    let mut expected = dashboard();
    expected["__inputs"] = serde_json::json!([{
        "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus",
    }]);
    for row in expected["rows"].as_array_mut().unwrap() {
        for panel in row["panels"].as_array_mut().unwrap() {
            panel["datasource"] = Value::String("${DS_PROMETHEUS}".into());
        }
    }
    for variable in expected["templating"]["list"].as_array_mut().unwrap() {
        variable["datasource"] = Value::String("${DS_PROMETHEUS}".into());
    }
    let text = format!("{}\n", serde_json::to_string_pretty(&expected).unwrap());
    let mut files = cma_testkit::golden::Files::new();
    files.check(&path, &text);
    files.assert_fresh("the Grafana copy of the dashboard");
}
