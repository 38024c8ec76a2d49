#!/usr/bin/env python3
"""check-k8s.py [DIR] - check the Kubernetes manifests (docker/k8s) beyond
what yamllint sees, without a cluster: the relations between the objects
and the numbers they must agree on with the image, the server and nginx.
Needs PyYAML (python3-yaml, which yamllint depends on). Prints one line per
check and "N passed, N failed"; exit 1 if any failed.
"""
import os
import re
import sys

import yaml

here = os.path.dirname(os.path.abspath(__file__))
kdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "k8s")
npass = nfail = 0


def check(name, cond, detail=""):
    global npass, nfail
    if cond:
        npass += 1
        print("ok   k8s: " + name)
    else:
        nfail += 1
        print("FAIL k8s: " + name + (" (" + detail + ")" if detail else ""))


def quantity(q, cpu):
    """Kubernetes quantity -> float (cores or bytes)."""
    q = str(q)
    units = {"m": 1e-3} if cpu else {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q)


docs = {}
for fn in sorted(os.listdir(kdir)):
    if fn.endswith(".yaml"):
        with open(os.path.join(kdir, fn)) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.setdefault(d["kind"], []).append((fn, d))

known = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
         "PodDisruptionBudget": "policy/v1", "Kustomization": "kustomize.config.k8s.io/v1beta1"}
for kind, items in docs.items():
    for fn, d in items:
        check("%s: %s has apiVersion %s" % (fn, kind, known.get(kind)), d.get("apiVersion") == known.get(kind),
              str(d.get("apiVersion")))
for kind in ("Deployment", "Service", "HorizontalPodAutoscaler"):
    check("a %s exists" % kind, kind in docs)
if nfail:
    print("%d passed, %d failed" % (npass, nfail))
    sys.exit(1)

dep = docs["Deployment"][0][1]
svc = docs["Service"][0][1]
hpa = docs["HorizontalPodAutoscaler"][0][1]
spec = dep["spec"]
pod = spec["template"]["spec"]
labels = spec["template"]["metadata"]["labels"]
c = pod["containers"][0]
env = {e["name"]: e.get("value") for e in c.get("env", [])}
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}

sel = spec["selector"]["matchLabels"]
check("Deployment selector matches its pod labels", all(labels.get(k) == v for k, v in sel.items()))
check("Service selects the Deployment's pods", all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()))
tp = svc["spec"]["ports"][0]["targetPort"]
check("Service targetPort is the container's port", tp in ports or tp in ports.values(), str(tp))
check("container port = SYNTH_PORT", str(ports.get("http")) == env.get("SYNTH_PORT"),
      "%s vs %s" % (ports.get("http"), env.get("SYNTH_PORT")))
check("listens on all addresses in the pod (SYNTH_HOST 0.0.0.0)", env.get("SYNTH_HOST") == "0.0.0.0")

