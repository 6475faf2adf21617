"""Loading ClusterConfig from kubeconfigs and in-cluster files (the kubernetes loaders)."""

from __future__ import annotations

import base64
import re
import ssl
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from flokoa_controller.kube.config import (
    ClusterConfig,
    ConfigError,
    default_user_agent,
    load_config,
    load_incluster,
    load_kubeconfig,
)
from flokoa_controller.kube.tokens import (
    ConfigurationTokenSource,
    ExecTokenSource,
    FileTokenSource,
    StaticTokenSource,
)

CANARY = "canary-token-7f3a9"


def kubeconfig(
    path: Path,
    users: dict[str, dict[str, Any]],
    clusters: dict[str, dict[str, Any]],
    contexts: dict[str, tuple[str, str]],
    current: str,
) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [
            {"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()
        ],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_token_and_context_selection(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        users={"alice": {"token": CANARY}, "bob": {"token": "bob-token"}},
        clusters={
            "one": {"server": "http://127.0.0.1:8001/"},
            "two": {
                "server": "https://two.example:6443",
                "insecure-skip-tls-verify": True,
                "tls-server-name": "kubernetes",
                "proxy-url": "http://proxy:3128",
            },
        },
        contexts={"a": ("one", "alice"), "b": ("two", "bob")},
        current="a",
    )
    cfg = load_kubeconfig(path)
    assert cfg.server == "http://127.0.0.1:8001"
    assert cfg.host == "127.0.0.1:8001"
    assert isinstance(cfg.token_source, StaticTokenSource)
    assert await cfg.token_source.token() == CANARY
    assert CANARY not in repr(cfg)
    assert cfg.ssl_context() is None

    other = load_kubeconfig(path, context="b")
    assert other.server == "https://two.example:6443"
    assert other.verify is False
    assert other.tls_server_name == "kubernetes"
    assert other.proxy == "http://proxy:3128"
    assert other.token_source is not None
    assert await other.token_source.token() == "bob-token"
    ctx = other.ssl_context()
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_NONE
    assert not ctx.check_hostname

    with pytest.raises(ConfigError, match="missing"):
        load_kubeconfig(path, context="missing")


async def test_token_file_relative_to_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    path = kubeconfig(
        tmp_path / "config",
        users={"u": {"tokenFile": "tok"}},
        clusters={"c": {"server": "http://127.0.0.1:1"}},
        contexts={"x": ("c", "u")},
        current="x",
    )
    cfg = load_kubeconfig(path)
    assert isinstance(cfg.token_source, FileTokenSource)
    assert cfg.token_source.path == str(tmp_path / "tok")
    assert await cfg.token_source.token() == "from-file"


def test_client_certificate_data_and_ca(tmp_path: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert("client@example")
    path = kubeconfig(
        tmp_path / "config",
        users={
            "u": {
                "client-certificate-data": b64(leaf.cert_chain_pems[0].bytes().decode()),
                "client-key-data": b64(leaf.private_key_pem.bytes().decode()),
            }
        },
        clusters={
            "c": {
                "server": "https://127.0.0.1:6443",
                "certificate-authority-data": b64(ca.cert_pem.bytes().decode()),
            }
        },
        contexts={"x": ("c", "u")},
        current="x",
    )
    cfg = load_kubeconfig(path)
    assert cfg.token_source is None
    assert cfg.ca_file
    assert cfg.client_cert_file
    assert cfg.client_key_file
    # the loader's temporary key file is private to the user
    assert stat.S_IMODE(Path(cfg.client_key_file).stat().st_mode) & 0o077 == 0
    ctx = cfg.ssl_context()
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert "PRIVATE" not in repr(cfg)


def test_in_memory_client_certificate(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("client@example")
    cfg = ClusterConfig(
        server="https://127.0.0.1:1",
        ca_data=ca.cert_pem.bytes().decode(),
        client_cert_data=leaf.cert_chain_pems[0].bytes().decode(),
        client_key_data=leaf.private_key_pem.bytes().decode(),
    )
    assert cfg.ssl_context() is not None
    with pytest.raises(ConfigError):
        ClusterConfig(server="https://x", client_cert_data="only-cert").ssl_context()
    with pytest.raises(ConfigError):
        ClusterConfig(server="https://x", client_cert_file="/only/cert").ssl_context()


def exec_plugin(tmp_path: Path, token: str, expiry: str | None) -> Path:
    """A credential plugin printing an ExecCredential; counts its runs in a file."""
    script = tmp_path / "plugin.py"
    status: dict[str, str] = {"token": token}
    if expiry:
        status["expirationTimestamp"] = expiry
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib\n"
        "runs = pathlib.Path(__file__).with_name('runs')\n"
        "runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else '1')\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert info['kind'] == 'ExecCredential'\n"
        f"print(json.dumps({{'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',"
        f" 'status': {status!r}}}))\n"
    )
    script.chmod(0o755)
    return script


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


async def test_exec_plugin(tmp_path: Path) -> None:
    script = exec_plugin(tmp_path, "exec-token", "2099-01-01T00:00:00Z")
    path = kubeconfig(
        tmp_path / "config",
        users={
            "u": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": str(script),
                    "args": [],
                    "interactiveMode": "Never",
                }
            }
        },
        clusters={"c": {"server": "http://127.0.0.1:1"}},
        contexts={"x": ("c", "u")},
        current="x",
    )
    cfg = load_kubeconfig(path)
    src = cfg.token_source
    assert isinstance(src, ExecTokenSource)
    assert runs(tmp_path) == 1  # run once by the loader
    assert await src.token() == "exec-token"
    assert await src.token() == "exec-token"
    assert runs(tmp_path) == 1  # cached until 2099
    src.invalidate()  # a 401
    assert await src.token() == "exec-token"
    assert runs(tmp_path) == 2


