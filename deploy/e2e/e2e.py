#!/usr/bin/env python3
"""End-to-end test of the deploy/ files on loopback, with real processes:

    Caddy (deploy/proxy/Caddyfile, TLS from Caddy's internal CA) or nginx (E2E_PROXY=nginx)
      -> townhall nodes (two sharing Redis when the binary has --redis, else one on SQLite)
    Prometheus (deploy/observability/prometheus.yml and alerts.yml) scraping every node

and through the proxy only:
  1. the organizer creates and starts a meeting (HTTPS);
  2. a citizen and a moderator complete the Q&A flow over WebSockets (qa_client.mjs, Node),
     including a resume by offset after a dropped connection; with two nodes they land on
     different nodes;
  3. X-Forwarded-For: the proxy replaces what a client sends, so per-IP limits hold (a
     negative control sends the same requests to a node directly, where they pass);
  4. an aiortc WHIP publisher and WHEP viewer (the classes of tests/interop) reach the relay
     through the proxy, and the viewer decodes the picture and the sound;
  5. Prometheus shows every node up, loads the alert rules with no evaluation error, and runs
     every dashboard query and rule expression without an error;
  6. every metric name the dashboard and the rules use is in the nodes' /metrics;
  7. every node stops cleanly on SIGTERM.

Nothing leaves 127.0.0.1. Needs caddy, prometheus, node (20+), redis-server (two-node mode),
and a Python with aiortc, av and PyYAML (deploy/validate.sh makes that venv and runs this).
Environment: TOWNHALL_BIN (default target/debug/townhall), E2E_PROXY (caddy, the default, or
nginx: deploy/proxy/nginx/townhall.conf with a self-signed certificate), E2E_TIMEOUT (seconds
per wait, default 30), E2E_KEEP=1 keeps the temp dir with every log. Exit code 0 on success.
"""

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
import aiortc_whip_whep as interop  # noqa: E402  (the interop test's WHIP/WHEP clients)

TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "30"))
BIN = os.environ.get("TOWNHALL_BIN") or str(ROOT / "target" / "debug" / "townhall")
OBSERVABILITY = ROOT / "deploy" / "observability"
MAX_SESSIONS_PER_IP = 3
PROXY = os.environ.get("E2E_PROXY", "caddy")


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def step(message):
    print(f"e2e: {message}", flush=True)