ref = hpa["spec"]["scaleTargetRef"]
check("HPA targets the Deployment", ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"])
check("HPA minReplicas <= maxReplicas", hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"])
check("HPA scales on CPU utilization, so the pod requests CPU",
      any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"]["metrics"])
      and "cpu" in c["resources"]["requests"])
for pfn, pdb in docs.get("PodDisruptionBudget", []):
    check("PodDisruptionBudget selects the Deployment's pods",
          all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()))
    check("PodDisruptionBudget minAvailable < HPA minReplicas",
          pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"])

def probe(name):
    p = c.get(name, {}).get("httpGet", {})
    return p.get("path"), p.get("port")

check("readiness probe GET /ready", probe("readinessProbe")[0] == "/ready")
check("liveness probe GET /health", probe("livenessProbe")[0] == "/health")
check("probes use the container port", all(probe(n)[1] in ports or probe(n)[1] in ports.values()
                                           for n in ("readinessProbe", "livenessProbe")))

drain = float(env.get("SYNTH_DRAIN_TIMEOUT", "30"))
pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
pre_s = float(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0.0
grace = pod.get("terminationGracePeriodSeconds", 30)
check("terminationGracePeriodSeconds > preStop + SYNTH_DRAIN_TIMEOUT",
      grace > pre_s + drain, "%s vs %s + %s" % (grace, pre_s, drain))

res = c["resources"]
for r, cpu in (("cpu", True), ("memory", False)):
    ok = r in res.get("requests", {}) and r in res.get("limits", {})
    check("%s request and limit set, request <= limit" % r,
          ok and quantity(res["requests"][r], cpu) <= quantity(res["limits"][r], cpu))
check("SYNTH_THREADS fits the CPU limit",
      int(env.get("SYNTH_THREADS", "0")) >= 1
      and int(env["SYNTH_THREADS"]) <= max(1, quantity(res["limits"]["cpu"], True)))

psc = pod.get("securityContext", {})
csc = c.get("securityContext", {})
check("runs as non-root (runAsNonRoot, numeric runAsUser != 0)",
      psc.get("runAsNonRoot") is True and int(psc.get("runAsUser", 0)) > 0)
check("read-only root filesystem", csc.get("readOnlyRootFilesystem") is True)
check("no privilege escalation, all capabilities dropped",
      csc.get("allowPrivilegeEscalation") is False and "ALL" in csc.get("capabilities", {}).get("drop", []))

# the image and the other deployment files agree
dockerfile = open(os.path.join(here, "Dockerfile")).read()
m = re.search(r"^ARG UID=(\d+)", dockerfile, re.M)
check("runAsUser is the image's USER", m is not None and int(m.group(1)) == int(psc.get("runAsUser", -1)),
      m.group(1) if m else "no ARG UID in the Dockerfile")
m = re.search(r"SYNTH_DRAIN_TIMEOUT: \"(\d+)\"", open(os.path.join(here, "compose.yaml")).read())
check("same drain timeout as docker/compose.yaml", m is not None and float(m.group(1)) == drain)
nginx = open(os.path.join(here, "nginx.conf")).read()
m = re.search(r"proxy_read_timeout (\d+)s", nginx)
rt = float(env.get("SYNTH_REQUEST_TIMEOUT", "0")) / 1000
check("request deadline < nginx proxy_read_timeout", m is not None and 0 < rt < float(m.group(1)),
      "%s s vs %s" % (rt, m.group(1) if m else None))
m = re.search(r"client_max_body_size (\d+)m;", nginx)
check("SYNTH_MAX_BODY = nginx client_max_body_size",
      m is not None and int(env.get("SYNTH_MAX_BODY", "0")) == int(m.group(1)) << 20)

# the queue-depth autoscaling overlay (docker/k8s/queue-autoscaling)
odir = os.path.join(kdir, "queue-autoscaling")
if os.path.isdir(odir):
    def load(fn):
        with open(os.path.join(odir, fn)) as f:
            return [d for d in yaml.safe_load_all(f) if d]
    kust = load("kustomization.yaml")[0]
    check("overlay builds on the base", "../" in kust.get("resources", []))
    patches = [p["path"] for p in kust.get("patches", [])]
    check("overlay patches the HPA", "hpa-queue.yaml" in patches)
    patch = load("hpa-queue.yaml")[0]
    check("overlay HPA patch has the base HPA's name and kind",
          patch.get("kind") == "HorizontalPodAutoscaler" and patch["metadata"]["name"] == hpa["metadata"]["name"]
          and patch.get("apiVersion") == "autoscaling/v2")
    names = [m["pods"]["metric"]["name"] for m in patch["spec"]["metrics"] if m.get("type") == "Pods"]
    srv_metrics = open(os.path.join(here, "..", "server", "srv_metrics.c")).read()
    exported = set(re.findall(r'render_counter\(&b, "(synth_[a-z_]+)"', srv_metrics))
    check("overlay scales on Pods metrics", len(names) == len(patch["spec"]["metrics"]) and len(names) > 0)
    for n in names:
        check("%s is a gauge the server exports (server/srv_metrics.c)" % n, n in exported)
    cm = load("prometheus-adapter-rules.yaml")[0]
    rules = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
    for n in names:
        check("prometheus-adapter exposes %s from the series of that name" % n,
              any(r["name"]["as"] == n and r["seriesQuery"].startswith(n + "{") for r in rules))
    inflight = [m for m in patch["spec"]["metrics"] if m["pods"]["metric"]["name"] == "synth_requests_in_flight"]
    check("in-flight target below one pod's batch (SYNTH_MAX_BATCH)",
          inflight and float(inflight[0]["pods"]["target"]["averageValue"]) < float(env.get("SYNTH_MAX_BATCH", "32")))

print("%d passed, %d failed" % (npass, nfail))
sys.exit(1 if nfail else 0)
