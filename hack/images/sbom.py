"""SPDX 2.3 (JSON) software bills of materials for the built images.

One document per image, written next to its layout (``<name>.spdx.json``): the image itself, every installed
Debian package (from the root filesystem's dpkg status, with Debian's exact version strings), every Python
distribution (from the installed ``*.dist-info``) and every Go-built program, each with a package URL (purl)
so scanners can match them. The document's time is the image's own ``created``, so an unchanged image has an
unchanged SBOM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hack.images.app import PythonDist
from hack.images.rootfs import DebPackage

NAMESPACE = "https://arc.opendefense.cloud/spdx"


@dataclass(frozen=True)
class GoProgram:
    name: str
    version: str
    module: str


def _spdx_id(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def _package(spdx_id: str, name: str, version: str, purl: str, **extra: Any) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
        ],
        **extra,
    }


def document(
    *,
    image: str,
    repository: str,
    digest: str,
    created: str,
    suite: str,
    debs: Iterable[DebPackage],
    dists: Iterable[PythonDist] = (),
    programs: Iterable[GoProgram] = (),
) -> dict[str, Any]:
    image_id = "SPDXRef-image"
    packages = [
        _package(
            image_id,
            image,
            digest,
            f"pkg:oci/{image}@{quote(digest)}?repository_url={quote(repository, safe='')}",
            primaryPackagePurpose="CONTAINER",
        )
    ]
    for deb in debs:
        purl = f"pkg:deb/debian/{deb.name}@{quote(deb.version)}?arch={deb.architecture}&distro=debian-{suite}"
        packages.append(
            _package(
                _spdx_id("deb", deb.name),
                deb.name,
                deb.version,
                purl,
                sourceInfo=f"Debian source {deb.source}",
            )
        )
    for dist in dists:
        normalized = re.sub(r"[-_.]+", "-", dist.name).lower()
        purl = f"pkg:pypi/{normalized}@{quote(dist.version)}"
        packages.append(_package(_spdx_id("pypi", normalized), dist.name, dist.version, purl))
    for program in programs:
        purl = f"pkg:golang/{program.module}@{program.version}"
        packages.append(_package(_spdx_id("go", program.name), program.name, program.version, purl))
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    relationships += [
        {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": p["SPDXID"]}
        for p in packages[1:]
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image}@{digest}",
        "documentNamespace": f"{NAMESPACE}/{image}/{digest.removeprefix('sha256:')}",
        "creationInfo": {"created": created, "creators": ["Tool: hack.images (ARC)"]},
        "packages": packages,
        "relationships": relationships,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def versions(doc: dict[str, Any], prefix: str) -> dict[str, str]:
    """name → version of the packages whose purl starts with ``prefix`` (``pkg:deb/``, ``pkg:pypi/``)."""
    out = {}
    for package in doc["packages"]:
        purl = package["externalRefs"][0]["referenceLocator"]
        if purl.startswith(prefix):
            out[package["name"]] = package["versionInfo"]
    return out
