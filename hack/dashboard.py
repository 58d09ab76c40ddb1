#!/usr/bin/env python3
"""Writes config/monitoring/keda-dashboard.json: the KEDA dashboard in the Grafana subset the OpenShift
console renders (schemaVersion-14 rows; graph, singlestat and table panels; string variable queries).
Edit this script, run it, review the diff. A Rust test checks the result keeps to the console subset and
uses only metrics that exist."""
import json, os

NS = 'exported_namespace=~"$namespace"'
panel_id = 0

def target(expr, legend='', table=False):
    t = {"expr": expr, "legendFormat": legend, "refId": "A", "intervalFactor": 1}
    if table:
        t.update({"format": "table", "instant": True})
    return t

def graph(title, exprs, unit='short', span=6, description=''):
    global panel_id
    panel_id += 1
    targets = []
    for i, (expr, legend) in enumerate(exprs):
        t = target(expr, legend)
        t["refId"] = chr(ord('A') + i)
        targets.append(t)
    return {"id": panel_id, "type": "graph", "title": title, "description": description, "span": span,
            "datasource": None, "targets": targets, "lines": True, "linewidth": 1, "fill": 1,
            "legend": {"show": True, "values": False}, "tooltip": {"shared": True, "sort": 2},
            "xaxis": {"show": True, "mode": "time"},
            "yaxes": [{"format": unit, "min": 0, "show": True}, {"format": "short", "show": False}]}

def singlestat(title, expr, span=3, fmt='none', description=''):
    global panel_id
    panel_id += 1
    return {"id": panel_id, "type": "singlestat", "title": title, "description": description, "span": span,
            "datasource": None, "targets": [target(expr)], "valueName": "current", "format": fmt,
            "colorValue": False, "sparkline": {"show": False}}

def table(title, expr, columns, span=6, description=''):
    global panel_id
    panel_id += 1
    styles = [{"pattern": "Time", "type": "hidden"}]
    styles += [{"pattern": c, "type": "string", "alias": a} for c, a in columns]
    styles += [{"pattern": "Value", "type": "number", "decimals": 0, "alias": "value"}, {"pattern": "/.*/", "type": "hidden"}]
    return {"id": panel_id, "type": "table", "title": title, "description": description, "span": span,
            "datasource": None, "targets": [target(expr, table=True)], "styles": styles, "transform": "table",
            "sort": {"col": 0, "desc": False}}

