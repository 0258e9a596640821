"""A DPoP-bound request and a bearer request counted in instructions (valgrind's
callgrind), which a busy machine does not change: the same figure on every run of the
same code, where wall and CPU times move with the neighbours.

    python benchmarks/dpop_instructions.py [--requests 100]

Each kind runs in its own process under callgrind twice, with no requests and with
`--requests` of them, so that start-up cancels out: (with - without) / requests is one
request's count. Needs valgrind and redis-server (started here, on a free port); the
site is `benchmarks/dpop.py`'s.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KINDS = ("bearer", "dpop", "es256")


def worker(kind: str, requests: int, signed: int) -> None:
    """Log in, warm up, then make `requests` requests of `kind`, `signed` proofs signed
    first (as many in either run: signing is the client's work)."""
    from django.test import Client

    from benchmarks import dpop
    from benchmarks.run import Config, jwt_login, make_user, prepare_database, redis_conn
    from tests.dpop_keys import ProofKey

    if kind == "es256":
        es256_verifications(requests, signed)
        return
    prepare_database(Config(quick=True, http=False, postgres=False))
    redis_conn().flushdb()
    user, client, key = make_user(f"instructions-{kind}"), Client(), ProofKey()
    if kind == "bearer":
        call = dpop.request_call(jwt_login(client, user.username)["access"], None)
        proofs = None
    else:
        access = dpop.bound_login(client, user.username, key)["access"]
        proofs = dpop.Proofs(key, "GET", dpop.WHOAMI, access)
        call = dpop.request_call(access, proofs)
    if proofs is not None:
        proofs.fill(signed)
    for _ in range(20):  # scripts loaded, memos and pools warm
        call()
    for _ in range(requests):
        call()


def es256_verifications(count: int, signed: int) -> None:
    """The floor: `count` ES256 signatures verified, and nothing else (`signed` made)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pairs = [(data, private.sign(data, ec.ECDSA(hashes.SHA256())))
             for data in (os.urandom(400) for _ in range(signed))]
    public, scheme = private.public_key(), ec.ECDSA(hashes.SHA256())
    for number in range(count):
        data, signature = pairs[number % len(pairs)]
        public.verify(signature, data, scheme)


def counting(kind: str, requests: int, signed: int, workdir: str,
             redis_url: str) -> tuple[Any, str]:
    """A worker started under callgrind (a database and a Redis db of its own), and the
    file its count goes to."""
    out = os.path.join(workdir, f"{kind}-{requests}.out")
    private = os.path.join(workdir, f"{kind}-{requests}")
    os.mkdir(private)
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
         __file__, "--worker", kind, str(requests), str(signed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": private, "BENCH_REDIS_URL": redis_url})
    return process, out


def total(process: Any, out: str) -> int:
    _, errors = process.communicate()
    if process.returncode:
        sys.exit(errors.decode(errors="replace")[-2000:])
    summary = re.search(r"^summary:\s+(\d+)", Path(out).read_text(), re.MULTILINE)
    assert summary is not None, out
    return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    per_request = {}
    signed = args.requests + 20
    from tests.redis_servers import start_redis

    server = start_redis()  # each worker its own db: they run at once (counts ignore load)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            runs = {(kind, n): counting(kind, n, signed, workdir, f"redis://127.0.0.1:{server.port}/{db}")
                    for db, (kind, n) in enumerate((kind, n) for kind in KINDS
                                                   for n in (0, args.requests))}
            counts = {run: total(*started) for run, started in runs.items()}
    finally:
        server.stop()
    for kind in KINDS:
        per_request[kind] = (counts[kind, args.requests] - counts[kind, 0]) / args.requests
    bearer, bound = per_request["bearer"], per_request["dpop"]
    print("| request | instructions per request | / bearer |")
    print("|---|---|---|")
    for kind, label in (("bearer", "bearer"), ("dpop", "DPoP-bound (ES256 proof)")):
        print(f"| {label} | {per_request[kind]:,.0f} | {per_request[kind] / bearer:.2f}x |")
    print(f"\nadded by DPoP: {bound - bearer:,.0f} instructions per request, of which "
          f"{per_request['es256']:,.0f} verify the ES256 signature alone (sign-free, "
          f"{args.requests} of each)")


if __name__ == "__main__":
    main()
