#!/usr/bin/env bash
# Validates everything in deploy/ that can be validated on a machine without containers, then
# runs the loopback end-to-end test (deploy/e2e/e2e.py). Called from .ci/run.
#
#   townhall --print-config  on every shipped townhall.toml (unknown keys are errors)
#   systemd-analyze verify   systemd/townhall.service
#   caddy validate           proxy/Caddyfile;   nginx -t   proxy/nginx/townhall.conf
#   docker-compose config    compose/docker-compose.yml with .env.example
#   kubernetes-validate      kubernetes/**.yaml (and kubectl kustomize, where kubectl exists)
#   promtool check config / check rules   observability/ (and the dashboard's queries)
#   check_metrics.py         every metric the dashboard and the rules use, on a fresh node
#   deploy/e2e/e2e.py        Caddy, then nginx, in front of the node(s) + Prometheus: Q&A,
#                            X-Forwarded-For, WHIP/WHEP, targets, rules, dashboard queries
#
# Installs what it needs when missing: caddy, nginx, prometheus, docker-compose, redis-server
# (apt) and a venv in target/deploy-venv (pip: deploy/requirements.txt). Uses
# $TOWNHALL_BIN or target/debug/townhall (built if missing). Only loopback traffic.
# DEPLOY_SKIP_E2E=1 skips the end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> deploy: %s\n' "$*"; }
fail() { printf 'deploy: FAILED: %s\n' "$*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------------------------
missing=()
command -v caddy >/dev/null || missing+=(caddy)
command -v nginx >/dev/null || missing+=(nginx)
command -v promtool >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (apt)"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  # Packages such as nginx and prometheus start their service on install; not here.
  guard=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$guard" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi

venv=target/deploy-venv
stamp=$venv/.requirements.sha256
want=$(cat deploy/requirements.txt tests/interop/requirements.txt | sha256sum | cut -d' ' -f1)
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "installing deploy/requirements.txt into $venv (pip)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
  echo "$want" >"$stamp"
fi
py=$root/$venv/bin/python

bin=${TOWNHALL_BIN:-$root/target/debug/townhall}
if [ ! -x "$bin" ]; then
  step "building the townhall binary"
  cargo build --locked --bin townhall
  bin=$root/target/debug/townhall
fi

tmp=$(mktemp -d -t townhall-deploy-validate-XXXXXX)
node_pid=
cleanup() {
  if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- townhall's own settings files ------------------------------------------------------------
step "townhall --print-config on the shipped settings"
"$py" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["townhall.toml"])' \
  deploy/kubernetes/configmap.yaml >"$tmp/kubernetes.toml"
for toml in deploy/systemd/townhall.toml deploy/compose/townhall.toml "$tmp/kubernetes.toml"; do
  "$bin" --config "$toml" --data-dir "$tmp/print-config" --print-config >/dev/null \
    || fail "$toml is not a valid townhall configuration"
  echo "ok: $toml"
done

# --- systemd ----------------------------------------------------------------------------------
step "systemd-analyze verify"
# verify wants ExecStart's binary to exist: point it at the one just built.
sed "s#/usr/local/bin/townhall#$bin#" deploy/systemd/townhall.service >"$tmp/townhall.service"
systemd-analyze verify "$tmp/townhall.service"
echo "ok: deploy/systemd/townhall.service"

# --- proxies ----------------------------------------------------------------------------------
step "caddy validate"
TOWNHALL_DOMAIN=moede.kommune.dk TOWNHALL_UPSTREAMS="127.0.0.1:9 127.0.0.1:10" CADDY_ADMIN=off \
  XDG_DATA_HOME="$tmp/caddy" XDG_CONFIG_HOME="$tmp/caddy" \
  caddy validate --config deploy/proxy/Caddyfile --adapter caddyfile >"$tmp/caddy.log" 2>&1 \
  || { cat "$tmp/caddy.log"; fail "caddy validate"; }
echo "ok: deploy/proxy/Caddyfile"

step "nginx -t"
mkdir -p "$tmp/nginx"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=moede.kommune.dk \
  -keyout "$tmp/nginx/privkey.pem" -out "$tmp/nginx/fullchain.pem" 2>/dev/null
sed -e "s#/etc/ssl/townhall/#$tmp/nginx/#g; s#/var/log/nginx/#$tmp/nginx/#g" \
  deploy/proxy/nginx/townhall.conf >"$tmp/nginx/townhall.conf"
cat >"$tmp/nginx/nginx.conf" <<EOF
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
  access_log $tmp/nginx/access.log;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  include $tmp/nginx/townhall.conf;
}
EOF
nginx -t -q -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -e "$tmp/nginx/error.log"
echo "ok: deploy/proxy/nginx/townhall.conf"

# --- compose ----------------------------------------------------------------------------------
step "docker-compose config"
for profile in "" observability; do
  docker-compose --env-file deploy/compose/.env.example -f deploy/compose/docker-compose.yml \
    ${profile:+--profile "$profile"} config -q
done
echo "ok: deploy/compose/docker-compose.yml"

# --- kubernetes -------------------------------------------------------------------------------
step "kubernetes-validate"
mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
"$venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
echo "ok: ${#manifests[@]} manifests"
if command -v kubectl >/dev/null; then
  kubectl kustomize deploy/kubernetes >/dev/null
  echo "ok: kubectl kustomize deploy/kubernetes"
fi

# --- observability ----------------------------------------------------------------------------
step "promtool"
promtool check config deploy/observability/prometheus.yml
promtool check rules deploy/observability/alerts.yml
"$py" deploy/observability/check_metrics.py promtool-rules "$tmp/dashboard-rules.yml"
promtool check rules "$tmp/dashboard-rules.yml" >/dev/null \
  || { promtool check rules "$tmp/dashboard-rules.yml"; fail "a dashboard query does not parse"; }
echo "ok: every query of deploy/observability/grafana/townhall.json parses"

step "metric names on a fresh node"
"$bin" serve --listen 127.0.0.1:0 --data-dir "$tmp/node" --media-bind-ip 127.0.0.1 \
  --media-udp-port 0 --media-tcp-port 0 >"$tmp/node.out" 2>"$tmp/node.log" &
node_pid=$!
for _ in $(seq 200); do
  grep -q '"addr"\|addr=' "$tmp/node.log" 2>/dev/null && break
  kill -0 "$node_pid" 2>/dev/null || { cat "$tmp/node.log"; fail "the node did not start"; }
  sleep 0.1
done
url=$(sed -n 's#^townhall listening on \(http://[^ ]*\).*#\1#p' "$tmp/node.out")
[ -n "$url" ] || { cat "$tmp/node.out" "$tmp/node.log"; fail "no address from the node"; }
"$py" deploy/observability/check_metrics.py exported "$url" --fresh
kill "$node_pid"
wait "$node_pid" 2>/dev/null || true
node_pid=

# --- end to end -------------------------------------------------------------------------------
if [ "${DEPLOY_SKIP_E2E:-}" = 1 ]; then
  step "end-to-end test skipped (DEPLOY_SKIP_E2E=1)"
else
  for proxy in caddy nginx; do
    step "end-to-end test on loopback, through $proxy"
    E2E_PROXY=$proxy TOWNHALL_BIN="$bin" "$py" deploy/e2e/e2e.py
  done
fi
echo "deploy: all checks passed"
