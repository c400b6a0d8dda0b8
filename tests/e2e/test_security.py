"""Requests straight to ARC's port (https://127.0.0.1:<port>, bypassing kube-apiserver): identity comes
from certificates, never from headers alone.

- forged ``X-Remote-User/Group`` without a client certificate: anonymous (403 naming system:anonymous);
- a "front-proxy-client" certificate from another CA: refused (TLS handshake or 401), never admin;
- the real front-proxy certificate: the headers count — proving the check is the certificate;
- certificates of the cluster CA authenticate their subject (CN user, O groups), bearer tokens go through
  TokenReview; presented-but-invalid credentials are 401, as in kube-apiserver.
"""

from __future__ import annotations

import pytest

from hack import pki
from hack.cluster import LocalCluster
from tests.e2e.conftest import Kubectl
from tests.e2e.support import (
    GROUP,
    Reply,
    TLSRejected,
    cluster_artifact_type,
    cluster_pair,
    direct,
    eventually,
    extra_certs_dir,
    kubectl_proc,
    order,
    unique,
)

pytestmark = pytest.mark.e2e

GV = f"/apis/{GROUP}/v1alpha1"
FORGED_ADMIN = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}


def _orders(namespace: str) -> str:
    return f"{GV}/namespaces/{namespace}/orders"


def _forbidden(reply: Reply, user: str, verb: str, namespace: str | None, resource: str = "orders") -> None:
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    assert reply.status == 403, reply.body
    assert reply.json()["reason"] == "Forbidden"
    assert (
        f'User "{user}" cannot {verb} resource "{resource}" in API group "{GROUP}" {where}' in reply.message
    ), reply.message


def _order_exists(kubectl: Kubectl, namespace: str, name: str) -> bool:
    return kubectl_proc(kubectl, "get", f"orders.{GROUP}", name, "-n", namespace).returncode == 0


