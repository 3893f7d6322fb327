"""nginx serving tain's published tree, configured as its documentation recommends for
static files: ``sendfile``, ``tcp_nopush``, ``open_file_cache``, keep-alive, one worker
per core, no access log (tain serve logs no requests either)."""

from __future__ import annotations

from pathlib import Path

from bench.procs import LOOPBACK, Daemon, free_port, port_open, wait_until


class Nginx:
    def __init__(self, workdir: Path, root: Path, *, name: str = "nginx",
                 location: str = "location / { }") -> None:
        self.dir = workdir / name
        self.root = root
        self.location = location
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.conf = self.dir / "nginx.conf"
        self.daemon = Daemon(
            "nginx", ["nginx", "-p", f"{self.dir}/", "-c", str(self.conf)],
            log=self.dir / "nginx.out",
        )

    def config_text(self) -> str:
        d = self.dir
        return f"""daemon off;
master_process on;
worker_processes auto;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    open_file_cache max=20000 inactive=60s;
    open_file_cache_valid 60s;
    types {{ application/octet-stream bin iso; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {LOOPBACK}:{self.port};
        root {self.root};
        {self.location}
    }}
}}
"""

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config_text())
        self.daemon.start()
        wait_until(lambda: port_open(self.port), timeout=30, what="nginx")

    def stop(self) -> None:
        self.daemon.stop()
