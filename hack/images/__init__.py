"""ARC's container images, built without Docker and reproducibly: ``python -m hack.images`` / ``make images``.

- :mod:`hack.images.oci` — deterministic layer tars and OCI image layouts, written in Python;
- :mod:`hack.images.rootfs` — Debian base root filesystems from ``mmdebstrap``, cached per definition;
- :mod:`hack.images.app` — ARC's wheel and its locked runtime dependencies (``pip install --target``);
- :mod:`hack.images.build` — the ``arc`` and ``arc-tools`` images, labels, SBOMs, the tools lock;
- :mod:`hack.images.sbom` — SPDX 2.3 documents of what is installed.

See docs/images.md.
"""