def wait_until(what, predicate, timeout=TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, headers=None, cafile=None):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    import ssl

    context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15, context=context) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Processes:
    """Every process started here, stopped in reverse order at the end."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.started = []

    def start(self, name, argv, env=None, stdout=None):
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen(
            argv,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            env={**os.environ, **(env or {})},
            cwd=self.tmp,
        )
        self.started.append((name, proc))
        return proc

    def log(self, name, tail=40):
        try:
            lines = (self.tmp / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def stop_all(self):
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Node:
    def __init__(self, procs, name, config, extra, env):
        self.name = name
        data = procs.tmp / name
        argv = [
            BIN, "serve", "--config", str(config), "--listen", "127.0.0.1:0",
            "--data-dir", str(data), "--media-bind-ip", "127.0.0.1",
            "--media-udp-port", "0", "--media-tcp-port", "0", *extra,
        ]
        self.proc = procs.start(name, argv, env=env, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().strip()
        m = re.match(r"townhall listening on \S+", line)
        check(m, f"{name} did not start: {line!r}\n{procs.log(name)}")
        # The config's public_url is the proxy's; the node's own address is in its log.
        self.base = None
        self.procs = procs

    def find_address(self):
        found = re.search(r'"addr":"(127\.0\.0\.1:\d+)"', self.procs.log(self.name, tail=200))
        if found:
            self.base = f"http://{found.group(1)}"
        return self.base

    def metrics(self):
        return urllib.request.urlopen(self.base + "/metrics", timeout=10).read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "killed after 15 s"


def has_redis_flag():
    out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
    return "--redis" in out


def start_nodes(procs, tmp, proxy_url, admin_token):
    """One node on SQLite, or two sharing a Redis of their own when the binary can."""
    config = tmp / "townhall.toml"
    config.write_text(
        f'public_url = "{proxy_url}"\n'
        "trust_proxy = true\n"
        'durability = "normal"\n'
        "[media]\n"
        f"max_sessions_per_ip = {MAX_SESSIONS_PER_IP}\n"
    )
    env = {"TOWNHALL_ADMIN_TOKEN": admin_token, "TOWNHALL_LOG": "info", "TOWNHALL_LOG_FORMAT": "json"}
    extra = []
    count = 1
    if has_redis_flag():
        port = free_port()
        procs.start("redis", [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp),
            "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
        ])
        wait_until("redis", lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True)
        extra = ["--redis", f"redis://127.0.0.1:{port}/"]
        count = 2
    # Every node must sign citizens' sessions with the same key (a citizen who reconnects to
    # another node is still the same person): the same session.key in each data dir.
    key = secrets.token_bytes(32)
    for i in range(count):
        (tmp / f"node{i + 1}").mkdir()
        (tmp / f"node{i + 1}" / "session.key").write_bytes(key)
    nodes = [Node(procs, f"node{i + 1}", config, extra, env) for i in range(count)]
    for node in nodes:
        wait_until(f"{node.name}'s address in its log", node.find_address)
        wait_until(f"{node.name} ready", lambda n=node: request("GET", n.base + "/readyz")[0] == 200)
    return nodes


def start_caddy(procs, tmp, nodes, https_port):
    http_port = free_port()
    env = {
        "TOWNHALL_DOMAIN": "127.0.0.1",
        "TOWNHALL_UPSTREAMS": " ".join(n.base.removeprefix("http://") for n in nodes),
        "CADDY_HTTPS_PORT": str(https_port),
        "CADDY_HTTP_PORT": str(http_port),
        "CADDY_ADMIN": "off",
        "XDG_DATA_HOME": str(tmp / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp / "caddy-config"),
        "HOME": str(tmp),
    }
    procs.start("caddy", [
        "caddy", "run", "--config", str(ROOT / "deploy" / "proxy" / "Caddyfile"), "--adapter", "caddyfile",
    ], env=env)
    cafile = tmp / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    url = f"https://127.0.0.1:{https_port}"
    wait_until("Caddy's internal CA", cafile.exists)
    wait_until("the proxy to serve the pages over TLS", lambda: request("GET", url + "/", cafile=str(cafile))[0] == 200)
    return url, str(cafile)


def start_nginx(procs, tmp, nodes, https_port):
    """nginx with deploy/proxy/nginx/townhall.conf, edited as an operator would: the nodes'
    addresses, the ports, a self-signed certificate for 127.0.0.1, paths under tmp."""
    d = tmp / "nginx"
    d.mkdir()
    subprocess.run([
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(d / "privkey.pem"), "-out", str(d / "fullchain.pem"),
    ], check=True, capture_output=True)
    text = (ROOT / "deploy" / "proxy" / "nginx" / "townhall.conf").read_text()
    addrs = [n.base.removeprefix("http://") for n in nodes]

    def sub(pattern, replacement, count_wanted):
        nonlocal text
        text, n = re.subn(pattern, replacement, text, flags=re.M)
        check(n == count_wanted, f"nginx/townhall.conf: {pattern!r} matched {n} times, want {count_wanted}")

    general = "".join(f"    server {a} max_fails=2 fail_timeout=10s;\n" for a in addrs)
    media = f"    server {addrs[0]} max_fails=2 fail_timeout=10s;\n" + "".join(f"    server {a} backup;\n" for a in addrs[1:])
    sub(r"(upstream townhall \{\n    least_conn;\n)    server .*\n    # server .*\n", lambda m: m.group(1) + general, 1)
    sub(r"(upstream townhall_media \{\n)    server .*\n    # server .*\n", lambda m: m.group(1) + media, 1)
    sub(r"^    listen \[::\]:.*\n", "", 2)
    sub(r"^    listen 80;", f"    listen 127.0.0.1:{free_port()};", 1)
    sub(r"^    listen 443 ssl http2;", f"    listen 127.0.0.1:{https_port} ssl http2;", 1)
    sub(r"server_name moede\.kommune\.dk;", "server_name 127.0.0.1;", 2)
    sub(r"/etc/ssl/townhall/", f"{d}/", 2)
    sub(r"/var/log/nginx/", f"{d}/", 1)
    (d / "townhall.conf").write_text(text)
    (d / "nginx.conf").write_text(
        f"pid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\nevents {{}}\nhttp {{\n"
        f"  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n"
        f"  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
        f"  include {d}/townhall.conf;\n}}\n"
    )
    procs.start("nginx", ["nginx", "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")])
    url = f"https://127.0.0.1:{https_port}"
    cafile = str(d / "fullchain.pem")
    wait_until("the proxy to serve the pages over TLS", lambda: request("GET", url + "/", cafile=cafile)[0] == 200)
    return url, cafile


def start_prometheus(procs, tmp, nodes):
    """The shipped config and rules, copied with 1 s intervals (15 s in the file) and the
    nodes written to its file-discovery targets."""
    prom = tmp / "prometheus"
    (prom / "targets").mkdir(parents=True)
    text = (OBSERVABILITY / "prometheus.yml").read_text()
    text, n = re.subn(r"(scrape_interval|evaluation_interval): 15s", r"\1: 1s", text)
    check(n == 2, "prometheus.yml: expected scrape_interval and evaluation_interval of 15s")
    (prom / "prometheus.yml").write_text(text)
    shutil.copy(OBSERVABILITY / "alerts.yml", prom / "alerts.yml")
    targets = [{"targets": [n.base.removeprefix("http://") for n in nodes], "labels": {}}]
    (prom / "targets" / "townhall.json").write_text(json.dumps(targets))
    port = free_port()
    procs.start("prometheus", [
        "prometheus", f"--config.file={prom / 'prometheus.yml'}", f"--storage.tsdb.path={prom / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ])
    return f"http://127.0.0.1:{port}"


def prometheus_api(base, path):
    return json.load(urllib.request.urlopen(base + path, timeout=10))


def organizer(proxy, cafile, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    status, _, body = request("POST", proxy + "/api/meetings", json.dumps({"title": "Borgermøde (deploy e2e)"}).encode(), headers, cafile)
    check(status == 201, f"create meeting through the proxy: {status} {body[:300]!r}")
    created = json.loads(body)
    check(created["viewer_url"].startswith(proxy + "/m/"), f"links do not use public_url: {created['viewer_url']}")
    status, _, body = request("POST", f"{proxy}/api/meetings/{created['id']}/start", b"", headers, cafile)
    check(status == 200, f"start meeting: {status} {body[:300]!r}")
    return created


def qa_flow(proxy, cafile, created, nodes):
    moderator_token = created["moderator_url"].split("#", 1)[1]
    # Node 22+ has WebSocket built in; Node 20 behind a flag.
    builtin = subprocess.run(["node", "-e", "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)"]).returncode == 0
    flags = [] if builtin else ["--experimental-websocket", "--no-warnings"]
    argv = [
        "node", *flags, str(ROOT / "deploy" / "e2e" / "qa_client.mjs"),
        # `=`: a token may start with "-".
        f"--base={proxy}", f"--meeting={created['id']}", f"--moderator-token={moderator_token}",
        "--nodes=" + ",".join(n.base for n in nodes),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=4 * TIMEOUT,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": cafile, "E2E_WAIT_MS": str(int(TIMEOUT * 1000))},
    )
    check(done.returncode == 0, f"Q&A flow through the proxy failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


async def whep_offer():
    session = interop.Viewer("xff-probe")
    sdp = await session.offer()
    await session.close()
    return sdp


def forwarded_for_holds(proxy, cafile, meeting, node):
    """More WHEP sessions than media.max_sessions_per_ip, each claiming another address in
    X-Forwarded-For. Through the proxy the claim is replaced by the real address, so the last
    one is refused; sent straight to a node (which trusts X-Forwarded-For), all pass: the
    check can fail, and the proxy is what keeps the limit."""
    sdp = asyncio.run(whep_offer()).encode()

    def burst(base, ca):
        statuses, locations = [], []
        for i in range(MAX_SESSIONS_PER_IP + 1):
            headers = {"Content-Type": "application/sdp", "X-Forwarded-For": f"198.51.100.{i + 1}"}
            status, h, body = request("POST", f"{base}/api/meetings/{meeting}/whep", sdp, headers, ca)
            statuses.append((status, json.loads(body).get("code") if status >= 400 else None))
            if status == 201:
                locations.append(h["Location"])
        for location in locations:
            request("DELETE", base + location, None, {}, ca)
        return statuses

    through_proxy = burst(proxy, cafile)
    want = [(201, None)] * MAX_SESSIONS_PER_IP + [(429, "too_many_sessions")]
    check(through_proxy == want, f"X-Forwarded-For through the proxy: {through_proxy}, want {want}")
    direct = burst(node.base, None)
    check(all(s == (201, None) for s in direct),
          f"control (straight to the node, trust_proxy): {direct}, want all 201")
    return through_proxy


async def media_through_proxy(proxy, created):
    """aiortc publishes over WHIP and watches over WHEP, both through the proxy; the viewer
    must decode the moving picture and the sine. Then a stray datagram to the relay's port."""
    meeting = created["id"]
    studio_token = created["studio_url"].split("#", 1)[1]
    server = type("ProxyServer", (), {"base": proxy})()
    publisher = await interop.publish(server, meeting, studio_token, "VP8")
    viewer = interop.Viewer("viewer")
    results = []
    try:
        reply = await viewer.post(f"{proxy}/api/meetings/{meeting}/whep")
        answer = reply.text()
        await interop.wait_for("the WHEP viewer to connect", interop.connected_or_failed(viewer))
        await interop.watch("VP8", publisher, [viewer], results)
        # A datagram from an address the relay does not know: counted as dropped.
        port = int(re.search(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer).group(1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"not a STUN, DTLS or RTP packet", ("127.0.0.1", port))
        await viewer.delete()
        await publisher.delete(studio_token)
    finally:
        await viewer.close()
        await publisher.close()
        for t in viewer.tasks:
            t.cancel()
    return results[0]


def metrics_checker(*args):
    return subprocess.run([sys.executable, str(OBSERVABILITY / "check_metrics.py"), *args], capture_output=True, text=True)


def run(procs, tmp):
    check(os.access(BIN, os.X_OK), f"no townhall binary at {BIN} (cargo build --bin townhall)")
    admin_token = secrets.token_urlsafe(24)
    # The proxy's address must be known before the nodes start (their public_url): pick it.
    https_port = free_port()
    proxy_url = f"https://127.0.0.1:{https_port}"
    nodes = start_nodes(procs, tmp, proxy_url, admin_token)
    step(f"{len(nodes)} node(s) ready: {', '.join(n.base for n in nodes)}"
         + (" (sharing Redis)" if len(nodes) > 1 else " (SQLite; this binary has no --redis)"))
    prometheus = start_prometheus(procs, tmp, nodes)

    if PROXY == "nginx":
        proxy, cafile = start_nginx(procs, tmp, nodes, https_port)
        step(f"nginx serves {proxy} with a self-signed certificate")
    else:
        proxy, cafile = start_caddy(procs, tmp, nodes, https_port)
        step(f"Caddy serves {proxy} with its internal CA")
    status, _, _ = request("GET", proxy + "/metrics", cafile=cafile)
    check(status == 404, f"the proxy serves /metrics to the internet: {status}")

    created = organizer(proxy, cafile, admin_token)
    qa = qa_flow(proxy, cafile, created, nodes)
    step(f"Q&A flow over WebSockets through the proxy: question {qa['question']} asked at offset "
         f"{qa['asked_offset']}, answered at {qa['answered_offset']}; resumed with {qa['resumed_with']}; "
         f"connections per node {qa['connections_per_node']}")

    statuses = forwarded_for_holds(proxy, cafile, created["id"], nodes[0])
    step(f"X-Forwarded-For replaced by the proxy: {[s for s, _ in statuses]} "
         f"(max_sessions_per_ip = {MAX_SESSIONS_PER_IP}); straight to a node the same claims pass")

    # The interop clients use urllib's default TLS context, which reads SSL_CERT_FILE.
    os.environ["SSL_CERT_FILE"] = cafile
    codec, name, video, audio, ttff = asyncio.run(media_through_proxy(proxy, created))
    step(f"WHIP and WHEP through the proxy: the viewer decoded {video} {codec} video and {audio} "
         f"audio frames, first frame after {ttff:.2f} s")

    def all_up():
        active = prometheus_api(prometheus, "/api/v1/targets")["data"]["activeTargets"]
        up = [t for t in active if t["labels"]["job"] == "townhall" and t["health"] == "up"]
        return up if len(up) == len(nodes) else None

    up = wait_until("Prometheus to scrape every node", all_up)
    step(f"Prometheus targets up: {', '.join(t['labels']['instance'] for t in up)}")

    def rules_evaluated():
        groups = prometheus_api(prometheus, "/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") and
                                      not r["lastEvaluation"].startswith("0001") for r in rules) else None

    rules = wait_until("Prometheus to evaluate the alert rules", rules_evaluated)
    bad = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    check(not bad, f"alert rules with evaluation errors: {bad}")
    firing = [r["name"] for r in rules if r.get("state") == "firing"]
    step(f"{len(rules)} alert rules loaded and evaluated without error (firing: {firing or 'none'})")

    # Dashboard and rule queries on the live Prometheus; the metric names on the live nodes.
    # Rates need two scrapes in their window: ask until every dashboard query has data.
    last = [None]

    def queries_answered():
        last[0] = metrics_checker("query", prometheus, "--require-data")
        return last[0].returncode == 0

    try:
        wait_until("every dashboard query to have data", queries_answered, interval=1)
    finally:
        step(last[0].stdout.strip() + last[0].stderr.strip() if last[0] else "no query ran")
    done = metrics_checker("exported", *[n.base for n in nodes])
    check(done.returncode == 0, done.stdout + done.stderr)
    step(done.stdout.strip())

    for node in nodes:
        code = node.stop()
        check(code == 0, f"{node.name} exit code after SIGTERM: {code}\n{procs.log(node.name)}")
    step("every node stopped cleanly on SIGTERM")

    def node_down_alerts():
        alerts = prometheus_api(prometheus, "/api/v1/alerts")["data"]["alerts"]
        down = {a["labels"]["instance"] for a in alerts if a["labels"]["alertname"] == "TownhallNodeDown"}
        return down if down == {n.base.removeprefix("http://") for n in nodes} else None

    down = wait_until("TownhallNodeDown for every stopped node", node_down_alerts)
    step(f"TownhallNodeDown raised (pending, `for: 1m`) for {', '.join(sorted(down))}")


def main():
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="townhall-deploy-e2e-"))
    procs = Processes(tmp)
    ok = False
    try:
        run(procs, tmp)
        ok = True
    except Failure as e:
        print(f"e2e FAILED: {e}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        import traceback

        traceback.print_exc()
        print(f"e2e FAILED: {e!r}", file=sys.stderr)
    finally:
        procs.stop_all()
    if not ok:
        for name, _ in procs.started:
            print(f"---- {name} log (tail) ----\n{procs.log(name)}", file=sys.stderr)
    keep = not ok or os.environ.get("E2E_KEEP") == "1"
    if keep:
        print(f"e2e: logs kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"deploy e2e ({PROXY}) {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
