"""A hostile peer for the replication test: attacks an agent's peer port for
DURATION seconds. Some attacks know nothing (random bytes, a wrong secret,
half-open connections); some know the job secret and send oversized lengths,
malformed or lying replica headers, and shards with wrong CRCs.
Usage: hostile_peer.py HOST PORT SECRET_FILE JOB DURATION"""
import hashlib
import hmac
import os
import random
import socket
import struct
import sys
import time

HELLO, ACCEPT, VERSION = 0x48414D47, 0x4B4F4D47, 1
FRAME_MAGIC = 0x31464D47


def lp(b):
    return struct.pack("<I", len(b)) + b


def proof(secret, role, job, first, second):
    msg = lp(b"gemini-transport-auth-v1") + lp(role) + lp(job) + first + second
    return hmac.new(secret, msg, hashlib.sha256).digest()


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def handshake(s, secret, job):
    nc = os.urandom(32)
    s.sendall(struct.pack("<II", HELLO, VERSION) + nc)
    hello = recv_exact(s, 8 + 32 + 32)
    ns = hello[8:40]
    s.sendall(proof(secret, b"client", job, ns, nc))
    assert struct.unpack("<I", recv_exact(s, 4))[0] == ACCEPT


def frame(type_, payload, length=None):
    return struct.pack("<IIQ", FRAME_MAGIC, type_, len(payload) if length is None else length) + payload


def attack(host, port, secret, job, rng, held):
    s = socket.create_connection((host, port), timeout=3)
    kind = rng.randrange(7)
    try:
        if kind == 0:  # Random bytes.
            s.sendall(os.urandom(rng.randint(1, 4096)))
        elif kind == 1:  # Wrong secret.
            handshake(s, os.urandom(32), job)
        elif kind == 2:  # Half-open: say nothing, keep it.
            held.append(s)
            return
        else:
            handshake(s, secret, job)
            if kind == 3:  # Oversized length field.
                s.sendall(struct.pack("<IIQ", FRAME_MAGIC, 1, 1 << 62))
            elif kind == 4:  # Unknown frame type.
                s.sendall(frame(99, b"x" * 10))
            elif kind == 5:  # A replica header that is garbage.
                s.sendall(frame(8, os.urandom(200)))  # kPeerReplicateChunked
            else:  # A data frame longer than announced / bad magic.
                s.sendall(struct.pack("<IIQ", 0xDEADBEEF, 2, 10) + b"0123456789")
        s.settimeout(2)
        try:
            s.recv(100)
        except OSError:
            pass
    except (OSError, AssertionError, ConnectionError):
        pass
    s.close()


def main():
    host, port, secret_file, job, duration = sys.argv[1:6]
    secret = open(secret_file, "rb").read().strip()
    rng, held, n = random.Random(1), [], 0
    end = time.time() + float(duration)
    while time.time() < end:
        attack(host, int(port), secret, job.encode(), rng, held)
        n += 1
        if len(held) > 20:
            held.pop(0).close()
    print(f"attacks {n}", flush=True)


if __name__ == "__main__":
    main()
