"""A local HTTP server that misbehaves on request, for testing the image downloader.

Each path is given a list of `Reply`s, served in order (the last one repeats), so a test
can script "500, then the image". Every request is recorded with its arrival time, which
lets tests check waits from the server's side.
"""

from collections.abc import Mapping
import dataclasses
import http.server
import socket
import struct
import sys
import threading
import time

AUTO = -1  # Reply.content_length: declare the true length of the body.


@dataclasses.dataclass(frozen=True)
class Reply:
  status: int = 200
  body: bytes = b''
  headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
  content_length: int | None = AUTO  # None: no header (the body ends when the socket closes)
  delay_s: float = 0.0  # before the status line
  reset_after: int | None = None  # send this many body bytes, then reset the connection


@dataclasses.dataclass(frozen=True)
class Request:
  path: str
  time: float  # time.monotonic() on arrival
  user_agent: str | None


class FaultServer(http.server.ThreadingHTTPServer):
  """Serves scripted replies on 127.0.0.1 from a background thread (`with FaultServer()`)."""

  def __init__(self):
    super().__init__(('127.0.0.1', 0), _Handler)
    self.requests: list[Request] = []
    self._replies: dict[str, list[Reply]] = {}
    self._lock = threading.Lock()
    # A short poll keeps shutdown() (once per test) fast.
    self._thread = threading.Thread(
        target=self.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True)

  def route(self, path: str, *replies: Reply) -> str:
    """Scripts the replies for `path` and returns its URL."""
    self._replies[path] = list(replies)
    return self.url(path)

  def url(self, path: str) -> str:
    return f'http://127.0.0.1:{self.server_port}{path}'

  def times(self, path: str) -> list[float]:
    return [r.time for r in self.requests if r.path == path]

  def take_reply(self, path: str, user_agent: str | None) -> Reply:
    with self._lock:
      self.requests.append(Request(path, time.monotonic(), user_agent))
      replies = self._replies.get(path) or [Reply(404)]
      return replies.pop(0) if len(replies) > 1 else replies[0]

  def handle_error(self, request, client_address):
    # A client that gave up (the timeout tests) is expected; anything else is a bug here.
    if not isinstance(sys.exc_info()[1], ConnectionError):
      super().handle_error(request, client_address)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc_info):
    self.shutdown()
    self._thread.join()
    return super().__exit__(*exc_info)


class _Handler(http.server.BaseHTTPRequestHandler):

  def do_GET(self):  # pylint: disable=invalid-name
    reply = self.server.take_reply(self.path, self.headers.get('User-Agent'))
    time.sleep(reply.delay_s)
    self.send_response(reply.status)
    for name, value in reply.headers.items():
      self.send_header(name, value)
    if reply.content_length is not None:
      length = len(reply.body) if reply.content_length == AUTO else reply.content_length
      self.send_header('Content-Length', str(length))
    self.end_headers()
    if reply.reset_after is None:
      self.wfile.write(reply.body)
    else:
      self.wfile.write(reply.body[:reply.reset_after])
      self._reset_connection()

  def _reset_connection(self):
    """Closes with a TCP reset (SO_LINGER 0), as a dropped connection looks to a client."""
    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    self.connection.close()
    self.close_connection = True

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    del format, args  # quiet: tests inspect `FaultServer.requests` instead
