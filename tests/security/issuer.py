"""A center's identity provider as far as the services see it: a real HTTP server on the
loopback that publishes a discovery document and a JWKS, keys that sign its tokens, and ways to
rotate the keys, count the fetches and take the server away."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "sixstep-pages"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or f"rsa-{uuid.uuid4().hex[:8]}", "RS256",
                   rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or f"ec-{uuid.uuid4().hex[:8]}", "ES256",
                   ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        algorithms = jwt.algorithms
        algorithm = algorithms.RSAAlgorithm if self.alg == "RS256" else algorithms.ECAlgorithm
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}


@dataclass
class Issuer:
    """The identity provider: ``url`` is its issuer; ``keys`` what its JWKS publishes."""

    port: int
    keys: list[SigningKey] = field(default_factory=list)
    jwks_fetches: int = 0
    discovery_issuer: str | None = None  # what discovery claims; default the real one
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, key: SigningKey | None = None, *, sub: str = "clerk-017",
              ttl_s: int = 300, issuer: str | None = None, audience: str = CLIENT_ID,
              kid: str | None = None, **claims: Any) -> str:
        """A token of this issuer, signed by ``key`` (default the first published).
        ``claims`` set to None are left out."""
        key = key or self.keys[0]
        now = int(time.time())
        body = {"iss": issuer or self.url, "aud": audience, "sub": sub, "iat": now,
                "exp": now + ttl_s, "jti": uuid.uuid4().hex, "roles": ["clerk"],
                "center": "SH-PD-HUAMU", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key.private, algorithm=key.alg,
                          headers={"kid": kid or key.kid})

    # -- the HTTP server -------------------------------------------------------------------------

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": issuer.discovery_issuer or issuer.url,
                        "jwks_uri": f"{issuer.url}/keys",
                        "authorization_endpoint": f"{issuer.url}/authorize",
                        "token_endpoint": f"{issuer.url}/token"}
                elif self.path == "/keys":
                    issuer.jwks_fetches += 1
                    body = {"keys": [k.jwk() for k in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        """Take the server away: its port refuses connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def running_issuer(port: int, *keys: SigningKey) -> Iterator[Issuer]:
    issuer = Issuer(port, list(keys) or [SigningKey.rsa()])
    issuer.start()
    try:
        yield issuer
    finally:
        issuer.stop()
