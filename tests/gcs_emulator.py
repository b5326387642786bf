"""A local Cloud Storage for tests: gcp-storage-emulator plus the routing each client needs.

The emulator serves the GCS JSON API (`/storage/v1`, `/upload/storage/v1`,
`/download/storage/v1`, `/<bucket>/<object>`) over plain HTTP on 127.0.0.1.
The clients reach it as follows:

- tensorstore (Orbax's array writer): `TENSORSTORE_GCS_HTTP_URL=http://127.0.0.1:PORT`
  and `GOOGLE_AUTH_TOKEN_FOR_TESTING` (any token; the emulator does not check it).
- TensorFlow's GCS file system (`tf.io.gfile`, which `etils.epath` uses for gs://
  whenever TensorFlow is installed, and so Orbax's metadata, TFDS and the
  TensorBoard writer): its endpoints are compiled in
  (https://www.googleapis.com/storage/v1/, https://storage.googleapis.com/), with
  no setting to change them. It does honour libcurl's `HTTPS_PROXY` and
  `CURL_CA_BUNDLE`, so `TlsProxy` below answers the proxy CONNECT, terminates
  TLS with a throw-away certificate for those two host names (made with the
  `openssl` command) and pipes the plain HTTP on to the emulator. Nothing
  leaves the machine: a request to any other host is refused.
  `GOOGLE_AUTH_TOKEN_FOR_TESTING` and `NO_GCE_CHECK=true` keep its auth from
  looking for credentials or a metadata server.
- google-cloud-storage (Orbax's CheckpointManager asks it about the bucket's
  layout): `STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus

GCS_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def make_certificate(directory: str) -> tuple[str, str]:
  """A self-signed certificate for GCS_HOSTS: (cert.pem, key.pem) in `directory`."""
  cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
  san = ",".join(f"DNS:{h}" for h in GCS_HOSTS)
  subprocess.run(
    [
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      f"/CN={GCS_HOSTS[0]}",
      "-addext",
      f"subjectAltName={san}",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    check=True,
    capture_output=True,
  )
  return cert, key


def _pipe(a: socket.socket, b: socket.socket) -> None:
  """Copies bytes both ways until either side closes."""
  socks = [a, b]
  while True:
    ready, _, _ = select.select(socks, [], [], 60)
    if not ready:
      return
    for s in ready:
      # An SSL socket may hold decrypted bytes select() cannot see: drain it.
      while True:
        try:
          data = s.recv(65536)
        except ssl.SSLWantReadError:
          break
        if not data:
          return
        (b if s is a else a).sendall(data)
        if not (isinstance(s, ssl.SSLSocket) and s.pending()):
          break


class TlsProxy(socketserver.ThreadingTCPServer):
  """An HTTPS proxy that sends GCS_HOSTS to the emulator at `target` (host, port)."""

  daemon_threads = True
  allow_reuse_address = True

  def __init__(self, target: tuple[str, int], cert: str, key: str):
    self.target = target
    self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    self.context.load_cert_chain(cert, key)
    self.context.set_alpn_protocols(["http/1.1"])
    super().__init__(("127.0.0.1", 0), _ProxyHandler)

  @property
  def url(self) -> str:
    return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(socketserver.BaseRequestHandler):
  def handle(self):
    sock = self.request
    head = b""
    while b"\r\n\r\n" not in head:
      chunk = sock.recv(4096)
      if not chunk:
        return
      head += chunk
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, target, version = line.split(" ", 2)
    if method == "CONNECT":
      host = target.rsplit(":", 1)[0]
    else:
      # A plain-HTTP proxy request: "PUT http://host/path HTTP/1.1". The
      # emulator's resumable-upload Location URLs are http://<Host header>/...
      host = urllib.parse.urlsplit(target).hostname
    if host not in GCS_HOSTS:
      sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
      return
    with socket.create_connection(self.server.target) as upstream:
      if method == "CONNECT":
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with self.server.context.wrap_socket(sock, server_side=True) as tls:
          _pipe(tls, upstream)
      else:
        # The emulator answers one request per connection (HTTP/1.0), so only
        # this request line needs the origin form.
        parts = urllib.parse.urlsplit(target)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        rest = head.split(b"\r\n", 1)[1]
        upstream.sendall(f"{method} {path} {version}\r\n".encode("latin-1") + rest)
        _pipe(sock, upstream)


def _fix_emulator() -> None:
  """Deviations of the emulator from GCS that TensorFlow's client runs into
  (and a missing route, and more, below):
  an empty media upload (TensorFlow's "directory/" marker objects) fails because
  the empty body reads as None, and a chunked upload that also carries a
  Content-Length header (curl sends both for TensorFlow's resumable uploads) is
  read by Content-Length, storing the chunk framing; HTTP says Transfer-Encoding
  wins (RFC 9112 6.3). Media downloads carry no x-goog-generation header, which
  GCS always sends and tensorstore reads as the object's generation: without it
  every read has an empty generation, and OCDBT's conditional manifest write
  (Orbax's checkpoints) fails with "Malformed StorageGeneration". Patched here,
  once per process."""
  from gcp_storage_emulator import server  # pylint: disable=g-import-not-at-top
  from gcp_storage_emulator.handlers import objects  # pylint: disable=g-import-not-at-top

  if getattr(server, "_egsc_patched", False):
    return
  media_upload = objects._media_upload  # pylint: disable=protected-access
  read_raw_data = server._read_raw_data  # pylint: disable=protected-access

  def media_upload_empty(request, response, storage):
    if request.data is None:
      request._data = b""  # pylint: disable=protected-access
    return media_upload(request, response, storage)

  def read_chunked_first(handler):
    if (
      handler.headers.get("Transfer-Encoding", "").lower() == "chunked"
      and "Content-Length" in handler.headers
    ):
      del handler.headers["Content-Length"]
    return read_raw_data(handler)

  download = objects.download

  def download_with_generation(request, response, storage, *args, **kwargs):
    download(request, response, storage, *args, **kwargs)
    if response.status in (HTTPStatus.OK, HTTPStatus.PARTIAL_CONTENT):
      obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
      response["x-goog-generation"] = str(obj["generation"])
      response["x-goog-metageneration"] = str(obj["metageneration"])

  # objects.get calls the module's `download` for ?alt=media; the routes hold
  # the function itself.
  objects.download = download_with_generation
  for _, methods in server.HANDLERS:
    for method, handler in methods.items():
      if handler is download:
        methods[method] = download_with_generation

  # A resumable upload that has received nothing yet answers a status query
  # with "Range: bytes=0-0" (one byte received) where GCS sends no Range; a
  # client resuming after a lost chunk then starts at byte 1 and is refused.
  def resumable_incomplete(response, storage, upload_id, fallback_end=0):
    del fallback_end
    response.status = objects.GoogleHTTPStatus.RESUME_INCOMPLETE
    received = storage.get_resumable_byte_count(upload_id)
    if received > 0:
      response["Range"] = f"bytes=0-{received - 1}"

  objects._resumable_incomplete = resumable_incomplete  # pylint: disable=protected-access
  objects._media_upload = media_upload_empty  # pylint: disable=protected-access
  server._read_raw_data = read_chunked_first  # pylint: disable=protected-access

  # curl sends "Expect: 100-continue" with every upload and waits a second for
  # the interim answer, which an HTTP/1.0 handler never gives. Answer as
  # HTTP/1.1, still one request per connection (the server is single-threaded).
  end_headers = server.RequestHandler.end_headers

  def end_headers_close(handler):
    handler.send_header("Connection", "close")
    end_headers(handler)

  server.RequestHandler.protocol_version = "HTTP/1.1"
  server.RequestHandler.end_headers = end_headers_close

  # TensorFlow asks for a bucket's storage layout before renaming a "folder"
  # (TFDS renames its incomplete.* build folder); the emulator has no such route.
  def storage_layout(request, response, storage):
    response.json(
      {
        "kind": "storage#storageLayout",
        "bucket": request.params["bucket_name"],
        "location": "US",
        "locationType": "multi-region",
        "hierarchicalNamespace": {"enabled": False},
      }
    )

  # Generation preconditions (ifGenerationMatch; 0: "only if absent"), which
  # the emulator ignores: GCS answers 412 when they do not hold. The workdir
  # lease (egsc_jax/lease.py) relies on them. Checked when an upload starts (a
  # resumable upload's precondition, too, is checked at its first request).
  insert, delete = objects.insert, objects.delete

  def generation_matches(request, storage, object_id) -> bool:
    wanted = request.query.get("ifGenerationMatch")
    if not wanted or not object_id:
      return True
    try:
      current = str(storage.get_file_obj(request.params["bucket_name"], object_id)["generation"])
    except objects.NotFound:
      current = "0"
    return current == wanted[0]

  def failed_precondition(response):
    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json(
      {
        "error": {
          "code": 412,
          "message": "conditionNotMet",
          "errors": [{"reason": "conditionNotMet"}],
        }
      }
    )

  def insert_with_precondition(request, response, storage, *args, **kwargs):
    name = request.query.get("name", [None])[0]
    if name is None and request.query.get("uploadType") == ["multipart"]:
      name = request.data["meta"].get("name")
    if not generation_matches(request, storage, name):
      return failed_precondition(response)
    return insert(request, response, storage, *args, **kwargs)

  def delete_with_precondition(request, response, storage, *args, **kwargs):
    if not generation_matches(request, storage, request.params.get("object_id")):
      return failed_precondition(response)
    return delete(request, response, storage, *args, **kwargs)

  for _, methods in server.HANDLERS:
    for method, handler in methods.items():
      if handler is insert:
        methods[method] = insert_with_precondition
      elif handler is delete:
        methods[method] = delete_with_precondition

  server.HANDLERS = (
    (r"^/storage/v1/b/(?P<bucket_name>[-.\w]+)/storageLayout$", {server.GET: storage_layout}),
  ) + tuple(server.HANDLERS)
  server._egsc_patched = True


class Faults:
  """Transient faults injected into a fraction of the requests, as real GCS
  gives now and then: 429 (rate limit), 503 (unavailable), or the connection
  closed without an answer. All before the request is carried out, so a
  client's retry is always safe (what the clients retry is what is tested).

  Seeded: whether a request fails depends only on the seed and on the request
  itself (method, path with query, and how many identical requests came
  before), not on the order in which concurrent clients arrive. Requests whose
  names carry a time or a random id (TensorBoard event files, upload ids)
  differ between runs, and so may their faults.
  """

  KINDS = ("429", "503", "drop")

  def __init__(self):
    self.rate, self.seed = 0.0, 0
    self.seen: dict[str, int] = {}
    self.injected = {k: 0 for k in self.KINDS}
    self.requests = 0

  def set(self, rate: float, seed: int) -> None:
    self.rate, self.seed = rate, seed
    self.seen = {}
    self.injected = {k: 0 for k in self.KINDS}
    self.requests = 0

  def draw(self, method: str, path: str) -> str | None:
    """The fault for this request, or None."""
    import hashlib  # pylint: disable=g-import-not-at-top

    self.requests += 1
    if self.rate <= 0:
      return None
    request = f"{method} {path}"
    n = self.seen[request] = self.seen.get(request, 0) + 1
    digest = hashlib.sha256(f"{self.seed}|{request}|{n}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u >= self.rate:
      return None
    kind = self.KINDS[digest[8] % len(self.KINDS)]
    self.injected[kind] += 1
    return kind


FAULTS_ROUTE = "/_egsc/faults"


def _inject_faults(server_module) -> None:
  """Routes every request through `Faults` first; GET FAULTS_ROUTE?rate=&seed=
  sets them (and answers the counts so far, as JSON)."""
  faults = Faults()
  handler = server_module.RequestHandler

  def wrap(do):
    def faulty(self):
      parts = urllib.parse.urlsplit(self.path)
      if parts.path == FAULTS_ROUTE:
        query = urllib.parse.parse_qs(parts.query)
        counts = dict(requests=faults.requests, injected=dict(faults.injected))
        if "rate" in query:
          faults.set(float(query["rate"][0]), int(query.get("seed", ["0"])[0]))
        body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return
      kind = faults.draw(self.command, self.path)
      if kind == "drop":
        self.close_connection = True
        with contextlib.suppress(OSError):
          self.connection.shutdown(socket.SHUT_RDWR)
        return
      if kind is not None:
        status = int(kind)
        body = json.dumps(
          {
            "error": {
              "code": status,
              "message": "injected fault",
              "errors": [{"reason": "backendError"}],
            }
          }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
          self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
        return
      do(self)

    return faulty

  for name in ("do_GET", "do_POST", "do_DELETE", "do_PUT", "do_PATCH"):
    setattr(handler, name, wrap(getattr(handler, name)))


def set_faults(env: dict, rate: float | None = None, seed: int = 0) -> dict:
  """Sets the emulator's fault rate (None: leaves it); returns its counts until
  now: {'requests': n, 'injected': {'429': n, '503': n, 'drop': n}}."""
  import urllib.request  # pylint: disable=g-import-not-at-top

  url = f"{env['TENSORSTORE_GCS_HTTP_URL']}{FAULTS_ROUTE}"
  if rate is not None:
    url += f"?rate={rate}&seed={seed}"
  with urllib.request.urlopen(url) as r:  # NO_PROXY covers 127.0.0.1
    return json.load(r)


def serve(port_file: str, bucket: str, cert: str, key: str) -> None:
  """The emulator (in memory, with `bucket`) and the proxy, until SIGTERM; their
  ports go to `port_file` as JSON once both listen."""
  import logging  # pylint: disable=g-import-not-at-top

  from gcp_storage_emulator.server import create_server  # pylint: disable=g-import-not-at-top

  # One line per request in the log: what a failing test asked for.
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  _fix_emulator()
  from gcp_storage_emulator import server as server_module  # pylint: disable=g-import-not-at-top

  _inject_faults(server_module)
  port = _free_port()
  server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
  server.start()
  proxy = TlsProxy(("127.0.0.1", port), cert, key)
  tmp = port_file + ".tmp"
  with open(tmp, "w") as f:
    json.dump({"emulator": port, "proxy": proxy.server_address[1]}, f)
  os.rename(tmp, port_file)
  signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=proxy.shutdown).start())
  try:
    proxy.serve_forever()
  finally:
    proxy.server_close()
    server.stop()


@contextlib.contextmanager
def gcs_emulator(directory: str, bucket: str, *, timeout: float = 60):
  """Starts the emulator and the proxy in a separate process (so that the
  clients under test never wait on this process's GIL); yields the environment
  variables that point every client at them."""
  cert, key = make_certificate(directory)
  port_file = os.path.join(directory, "ports.json")
  log = open(os.path.join(directory, "emulator.log"), "w")
  proc = subprocess.Popen(
    [sys.executable, os.path.abspath(__file__), port_file, bucket, cert, key],
    stdout=log,
    stderr=subprocess.STDOUT,
  )
  try:
    deadline = time.time() + timeout
    while not os.path.exists(port_file):
      if proc.poll() is not None or time.time() > deadline:
        raise RuntimeError(f"the GCS emulator did not start; see {log.name}")
      time.sleep(0.1)
    with open(port_file) as f:
      ports = json.load(f)
    proxy = f"http://127.0.0.1:{ports['proxy']}"
    yield {
      "HTTPS_PROXY": proxy,
      "https_proxy": proxy,
      "HTTP_PROXY": proxy,
      "http_proxy": proxy,
      "NO_PROXY": "127.0.0.1,localhost",
      "no_proxy": "127.0.0.1,localhost",
      "CURL_CA_BUNDLE": cert,
      "TENSORSTORE_GCS_HTTP_URL": f"http://127.0.0.1:{ports['emulator']}",
      "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
      "NO_GCE_CHECK": "true",
      # google-cloud-storage (Orbax asks it whether a bucket has a hierarchical
      # namespace) takes the emulator's address, and then needs no credentials.
      "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['emulator']}",
      "GOOGLE_CLOUD_PROJECT": "egsc-test",
    }
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
    log.close()


if __name__ == "__main__":
  serve(*sys.argv[1:5])
