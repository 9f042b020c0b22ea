"""Test certificates made with the openssl command line: a CA, and leaf
certificates (RSA 2048, ECDSA P-256 or Ed25519; PKCS#8 or PKCS#1 keys) that
the CA signs, with DNS subjectAltNames."""

import os
import subprocess


def _run(*args):
    r = subprocess.run(["openssl", *args], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))


def _keygen(path, kind):
    if kind == "rsa":
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    elif kind == "ecdsa":
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    elif kind == "ed25519":
        _run("genpkey", "-algorithm", "ED25519", "-out", path)
    else:
        raise ValueError(kind)
    os.chmod(path, 0o600)


class CA:
    """A self-signed CA in directory d, named name."""

    def __init__(self, d, name="Test CA", kind="ecdsa"):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.key = os.path.join(d, "%s.key" % name.replace(" ", "-"))
        self.cert = os.path.join(d, "%s.pem" % name.replace(" ", "-"))
        _keygen(self.key, kind)
        _run("req", "-x509", "-new", "-key", self.key, "-out", self.cert, "-days", "3",
             "-subj", "/CN=%s" % name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, dns=(), kind="ecdsa", client=False, pkcs1=False, cn=None, out=None):
        """A leaf for `dns` names; returns (key_path, cert_path)."""
        base = os.path.join(out or self.dir, name)
        key, csr, crt = base + ".key", base + ".csr", base + ".pem"
        _keygen(key, kind)
        if pkcs1 and kind == "rsa":
            _run("rsa", "-in", key, "-out", key, "-traditional")
            os.chmod(key, 0o600)
        _run("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=%s" % (cn or (dns[0] if dns else name)))
        ext = base + ".ext"
        with open(ext, "w") as f:
            if dns:
                f.write("subjectAltName=%s\n" % ",".join("DNS:%s" % d for d in dns))
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            f.write("basicConstraints=CA:FALSE\n")
        _run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", ext)
        os.unlink(csr)
        os.unlink(ext)
        return key, crt
