"""A throw-away PKI for the SslStream tests, made at test time with the openssl command-line tool
(EC P-256 keys, SHA-256 signatures) in a temporary folder. Nothing here is ever committed.

  ca.pem ca.key                  the test CA (the tests trust it explicitly)
  server.pem server.key          CN=localhost, O=apmnet; SAN DNS:localhost, IP:127.0.0.1; by the CA
  server.der                     server.pem in DER
  server-with-key.pem            server.pem then server.key, in one file
  server.p12                     certificate, key and CA in PKCS#12, password PKCS12_PASSWORD
  client.pem client.key          CN=apmnet client, clientAuth, by the CA
  selfsigned.pem selfsigned.key  CN=localhost, self-signed (trusted by nobody)
"""

import pathlib
import secrets
import shutil
import subprocess

#: Generated afresh for every run, like the keys.
PKCS12_PASSWORD = secrets.token_hex(8)


def available():
    return shutil.which("openssl") is not None


class Pki:
    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password = PKCS12_PASSWORD
        self._make()

    def __getattr__(self, name):
        """``pki.server_pem`` -> the path of server.pem (``_`` for ``.``; ``server_with_key_pem``)."""
        stem, _, suffix = name.rpartition("_")
        if not stem or suffix not in ("pem", "key", "der", "p12"):
            raise AttributeError(name)
        return self.folder / (stem.replace("_", "-") + "." + suffix)

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], cwd=self.folder, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def _key(self, name):
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", name + ".key")

    def _signed(self, name, subject, san, usage):
        self._key(name)
        self._openssl("req", "-new", "-key", name + ".key", "-subj", subject, "-out", name + ".csr")
        extensions = ("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                      f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else ""))
        (self.folder / (name + ".ext")).write_text(extensions)
        self._openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-days", "2", "-sha256", "-extfile", name + ".ext",
                      "-out", name + ".pem")

    def _make(self):
        self._key("ca")
        self._openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=apmnet test CA",
                      "-days", "2", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
        self._signed("server", "/CN=localhost/O=apmnet", "DNS:localhost,IP:127.0.0.1", "serverAuth")
        self._signed("client", "/CN=apmnet client", None, "clientAuth")
        self._key("selfsigned")
        self._openssl("req", "-x509", "-new", "-key", "selfsigned.key", "-subj", "/CN=localhost",
                      "-days", "2", "-sha256", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                      "-out", "selfsigned.pem")
        self._openssl("x509", "-in", "server.pem", "-outform", "DER", "-out", "server.der")
        (self.folder / "server-with-key.pem").write_bytes(
            (self.folder / "server.pem").read_bytes() + (self.folder / "server.key").read_bytes())
        self._openssl("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key",
                      "-certfile", "ca.pem", "-passout", "pass:" + self.password, "-out", "server.p12")