async def test_exec_plugin_expired_credential_is_rerun(tmp_path: Path) -> None:
    script = exec_plugin(tmp_path, "short-lived", "2000-01-01T00:00:00Z")
    path = kubeconfig(
        tmp_path / "config",
        users={
            "u": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": str(script),
                }
            }
        },
        clusters={"c": {"server": "http://127.0.0.1:1"}},
        contexts={"x": ("c", "u")},
        current="x",
    )
    src = load_kubeconfig(path).token_source
    assert src is not None
    assert await src.token() == "short-lived"
    assert await src.token() == "short-lived"
    assert runs(tmp_path) == 3  # the loader, then once per call: always expired


def test_basic_auth_refused(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        users={"u": {"username": "admin", "password": CANARY}},
        clusters={"c": {"server": "http://127.0.0.1:1"}},
        contexts={"x": ("c", "u")},
        current="x",
    )
    with pytest.raises(ConfigError, match="basic") as info:
        load_kubeconfig(path)
    assert CANARY not in str(info.value)


def test_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_kubeconfig(tmp_path / "nope")


def incluster_files(tmp_path: Path, ca: trustme.CA) -> tuple[Path, Path]:
    token = tmp_path / "token"
    token.write_text("sa-token-1")
    ca_file = tmp_path / "ca.crt"
    ca.cert_pem.write_to_path(str(ca_file))
    return token, ca_file


async def test_incluster_token_rotates(tmp_path: Path, ca: trustme.CA) -> None:
    token, ca_file = incluster_files(tmp_path, ca)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    cfg = load_incluster(token_file=str(token), ca_file=str(ca_file), environ=env)
    assert cfg.server == "https://10.96.0.1:443"
    assert cfg.ca_file == str(ca_file)
    src = cfg.token_source
    assert isinstance(src, FileTokenSource)
    assert await src.token() == "sa-token-1"
    token.write_text("sa-token-2")  # the kubelet rotated the bound token
    src.invalidate()  # as after a 401
    assert await src.token() == "sa-token-2"

    ipv6 = load_incluster(
        token_file=str(token),
        ca_file=str(ca_file),
        environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    assert ipv6.server == "https://[fd00::1]:443"


def test_incluster_errors(tmp_path: Path, ca: trustme.CA) -> None:
    token, ca_file = incluster_files(tmp_path, ca)
    with pytest.raises(ConfigError, match="host/port"):
        load_incluster(token_file=str(token), ca_file=str(ca_file), environ={})
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ConfigError, match="token file"):
        load_incluster(token_file=str(tmp_path / "none"), ca_file=str(ca_file), environ=env)


def test_load_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def one(name: str) -> Path:
        return kubeconfig(
            tmp_path / name,
            users={"u": {"token": name}},
            clusters={"c": {"server": f"http://{name}.example"}},
            contexts={"x": ("c", "u")},
            current="x",
        )

    explicit, from_env = one("explicit"), one("env")
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    one("default").rename(home / ".kube" / "config")
    monkeypatch.setenv("HOME", str(home))
    incluster = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}

    env = {"KUBECONFIG": str(from_env), **incluster}
    assert load_config(explicit, environ=env).server == "http://explicit.example"
    assert load_config(environ=env).server == "http://env.example"
    # in a cluster: the service-account files (absent here) are what is tried
    with pytest.raises(ConfigError, match="token file"):
        load_config(environ=incluster)
    # asking for a context means a kubeconfig, even in a cluster
    assert load_config(context="x", environ=incluster).server == "http://default.example"
    assert load_config(environ={}).server == "http://default.example"


def test_user_agent() -> None:
    agent = default_user_agent()
    assert re.fullmatch(r"flokoa-controller/\S+ \([a-z0-9]+/[a-z0-9_]+\)", agent), agent
    assert ClusterConfig(server="http://x").user_agent == agent


def unpadded_b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_legacy_auth_provider_through_the_configuration_hook(tmp_path: Path) -> None:
    payload = unpadded_b64url(b'{"sub":"someone","iss":"https://issuer.example"}')
    if len(payload) % 4 == 1:  # the loader refuses such JWTs
        payload = unpadded_b64url(b'{"sub":"someone!","iss":"https://issuer.example"}')
    header = unpadded_b64url(b'{"alg":"none"}')
    id_token = f"{header}.{payload}.sig"
    path = kubeconfig(
        tmp_path / "config",
        users={
            "u": {
                "auth-provider": {
                    "name": "oidc",
                    "config": {
                        "id-token": id_token,
                        "client-id": "c",
                        "idp-issuer-url": "https://issuer.example",
                    },
                }
            }
        },
        clusters={"c": {"server": "http://127.0.0.1:1"}},
        contexts={"x": ("c", "u")},
        current="x",
    )
    src = load_kubeconfig(path).token_source
    assert isinstance(src, ConfigurationTokenSource)
    assert await src.token() == id_token
    assert id_token not in repr(src)
