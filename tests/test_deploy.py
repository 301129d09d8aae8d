"""`gemini launch` as a user runs it on real machines: one per node, meeting
in etcd over TLS with client certificates (scripts/etcd-dev). No namespaces:
two nodes on this machine, told apart by their addresses (127.0.0.1 and
127.0.0.2), their sockets and their shared-memory names."""
import json
import os
import shlex
import shutil
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import GEMINI, PYTHON, REPO, free_port, helper

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("openssl") is None,
                                reason="needs etcd-server and openssl")

SECRET = "deploy-test-secret-0123456789abcdef"


def etcd_status(url, certs, client_cert=True):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        return json.load(r)


@pytest.fixture
def tls_etcd(tmp_path):
    certs = tmp_path / "etcd"
    port = free_port()
    log = open(tmp_path / "etcd.log", "w")
    proc = subprocess.Popen(["bash", os.path.join(REPO, "scripts", "etcd-dev"), "start",
                             str(certs), str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    for _ in range(100):
        try:
            etcd_status(url, certs)
            break
        except (OSError, ssl.SSLError):
            assert proc.poll() is None, (tmp_path / "etcd.log").read_text()
            time.sleep(0.2)
    else:
        pytest.fail("etcd-dev did not come up: " + (tmp_path / "etcd.log").read_text())
    yield url, certs
    proc.kill()
    proc.wait()
    log.close()


def node(url, certs, tmp_path, name, addr, extra=(), command=(), nproc=2, nnodes=2, job="deployjob",
         cert="client"):
    secret = tmp_path / "secret"
    if not secret.exists():
        secret.write_text(SECRET)
        secret.chmod(0o600)
    return [GEMINI, "launch", "--nnodes", str(nnodes), "--nproc-per-node", str(nproc),
            "--rdzv-endpoint", url, "--rdzv-id", job, "--etcd-cacert", str(certs / "ca.pem"),
            "--etcd-cert", str(certs / f"{cert}.pem"), "--etcd-key", str(certs / f"{cert}.key"),
            "--secret-file", str(secret), "--advertise", addr, "--budget", "256MiB",
            "--socket", str(tmp_path / f"{name}.sock"), "--shm-prefix", f"gemini-deploy-{name}",
            "--log-dir", str(tmp_path / name), *extra, *command]


def test_a_client_without_a_certificate_is_refused(tls_etcd, tmp_path):
    url, certs = tls_etcd
    assert "version" in etcd_status(url, certs)  # With the CA's client certificate: served.
    with pytest.raises((OSError, ssl.SSLError)):
        etcd_status(url, certs, client_cert=False)
    out = subprocess.run(
        [GEMINI, "launch", "--nnodes", "1", "--rdzv-endpoint", url, "--rdzv-timeout", "4",
         "--etcd-cacert", str(certs / "ca.pem"), "--budget", "64MiB",
         "--log-dir", str(tmp_path / "logs"), PYTHON, "-c", "pass"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "rendezvous" in said or "etcd" in said, said
    assert not (tmp_path / "logs" / "trainer-0.log").exists()  # Nothing ran.


def test_every_node_runs_its_own_gemini_launch(tls_etcd, tmp_path):
    url, certs = tls_etcd
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    env.pop("GEMINI_SECRET", None)
    procs = {name: subprocess.Popen(node(url, certs, tmp_path, name, addr,
                                         command=[PYTHON, helper("env_contract.py")]),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=env)
             for name, addr in (("a", "127.0.0.1"), ("b", "127.0.0.2"))}
    outs = {name: p.communicate(timeout=120)[0] for name, p in procs.items()}
    for name, p in procs.items():  # The exit status is the job's, on every node.
        assert p.returncode == 0, outs[name]
        assert "the job finished" in outs[name], outs[name]
    # Host ids come from the rendezvous, in the order the nodes joined.
    group = {name: int(outs[name].split("] node ")[1].split()[0]) for name in outs}
    assert sorted(group.values()) == [0, 1], outs
    seen = {}
    for name in outs:
        for f in (tmp_path / name).glob("trainer-*.log"):
            (e,) = [json.loads(l) for l in f.read_text().splitlines() if l.startswith("{")]
            seen[int(e["RANK"])] = e
            assert e["GROUP_RANK"] == str(group[name]) and e["GROUP_WORLD_SIZE"] == "2"
            assert int(e["RANK"]) // 2 == group[name]
            assert e["LOCAL_RANK"] == str(int(e["RANK"]) % 2) and e["LOCAL_WORLD_SIZE"] == "2"
            assert e["WORLD_SIZE"] == e["ROLE_WORLD_SIZE"] == "4"
            assert e["TORCHELASTIC_RUN_ID"] == e["GEMINI_JOB"] == "deployjob"
            assert e["TORCHELASTIC_RESTART_COUNT"] == "0"
    assert sorted(seen) == [0, 1, 2, 3]
    assert len({(e["MASTER_ADDR"], e["MASTER_PORT"]) for e in seen.values()}) == 1


def test_nodes_that_disagree_or_come_late_are_told_why(tls_etcd, tmp_path):
    url, certs = tls_etcd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    sleeper = [PYTHON, "-c", "import time; time.sleep(60)"]
    a = subprocess.Popen(node(url, certs, tmp_path, "a", "127.0.0.1", command=sleeper),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert "joined round 1 as node 0" in a.stdout.readline()  # a opened the round.
        # Another --nproc-per-node than the round's first node: refused, before
        # joining, with both values.
        out = subprocess.run(node(url, certs, tmp_path, "b", "127.0.0.2", command=sleeper,
                                  nproc=3),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "disagree" in out.stdout, out.stdout + out.stderr
        assert "--nproc-per-node 3" in out.stdout and "--nproc-per-node 2" in out.stdout
        b = subprocess.Popen(node(url, certs, tmp_path, "b", "127.0.0.2", command=sleeper),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            # Once the round closed (both agents started), a third node is sent to --standby.
            for _ in range(300):
                if all((tmp_path / n / f"agent-{ip}.log").exists()
                       for n, ip in (("a", "127.0.0.1"), ("b", "127.0.0.2"))):
                    break
                time.sleep(0.1)
            late = subprocess.run(node(url, certs, tmp_path, "c", "127.0.0.3", command=sleeper),
                                  capture_output=True, text=True, timeout=60)
            assert late.returncode != 0 and "--standby" in late.stdout, late.stdout
        finally:
            b.terminate()
            b.communicate(timeout=60)
    finally:
        a.terminate()
        a.communicate(timeout=60)


def test_etcd_auth_takes_the_user_from_the_certificate(tls_etcd, tmp_path):
    # etcd auth on (scripts/etcd-dev auth): user "gemini", the CN of
    # client.pem, may read and write /gemini/deployjob/ only. A job runs under
    # that user; a certificate of the same CA whose CN is no user, and the
    # right user on another job's keys, are refused, and told why.
    url, certs = tls_etcd
    dev = os.path.join(REPO, "scripts", "etcd-dev")
    port = url.rsplit(":", 1)[1]
    subprocess.run(["bash", dev, "auth", str(certs), port, "deployjob"], check=True)
    subprocess.run(["bash", dev, "client", str(certs), "intruder"], check=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("GEMINI_SECRET", None)
    ok = [PYTHON, "-c", "pass"]

    def run(name, **kw):
        args = node(url, certs, tmp_path, name, "127.0.0.1", nnodes=1, nproc=1, command=ok,
                    extra=["--rdzv-timeout", "8"], **kw)
        return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)

    out = run("a")
    assert out.returncode == 0 and "the job finished" in out.stdout, out.stdout + out.stderr
    for name, kw in (("b", {"cert": "intruder"}), ("c", {"job": "otherjob"})):
        out = run(name, **kw)
        said = out.stdout + out.stderr
        assert out.returncode != 0, said
        assert "permission denied" in said and "CN" in said, said
        assert not (tmp_path / name / "trainer-0.log").exists()  # Nothing ran.
    # No key of another job was written (read as root: the auth user).
    got = subprocess.run(["etcdctl", "--endpoints", url, "--cacert", str(certs / "ca.pem"),
                          "--cert", str(certs / "root.pem"), "--key", str(certs / "root.key"),
                          "get", "--prefix", "--keys-only", "/gemini/"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    keys = [k for k in got.split() if k]
    assert all(k.startswith("/gemini/deployjob/") for k in keys), keys


def test_gemini_provider_brings_up_a_machine_for_a_lost_host(tls_etcd, tmp_path):
    """Two nodes train; one dies with its agent and trainers, and no standby is
    left. `gemini provider --command` starts a third node that takes the lost
    host id over (`--replace-host $GEMINI_REPLACE_HOST`), and the job ends."""
    url, certs = tls_etcd
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    env.pop("GEMINI_SECRET", None)
    train = [PYTHON, "-m", "gemini.demo_train", "--iterations", "40", "--sleep", "0.25",
             "--state-crcs"]
    flags = ["--lease-ttl", "3", "--replicas", "2"]
    procs = {name: subprocess.Popen(node(url, certs, tmp_path, name, addr, extra=flags,
                                         command=train, nproc=1),
                                    stdout=open(tmp_path / f"{name}.out", "w"),
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
             for name, addr in (("a", "127.0.0.1"), ("b", "127.0.0.2"))}
    c = node(url, certs, tmp_path, "c", "127.0.0.3", extra=flags, command=train, nproc=1)
    command = (" ".join(shlex.quote(x) for x in c[:2]) + ' --replace-host "$GEMINI_REPLACE_HOST" '
               + " ".join(shlex.quote(x) for x in c[2:])
               + f" > {tmp_path / 'c.out'} 2>&1 & echo $! > {tmp_path / 'c.pid'}")
    provider = subprocess.Popen(
        [GEMINI, "provider", "--rdzv-endpoint", url, "--rdzv-id", "deployjob",
         "--etcd-cacert", str(certs / "ca.pem"), "--etcd-cert", str(certs / "client.pem"),
         "--etcd-key", str(certs / "client.key"), "--command", command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    c_pid = None
    try:
        # Node b dies (launcher, agent, trainers) once training is under way.
        def events(*names):  # Rank 0's events (the only rank that logs them).
            return [json.loads(l) for n in names for f in (tmp_path / n).glob("trainer-*.log")
                    for l in f.read_text().splitlines() if l.startswith("{")]

        for _ in range(600):
            if sum(e["event"] == "iteration" for e in events("a", "b")) >= 8:
                break
            time.sleep(0.1)
        else:
            pytest.fail("node b never trained: " + (tmp_path / "b.out").read_text())
        lost = int((tmp_path / "b.out").read_text().split("] node ")[1].split()[0])
        os.killpg(procs["b"].pid, 9)
        procs["b"].wait()
        assert procs["a"].wait(timeout=180) == 0, (tmp_path / "a.out").read_text()
        out = provider.communicate(timeout=30)[0]
        assert provider.returncode == 0, out
        assert f"a new machine replaces host {lost}" in out, out
        c_pid = int((tmp_path / "c.pid").read_text())
        for _ in range(300):  # The replacement's launcher ends with the job.
            try:
                os.kill(c_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        said = (tmp_path / "c.out").read_text()
        assert "the job finished" in said, said
        # Rank 0 (on a, or on c if the lost host had it) resumed from memory and finished.
        ran = events("a", "c")
        assert any(e["event"] == "start" and (e["resumed_from"] or 0) > 0 for e in ran), ran
        assert ran[-1]["event"] == "done" and ran[-1]["iterations"] == 40, ran[-1]
    finally:
        for p in (*procs.values(), provider):
            if p.poll() is None:
                os.killpg(p.pid, 9) if p in procs.values() else p.kill()
                p.wait()
        if c_pid is None and (tmp_path / "c.pid").exists():
            c_pid = int((tmp_path / "c.pid").read_text())
        if c_pid is not None:
            try:
                os.kill(c_pid, 9)
            except ProcessLookupError:
                pass
