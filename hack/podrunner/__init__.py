"""Run the pods kwok pretends to run, for real: podman + runc in network namespaces holding the pods' IPs.

kwok's fake nodes give every pod a phase, a Ready condition and an IP from the node's ``spec.podCIDR``, but
no process. For the pods of one Helm release, this harness plays the kubelet and the parts of the cluster
network the pods need:

- :mod:`hack.podrunner.network` — one bridge on the host whose connected route is the pods' CIDR (so the
  host, i.e. kube-apiserver's aggregator, reaches pod IPs through it and nowhere else), one network
  namespace per pod with the pod's IP on a veth into the bridge, and blackhole routes for the Service range
  and kwok's default pod range: nothing private leaves through the default route;
- :mod:`hack.podrunner.proxy` — kube-proxy in userspace mode: each ClusterIP a pod may dial is an address
  of the bridge, and a TCP forwarder on ``clusterIP:port`` connects to one ready endpoint of the Service
  (``kubernetes`` → kube-apiserver on loopback). Pods get ``KUBERNETES_SERVICE_HOST=<ClusterIP>`` as from
  a kubelet, and kube-apiserver's certificate already names that IP;
- :mod:`hack.podrunner.spec` — a pod's spec → podman arguments, as the kubelet would run it: command and
  args (with ``$(VAR)`` expansion), env (``valueFrom`` resolved, service links), user and groups,
  read-only root, capabilities, no-new-privileges, Secrets/ConfigMaps/projected service-account tokens
  written to files and mounted at the pod's mount paths (read-only as the kubelet mounts them), emptyDirs,
  PersistentVolumeClaims bound to hostPath PersistentVolumes; ``/etc/hosts`` stands in for cluster DNS;
- :mod:`hack.podrunner.runner` — the loop: pods of the release that kwok marks Running are started, their
  containers restarted with back-off when they exit (restartPolicy Always), stopped when the pod goes.

``python -m hack.podrunner run|cleanup`` — see ``__main__``. Needs root, ``ip``, podman with runc.
"""