rows = [
    {"title": "KEDA health", "panels": [
        singlestat("KedaController ready", "max(keda_controller_ready)", description="1 when cma-operator reports the installation Ready."),
        singlestat("KEDA operator pods up", 'sum(up{job="keda-operator"})'),
        singlestat("Metrics server pods up", 'sum(up{job="keda-metrics-apiserver"})'),
        singlestat("Webhook pods up", 'sum(up{job="keda-admission-webhooks"})'),
    ]},
    {"title": "Scalers", "panels": [
        graph("Active scalers", [(f'sum by (exported_namespace, scaledObject, scaler) (keda_scaler_active{{{NS}}})', "{{exported_namespace}}/{{scaledObject}} {{scaler}}")],
              description="1 while a scaler reports activity (the workload is scaled above its idle replicas)."),
        graph("Metric values", [(f'sum by (exported_namespace, scaledObject, metric) (keda_scaler_metrics_value{{{NS}}})', "{{exported_namespace}}/{{scaledObject}} {{metric}}")],
              description="The value each trigger feeds to the HPA."),
        graph("Scaler latency", [(f'max by (exported_namespace, scaledObject, scaler) (keda_scaler_metrics_latency_seconds{{{NS}}})', "{{exported_namespace}}/{{scaledObject}} {{scaler}}")], unit="s",
              description="Time a scaler took to read its metric from the event source."),
        graph("Scaler errors per second", [(f'sum by (exported_namespace, scaledObject, scaler) (rate(keda_scaler_detail_errors_total{{{NS}}}[5m]))', "{{exported_namespace}}/{{scaledObject}} {{scaler}}")],
              description="Failed metric reads; see the KedaScalerErrors alert."),
    ]},
    {"title": "ScaledObjects and ScaledJobs", "panels": [
        graph("ScaledObject errors per second", [(f'sum by (exported_namespace, scaledObject) (rate(keda_scaled_object_errors_total{{{NS}}}[5m]))', "{{exported_namespace}}/{{scaledObject}}")]),
        graph("ScaledJob errors per second", [(f'sum by (exported_namespace, scaledJob) (rate(keda_scaled_job_errors_total{{{NS}}}[5m]))', "{{exported_namespace}}/{{scaledJob}}")]),
        graph("Scale loop latency", [(f'max by (exported_namespace, type, resource) (keda_internal_scale_loop_latency_seconds{{{NS}}})', "{{exported_namespace}}/{{resource}} ({{type}})")], unit="s",
              description="Delay of KEDA's polling loop behind its schedule; growing values mean the operator is overloaded."),
        table("Paused ScaledObjects", f'keda_scaled_object_paused{{{NS}}} == 1', [("exported_namespace", "namespace"), ("scaledObject", "ScaledObject")]),
        graph("Registered resources", [('sum by (type) (keda_resource_registered_total)', "{{type}}")]),
        graph("Registered triggers", [('sum by (type) (keda_trigger_registered_total)', "{{type}}")]),
    ]},
    {"title": "Admission webhooks", "panels": [
        graph("Validations per second", [('sum by (action) (rate(keda_webhook_scaled_object_validations_total[5m]))', "{{action}}")]),
        graph("Refusals per second", [('sum by (exported_namespace, reason) (rate(keda_webhook_scaled_object_validation_errors_total[5m]))', "{{exported_namespace}} {{reason}}")],
              description="ScaledObjects refused by KEDA's validation."),
    ]},
    {"title": "cma-operator", "panels": [
        graph("Reconciles per second", [('sum by (result) (rate(keda_controller_reconcile_total[5m]))', "{{result}}")]),
        graph("Reconcile duration (p95)", [('histogram_quantile(0.95, sum by (le) (rate(keda_controller_reconcile_duration_seconds_bucket[5m])))', "p95")], unit="s"),
        graph("Drift corrections per hour", [('sum by (kind) (increase(keda_controller_drift_corrections_total[1h]))', "{{kind}}")],
              description="Managed objects changed or deleted outside the operator and restored."),
        table("Component readiness", 'keda_controller_component_ready', [("component", "component")]),
        singlestat("Managed objects", "max(keda_controller_managed_objects)", span=3),
        graph("Days until certificates expire", [('min by (secret, key) (keda_controller_certificate_expiry_timestamp_seconds - time()) / 86400', "{{secret}} {{key}}")], span=9),
    ]},
]

dashboard = {
    "title": "KEDA / Autoscaling",
    "uid": "cma-keda",
    "description": "KEDA installed by cma-operator: scaler activity and errors, ScaledObjects, webhooks and the operator.",
    "tags": ["keda", "autoscaling", "cma-operator"],
    "schemaVersion": 14,
    "version": 1,
    "editable": False,
    "timezone": "browser",
    "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [{
        "name": "namespace", "label": "Namespace", "type": "query", "datasource": None,
        "query": "label_values(keda_scaler_active, exported_namespace)",
        "refresh": 2, "includeAll": True, "allValue": ".*", "multi": False, "sort": 1,
        "current": {"text": "All", "value": "$__all"}, "options": [], "hide": 0,
    }]},
    "rows": [dict(row, collapse=False, height="250px", showTitle=True) for row in rows],
}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
with open(os.path.join(root, "config/monitoring/keda-dashboard.json"), "w") as f:
    json.dump(dashboard, f, indent=2, sort_keys=True)
    f.write("\n")
