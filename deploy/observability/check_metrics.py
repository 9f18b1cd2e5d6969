#!/usr/bin/env python3
"""Checks that every metric the Grafana dashboard and the alert rules query is one the server
really exports.

    check_metrics.py names                       # the metric names the queries use
    check_metrics.py exported URL... [--fresh]   # each name is in every node's /metrics
    check_metrics.py promtool-rules FILE         # the dashboard's queries as a rule file, so
                                                 # `promtool check rules FILE` parses them
    check_metrics.py query PROMETHEUS_URL [--require-data]
                                                 # each dashboard query and rule expression runs
                                                 # on a live Prometheus without an error (and
                                                 # each dashboard query has data)

Labelled counters (`*_total{label}`) appear in /metrics only after their first increment, so a
freshly started node lacks them. With --fresh, names in LAZY may be missing (they are listed);
without it every name must be there: deploy/e2e runs it after it drove real traffic (commands,
a refused command, WHIP/WHEP, a stray datagram) through both nodes.
"""

import json
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana" / "townhall.json"
RULES = HERE / "alerts.yml"

# Series Prometheus records itself for every scrape; no server exports them.
FROM_PROMETHEUS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

# Labelled counters: registered at start, but exported only once a label value was counted.
LAZY = {
    "townhall_hub_commands_total": "a command was received",
    "townhall_hub_rejections_total": "a command or frame was refused",
    "townhall_media_keyframe_requests_total": "the relay asked a publisher for a keyframe",
    "townhall_media_dropped_datagrams_total": "the relay dropped a datagram",
}

# Values the dashboard's variables take when its queries are run outside Grafana.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan", "atan2",
    # aggregation operators, which may be followed by `by (…)` instead of `(`
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}


def dashboard_queries():
    """Every PromQL expression of the dashboard: panel targets and the variables' queries."""
    dash = json.loads(DASHBOARD.read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dash.get("panels", []))
    for var in dash.get("templating", {}).get("list", []):
        definition = var.get("definition") or ""
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", definition)
        if m:
            found.append(m.group(1))
        elif var.get("type") == "query":
            raise SystemExit(f"dashboard variable {var.get('name')}: cannot read {definition!r}")
    return found


def rule_queries():
    doc = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def with_variables(expr):
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    if "$" in expr:
        raise SystemExit(f"unknown dashboard variable in {expr!r}")
    return expr


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (inside {} or by/without/on/ignoring/group_*(…)) or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", text
    )
    text = re.sub(r"(?<![a-zA-Z0-9_:])\d[0-9a-zA-Z_.]*", "0", text)  # numbers, durations
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


def all_names():
    names = set()
    for expr in dashboard_queries() + rule_queries():
        names |= metric_names(with_variables(expr))
    return names


def exported(url):
    text = urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10).read().decode()
    return {
        re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def check_exported(urls, fresh):
    """Every name in every node's /metrics; a labelled counter (LAZY) may be missing on a
    node where its event did not happen, but must be on one of them unless `fresh`."""
    wanted = all_names() - FROM_PROMETHEUS
    if not wanted:
        raise SystemExit("no metric names found in the dashboard and the rules")
    have = {url: exported(url) for url in urls}
    seen_anywhere = set().union(*have.values())
    bad = []
    for url, names in have.items():
        bad += [f"{url}: {n}" for n in sorted(wanted - names) if n not in LAZY]
    lazy_missing = sorted(n for n in wanted & set(LAZY) if n not in seen_anywhere)
    for name in lazy_missing:
        if fresh:
            print(f"metrics: {name} not exported yet (appears once {LAZY[name]})")
        else:
            bad.append(f"no node: {name} (appears once {LAZY[name]})")
    for item in bad:
        print(f"metrics: used by the dashboard or the rules but not exported: {item}")
    if not bad:
        mode = " (fresh nodes: labelled counters may be missing)" if fresh else ""
        print(f"metrics: all {len(wanted)} names used by the dashboard and the rules are exported "
              f"by the {len(urls)} node(s){mode}")
    return not bad


def write_promtool_rules(path):
    rules = [
        {"record": f"townhall:dashboard_query:{i}", "expr": with_variables(expr)}
        for i, expr in enumerate(dashboard_queries())
    ]
    Path(path).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return True


def may_be_empty(expr):
    """A query may rightly have no data when it selects label values of a labelled counter
    that need not have occurred (e.g. dropped datagrams for `relay_busy`)."""
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
        labels = {x.split("=")[0].strip().rstrip("!~") for x in m.group(2).split(",") if x.strip()}
        if m.group(1) in LAZY and labels - {"job", "instance"}:
            return True
    return False


def query_prometheus(base):
    """Runs every query on a live Prometheus: none may fail; empty results are listed."""
    ok, empty = True, []
    queries = [("dashboard", with_variables(q)) for q in dashboard_queries()]
    queries += [("rule", q) for q in rule_queries()]
    for source, expr in queries:
        url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            reply = json.load(urllib.request.urlopen(url, timeout=10))
        except urllib.error.HTTPError as e:
            reply = json.load(e)
        if reply.get("status") != "success":
            ok = False
            print(f"prometheus: {source} query failed: {expr}\n  {reply.get('error')}")
        elif not reply["data"]["result"] and source == "dashboard" and not may_be_empty(expr):
            empty.append(expr)
    print(f"prometheus: {len(queries)} queries (dashboard and rules) ran without error; "
          + (f"{len(empty)} dashboard queries have no data yet" if empty else
             "every dashboard query has data (but those for label values that did not occur)")
          + ("" if ok else "; some FAILED"))
    return ok, empty


def main(argv):
    if len(argv) >= 1 and argv[0] == "names":
        print("\n".join(sorted(all_names())))
        return 0
    if len(argv) >= 2 and argv[0] == "exported":
        urls = [a for a in argv[1:] if a != "--fresh"]
        return 0 if check_exported(urls, "--fresh" in argv) else 1
    if len(argv) == 2 and argv[0] == "promtool-rules":
        return 0 if write_promtool_rules(argv[1]) else 1
    if len(argv) >= 2 and argv[0] == "query":
        ok, empty = query_prometheus(argv[1])
        for expr in empty:
            print(f"  no data: {expr}")
        return 0 if ok and not (empty and "--require-data" in argv) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
