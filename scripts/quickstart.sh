#!/usr/bin/env bash
# Set tain up in a local venv, create a site in ./demo/site, start it, and push an
# example directory into a public repository. Prints the URLs to open.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${TAIN_PORT:-8080}"
DEMO="${TAIN_DEMO_DIR:-demo}"
SOURCE="${1:-examples/hello}"

if [ ! -x .venv/bin/tain ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e .
fi
export PATH="$PWD/.venv/bin:$PATH"

if [ ! -f "$DEMO/site/tain.toml" ]; then
    mkdir -p "$DEMO"
    tain init "$DEMO/site" --listen "127.0.0.1:$PORT" | tee "$DEMO/init.txt"
fi
TOKEN="$(awk '/admin token/ {print $NF}' "$DEMO/init.txt")"
export TAIN_SITE="http://127.0.0.1:$PORT" TAIN_TOKEN="$TOKEN"

if ! curl -sf "$TAIN_SITE/healthz" >/dev/null 2>&1; then
    nohup tain serve "$DEMO/site" > "$DEMO/serve.log" 2>&1 &
    echo $! > "$DEMO/serve.pid"
    for _ in $(seq 100); do curl -sf "$TAIN_SITE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
fi

if [ ! -f "$DEMO/console.txt" ]; then  # a password for the web console's admin sign-in
    PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
    printf '%s\n' "$PASSWORD" | tain user passwd admin --password-stdin >/dev/null
    echo "$PASSWORD" > "$DEMO/console.txt"
fi

tain repo show example >/dev/null 2>&1 || tain repo create example --public --description "quick start"
tain push "$SOURCE" --repo example --message "quick start push"

cat <<EOT

tain is running (pid $(cat "$DEMO/serve.pid" 2>/dev/null || echo '?'), log $DEMO/serve.log).
  browse:     $TAIN_SITE/example/
  a file:     curl $TAIN_SITE/example/README.txt
  checksums:  curl $TAIN_SITE/example/SHA256SUMS
  console:    $TAIN_SITE/console/  (user admin, password $(cat "$DEMO/console.txt"))
  API docs:   $TAIN_SITE/api/v1/docs
  published:  $DEMO/site/published/example  (plain files, servable by nginx or rsyncd)
Use the CLI with:
  export PATH="$PWD/.venv/bin:\$PATH" TAIN_SITE=$TAIN_SITE TAIN_TOKEN=$TOKEN
  tain log --repo example
Stop the site with: kill \$(cat $DEMO/serve.pid)
EOT