def test_forged_headers_without_a_certificate_are_anonymous(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    listed = direct(local_cluster, "GET", _orders(namespace), headers=FORGED_ADMIN)
    _forbidden(listed, "system:anonymous", "list", namespace)
    name = unique("forged")
    created = direct(
        local_cluster, "POST", _orders(namespace), headers=FORGED_ADMIN, body=order(name, namespace)
    )
    _forbidden(created, "system:anonymous", "create", namespace)
    cat = unique("forged-cat")
    created = direct(
        local_cluster,
        "POST",
        f"{GV}/clusterartifacttypes",
        headers=FORGED_ADMIN,
        body=cluster_artifact_type(cat),
    )
    _forbidden(created, "system:anonymous", "create", None, "clusterartifacttypes")
    # Nothing changed.
    assert not _order_exists(kubectl, namespace, name)
    assert kubectl_proc(kubectl, "get", "cat", cat).returncode != 0


def test_a_proxy_certificate_from_another_ca_is_rejected(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    d = extra_certs_dir(local_cluster)
    rogue_ca = pki.create_ca(d, "rogue-front-proxy-ca", "rogue-front-proxy-ca")
    rogue = pki.issue(rogue_ca, d, "rogue-front-proxy-client", common_name="front-proxy-client", client=True)
    name = unique("rogue")
    for method, body in (("GET", None), ("POST", order(name, namespace))):
        try:
            reply = direct(
                local_cluster, method, _orders(namespace), cert=rogue, headers=FORGED_ADMIN, body=body
            )
        except TLSRejected:
            continue  # Python's TLS layer verifies a presented certificate: no trusted CA, no handshake.
        assert reply.status == 401, reply.body
        assert reply.json()["reason"] == "Unauthorized"
    assert not _order_exists(kubectl, namespace, name)


def test_the_real_proxy_certificate_makes_the_headers_count(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    proxy = cluster_pair(local_cluster, "front-proxy-client")
    listed = direct(local_cluster, "GET", _orders(namespace), cert=proxy, headers=FORGED_ADMIN)
    assert listed.status == 200, listed.body
    assert listed.json()["kind"] == "OrderList"
    name = unique("proxied")
    created = direct(
        local_cluster,
        "POST",
        _orders(namespace),
        cert=proxy,
        headers=FORGED_ADMIN,
        body=order(name, namespace),
    )
    assert created.status == 201, created.body
    assert _order_exists(kubectl, namespace, name)
    # The same certificate with another user in the headers is that user, authorized by RBAC.
    nobody = direct(local_cluster, "GET", _orders(namespace), cert=proxy, headers={"X-Remote-User": "nobody"})
    _forbidden(nobody, "nobody", "list", namespace)


def test_proxy_certificates_that_do_not_qualify_are_unauthorized(
    local_cluster: LocalCluster, namespace: str
) -> None:
    """kube-apiserver's x509 request-header verifier: a front-proxy-CA certificate whose CN is not in
    requestheader-allowed-names, or the proxy certificate without X-Remote-User, is an authentication
    error (401), not an anonymous request."""
    d = extra_certs_dir(local_cluster)
    front_proxy_ca = cluster_pair(local_cluster, "front-proxy-ca")
    mallory = pki.issue(front_proxy_ca, d, "front-proxy-mallory", common_name="mallory", client=True)
    for cert, headers in (
        (mallory, FORGED_ADMIN),
        (cluster_pair(local_cluster, "front-proxy-client"), {}),
    ):
        reply = direct(local_cluster, "GET", _orders(namespace), cert=cert, headers=headers)
        assert reply.status == 401, reply.body
        assert reply.json() == {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


def test_a_cluster_client_certificate_authenticates_its_subject(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    d = extra_certs_dir(local_cluster)
    user = unique("dave")
    group = unique("team-d")
    dave = pki.issue(
        cluster_pair(local_cluster, "ca"), d, user, common_name=user, organizations=[group], client=True
    )
    # Headers mean nothing next to a certificate that is not the proxy's.
    _forbidden(
        direct(local_cluster, "GET", _orders(namespace), cert=dave, headers=FORGED_ADMIN),
        user,
        "list",
        namespace,
    )
    # Bound through the group in the certificate's O, dave may read.
    other = unique("dave-ns")
    kubectl.run("create", "namespace", other)
    try:
        kubectl.run(
            "create", "rolebinding", "team-d-view", "--clusterrole=view", f"--group={group}", "-n", other
        )
        eventually(
            lambda: direct(local_cluster, "GET", _orders(other), cert=dave).status == 200,
            timeout=30,
            what=f"{user} allowed to list orders in {other}",
        )
        _forbidden(
            direct(local_cluster, "POST", _orders(other), cert=dave, body=order("nope", other)),
            user,
            "create",
            other,
        )
    finally:
        kubectl.run("delete", "namespace", other, "--wait=false", check=False)


def test_bearer_tokens_are_reviewed_by_kube_apiserver(
    local_cluster: LocalCluster, kubectl: Kubectl, namespace: str
) -> None:
    bogus = direct(local_cluster, "GET", _orders(namespace), headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status == 401, bogus.body
    assert bogus.json()["reason"] == "Unauthorized"
    kubectl.run("create", "serviceaccount", "robot", "-n", namespace)
    token = kubectl.run("create", "token", "robot", "-n", namespace).strip()
    auth = {"Authorization": f"Bearer {token}"}
    sa = f"system:serviceaccount:{namespace}:robot"
    _forbidden(direct(local_cluster, "GET", _orders(namespace), headers=auth), sa, "list", namespace)
    kubectl.run(
        "create",
        "rolebinding",
        "robot-edit",
        "--clusterrole=edit",
        f"--serviceaccount={namespace}:robot",
        "-n",
        namespace,
    )
    name = unique("robot")
    replies: list[Reply] = []

    def created() -> bool:
        # RBAC reaches kube-apiserver's authorizer cache shortly after the RoleBinding is created.
        replies.append(
            direct(local_cluster, "POST", _orders(namespace), headers=auth, body=order(name, namespace))
        )
        assert replies[-1].status in (201, 403), replies[-1].body
        return replies[-1].status == 201

    eventually(created, timeout=30, what=f"{sa} allowed to create orders")
    assert _order_exists(kubectl, namespace, name)
