#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# deploy/: what can be checked without a cluster or a Docker engine (none is
# reachable here). Prints TAP.
#
# 1. Statically, with PyYAML: the manifests are YAML of the right kinds with
#    the fields docs/kubernetes.md promises; every capability has its reason
#    beside it; the agent's command line in the DaemonSet and in the
#    Dockerfile's ENTRYPOINT/CMD uses only flags `sluice agent --help` lists,
#    and the agent's option parser takes it; the image's final stage installs
#    the package of every library build/sluice links, and nothing to build with.
# 2. As root, the DaemonSet's container command line run for real on a node
#    made of network namespaces (tests/e2e/lib.sh), with the example
#    ConfigMap laid out as the kubelet lays out a ConfigMap volume: it comes
#    up, answers the probes and the scrape on its --listen address, attaches
#    to the interfaces its --iface patterns match (also one created later),
#    steers the example Canary, reloads when the ConfigMap's files are
#    swapped, and cleanup.yaml's command removes everything.
#    Only the paths are the test's own: the pin root, state and run dirs are
#    per run (shared/testing.md), and $(HOST_IP) is the node's address.
set -u
. "$(dirname "$0")/lib.sh"
DEPLOY=$SLUICE_ROOT/deploy
trap 'rm -rf "$WORK"' EXIT # run_checks puts cluster_down here, which does this too

if ! command -v python3 >/dev/null || ! python3 -c 'import yaml' 2>/dev/null; then
	skip "deploy manifests" "python3 with PyYAML is not installed (python3-yaml)"
	tap_done
	exit 0
fi
[ -x "$SLUICE" ] || diag "$SLUICE is not built: the checks that run it are skipped"

# Static checks: one "STATUS<TAB>DESCRIPTION[<TAB>SKIP REASON]" line each,
# STATUS 0 (pass), 1 (fail) or skip.
static_checks() {
	python3 - "$DEPLOY" "$SLUICE" <<'PY'
import json, os, re, shlex, subprocess, sys
import yaml

deploy, sluice = sys.argv[1], sys.argv[2]
have_sluice = os.access(sluice, os.X_OK)

def result(ok, desc, why=""):
    print(("0" if ok else "1") + "\t" + desc + (": " + why if why and not ok else ""))
    sys.stdout.flush()

def skipped(desc, why):
    print("skip\t" + desc + "\t" + why)

def load(name):
    with open(os.path.join(deploy, name)) as f:
        text = f.read()
    return text, [d for d in yaml.safe_load_all(text) if d is not None]

def check(desc, fn):
    """Run fn(); it returns (ok, why). An exception is a failure with its text."""
    try:
        ok, why = fn()
    except Exception as e:  # a missing key is a missing field: say which
        ok, why = False, "%s: %s" % (type(e).__name__, e)
    result(ok, desc, why)

# --- deploy/daemonset.yaml ---------------------------------------------------
try:
    ds_text, ds_docs = load("daemonset.yaml")
    result(True, "daemonset.yaml is valid YAML (%d documents)" % len(ds_docs))
except Exception as e:
    result(False, "daemonset.yaml is valid YAML", str(e))
    sys.exit(0)
try:
    cm_text, cm_docs = load("configmap-example.yaml")
    result(True, "configmap-example.yaml is valid YAML")
except Exception as e:
    result(False, "configmap-example.yaml is valid YAML", str(e))
    cm_text, cm_docs = "", []
try:
    cl_text, cl_docs = load("cleanup.yaml")
    result(True, "cleanup.yaml is valid YAML")
except Exception as e:
    result(False, "cleanup.yaml is valid YAML", str(e))
    cl_text, cl_docs = "", []

kinds = sorted(d.get("kind", "?") for d in ds_docs)
result(kinds == ["DaemonSet", "Namespace", "ServiceAccount"],
       "daemonset.yaml holds a Namespace, a ServiceAccount and a DaemonSet", "kinds %s" % kinds)

by_kind = {d.get("kind"): d for d in ds_docs}
ns = by_kind.get("Namespace", {}).get("metadata", {}).get("name")
sa = by_kind.get("ServiceAccount", {})
ds = by_kind.get("DaemonSet", {})
pod = ds.get("spec", {}).get("template", {}).get("spec", {})
containers = pod.get("containers", [])
inits = pod.get("initContainers", [])
agent = next((c for c in containers if (c.get("args") or c.get("command") or [None])[0] == "agent"),
             containers[0] if containers else {})
args = [str(a) for a in agent.get("args", [])]
env = {e["name"]: e for e in agent.get("env", [])}

def opt(name):
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None

def mount(container, path):
    return next((m for m in container.get("volumeMounts", []) if m.get("mountPath") == path), None)

def volume(name):
    return next((v for v in pod.get("volumes", []) if v.get("name") == name), None)

def same_ns():
    bad = [d["kind"] for d in ds_docs + cm_docs + cl_docs
           if d.get("kind") != "Namespace" and d.get("metadata", {}).get("namespace") != ns]
    label = by_kind["Namespace"]["metadata"].get("labels", {}).get(
        "pod-security.kubernetes.io/enforce")
    return (not bad and label == "privileged",
            "outside %s: %s; pod-security enforce label %s" % (ns, bad, label))
check("every object is in the sluice namespace, which admits privileged pods", same_ns)

def least_rbac():
    rbac = [d["kind"] for d in ds_docs + cm_docs + cl_docs
            if d.get("kind") in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]
    return (pod.get("serviceAccountName") == sa["metadata"]["name"] and
            sa.get("automountServiceAccountToken") is False and
            pod.get("automountServiceAccountToken") is False and not rbac,
            "serviceAccountName %s, token automount %s/%s, RBAC objects %s" %
            (pod.get("serviceAccountName"), sa.get("automountServiceAccountToken"),
             pod.get("automountServiceAccountToken"), rbac))
check("the DaemonSet runs as its own ServiceAccount, no token, no RBAC (the agent calls no API)",
      least_rbac)

check("hostNetwork, and cluster DNS for webhook URLs",
      lambda: (pod.get("hostNetwork") is True and
               pod.get("dnsPolicy") == "ClusterFirstWithHostNet",
               "hostNetwork %s dnsPolicy %s" % (pod.get("hostNetwork"), pod.get("dnsPolicy"))))

def bpffs():
    vol = next(v for v in pod["volumes"] if v.get("hostPath", {}).get("path") == "/sys/fs/bpf")
    am = next(m for m in agent["volumeMounts"] if m["name"] == vol["name"])
    bidi = [c for c in inits + containers for m in c.get("volumeMounts", [])
            if m["name"] == vol["name"] and m.get("mountPropagation") == "Bidirectional"]
    unpriv = [c["name"] for c in bidi if not c.get("securityContext", {}).get("privileged")]
    mounts = [c["name"] for c in bidi if "mount -t bpf" in " ".join(c.get("command", []))]
    return (am["mountPath"] == "/sys/fs/bpf" and
            am.get("mountPropagation") in ("HostToContainer", "Bidirectional") and
            bidi and not unpriv and mounts and opt("--bpffs", ).startswith("/sys/fs/bpf/"),
            "agent mount %s (%s), Bidirectional in %s, unprivileged among them %s, "
            "mounting bpffs %s, --bpffs %s" % (am["mountPath"], am.get("mountPropagation"),
                                               [c["name"] for c in bidi], unpriv, mounts,
                                               opt("--bpffs")))
check("bpffs: the node's /sys/fs/bpf, mounted there when absent (Bidirectional, privileged "
      "init container), seen by the agent, pin root under it", bpffs)

def host_dir(flag, path):
    def fn():
        m = mount(agent, opt(flag))
        vol = volume(m["name"]) if m else None
        got = vol.get("hostPath", {}).get("path") if vol else None
        return got == path, "%s %s is mounted from %s" % (flag, opt(flag), got)
    return fn
check("state dir: hostPath /var/lib/sluice at --state-dir",
      host_dir("--state-dir", "/var/lib/sluice"))
check("run dir: hostPath /run/sluice at --run-dir", host_dir("--run-dir", "/run/sluice"))

cm = next((d for d in cm_docs if d.get("kind") == "ConfigMap"), {})
def canaries():
    m = mount(agent, opt("--spec"))
    vol = volume(m["name"])
    return (opt("--spec") == "/etc/sluice/canaries" and "configMap" in vol and
            "subPath" not in m and m.get("readOnly") is True and
            vol["configMap"]["name"] == cm["metadata"]["name"],
            "--spec %s, volume %s, subPath %s, readOnly %s" %
            (opt("--spec"), vol, m.get("subPath"), m.get("readOnly")))
check("specs: the ConfigMap mounted read-only as the directory --spec reads (no subPath: "
      "updates reach it)", canaries)

listen = opt("--listen") or ""
listen_port = listen.rsplit(":", 1)[-1]
def probes():
    why = []
    for kind in ("livenessProbe", "readinessProbe"):
        g = agent.get(kind, {}).get("httpGet", {})
        host = g.get("host")
        addr = listen.rsplit(":", 1)[0]
        # no host: the kubelet probes the pod IP, the node's with hostNetwork
        reach = (host == addr) or (host is None and addr == "$(HOST_IP)" and
                 env.get("HOST_IP", {}).get("valueFrom", {}).get("fieldRef", {})
                 .get("fieldPath") == "status.hostIP")
        if g.get("path") != "/healthz" or str(g.get("port")) != listen_port or not reach:
            why.append("%s %s" % (kind, g))
    return not why, "; ".join(why) + " vs --listen " + listen
check("liveness and readiness: GET /healthz where --listen binds", probes)

def resources():
    r = agent["resources"]
    def mi(v):
        units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        return float(v[:-2]) * units[v[-2:]] if v[-2:] in units else float(v)
    def cores(v):
        return float(v[:-1]) / 1000 if v.endswith("m") else float(v)
    ok = (cores(r["requests"]["cpu"]) <= cores(r["limits"]["cpu"]) and
          mi(r["requests"]["memory"]) <= mi(r["limits"]["memory"]))
    return ok, str(r)
check("resources: cpu and memory requests and limits, requests within limits", resources)

def scrape():
    a = ds["spec"]["template"]["metadata"]["annotations"]
    ports = [str(p.get("containerPort")) for p in agent.get("ports", [])]
    return (a.get("prometheus.io/scrape") == "true" and a.get("prometheus.io/port") == listen_port
            and a.get("prometheus.io/path") == "/metrics" and listen_port in ports and
            not listen.startswith("127.") and not listen.startswith("[::1]"),
            "annotations %s, ports %s, --listen %s" % (a, ports, listen))
check("Prometheus scrape annotations name the --listen port, which is off loopback", scrape)

check("terminationGracePeriodSeconds is set (the agent exits in under a second)",
      lambda: (isinstance(pod.get("terminationGracePeriodSeconds"), int) and
               5 <= pod["terminationGracePeriodSeconds"] <= 60,
               str(pod.get("terminationGracePeriodSeconds"))))

check("rolling update one node at a time, never two agents on a node (maxSurge 0)",
      lambda: (ds["spec"]["updateStrategy"]["rollingUpdate"].get("maxSurge") in (0, "0"),
               str(ds["spec"]["updateStrategy"])))

def agent_caps():
    sc = agent["securityContext"]
    add = set(sc["capabilities"]["add"])
    return (sc["capabilities"]["drop"] == ["ALL"] and
            {"BPF", "NET_ADMIN", "PERFMON"} <= add <= {"BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN"}
            and not sc.get("privileged") and sc.get("allowPrivilegeEscalation") is False and
            sc.get("readOnlyRootFilesystem") is True,
            str(sc))
check("agent: not privileged, every capability dropped but BPF, NET_ADMIN, PERFMON; "
      "read-only root", agent_caps)

def cap_comments(text, docs):
    """Each capability added, with the comment on its line."""
    found, stack = {}, None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if line.strip() == "add:":
            stack = indent
            continue
        if stack is not None:
            m = re.match(r"\s*-\s*([A-Z_]+)\s*(?:#\s*(.*))?$", line)
            if m and indent >= stack:
                found.setdefault(m.group(1), []).append(m.group(2) or "")
                continue
            stack = None
    added = [c for d in docs for ct in
             d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) +
             d.get("spec", {}).get("template", {}).get("spec", {}).get("initContainers", [])
             for c in ct.get("securityContext", {}).get("capabilities", {}).get("add", [])]
    return added, found

def reasons():
    why, n = [], 0
    for text, docs in ((ds_text, ds_docs), (cl_text, cl_docs)):
        added, found = cap_comments(text, docs)
        for c in added:
            n += 1
            notes = found.get(c, [])
            if not notes or any(len(t.split()) < 3 for t in notes):
                why.append("%s has no reason beside it" % c)
    return not why and n > 0, "; ".join(why) or "no capabilities found"
check("every capability in the manifests has its reason beside it", reasons)

def iface():
    v = opt("--iface") or ""
    items = v.split(",")
    bad = [i for i in items if not i or re.search(r"[\s/:]", i) or
           (not re.search(r"[*?\[]", i) and len(i) > 15)]
    return v != "" and not bad and any(re.search(r"[*?\[]", i) for i in items), \
        "--iface %r, bad items %s" % (v, bad)
check("--iface names the node's uplink and the pods' veths by pattern", iface)

images = {c.get("image") for d in ds_docs + cl_docs for c in
          d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) +
          d.get("spec", {}).get("template", {}).get("spec", {}).get("initContainers", [])}
result(len(images) == 1, "every container runs the one sluice image", str(images))

# --- deploy/configmap-example.yaml -------------------------------------------
def cm_shape():
    canaries = {k: yaml.safe_load(v) for k, v in cm["data"].items()}
    bad = [k for k, c in canaries.items() if not re.search(r"\.(ya?ml|json)$", k) or
           c.get("kind") != "Canary" or "steering" not in c.get("spec", {})]
    names = [c["metadata"]["name"] for c in canaries.values()]
    return (cm["metadata"]["namespace"] == ns and not bad and "api-service" in names,
            "namespace %s, bad keys %s, canaries %s" % (cm["metadata"].get("namespace"), bad,
                                                        names))
check("the example ConfigMap holds the api-service Canary with its spec.steering, one "
      "*.yaml key per Canary", cm_shape)

# --- the agent's command lines against the agent -----------------------------
help_text = ""
if have_sluice:
    p = subprocess.run([sluice, "agent", "--help"], capture_output=True, text=True)
    help_text = p.stdout

def flags_listed(argv, desc):
    if not have_sluice:
        return skipped(desc, "build/sluice is not built")
    flags = [a.split("=")[0] for a in argv if a.startswith("-")]
    missing = [f for f in flags if not re.search(r"(^|[\s,])" + re.escape(f) + r"\b", help_text)]
    result(flags and not missing, desc, "not in `sluice agent --help`: %s" % missing)

def parser_takes(argv, desc):
    """Every option known, with its argument: the parser reaches the --help put last."""
    if not have_sluice:
        return skipped(desc, "build/sluice is not built")
    argv = [a.replace("$(HOST_IP)", "10.0.0.1") for a in argv]
    p = subprocess.run([sluice] + argv + ["--help"], capture_output=True, text=True)
    result(p.returncode == 0 and p.stdout.startswith("Usage: sluice agent"), desc,
           "exit %d: %s" % (p.returncode, p.stderr.strip()[:300]))

flags_listed(args[1:],
             "every flag of the DaemonSet's agent command line is in `sluice agent --help`")
parser_takes(args, "the agent's option parser takes the DaemonSet's command line")

cl_pod = next((d for d in cl_docs if d.get("kind") == "DaemonSet"), {}).get("spec", {}) \
    .get("template", {}).get("spec", {})
cl_args = [str(a) for c in cl_pod.get("initContainers", []) for a in c.get("args", [])]
flags_listed(cl_args[1:], "cleanup.yaml's command line is in `sluice agent --help`")
parser_takes(cl_args, "the agent's option parser takes cleanup.yaml's command line")

if have_sluice:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k, v in cm.get("data", {}).items():
            files.append(os.path.join(tmp, k))
            with open(files[-1], "w") as f:
                f.write(v)
        p = subprocess.run([sluice, "check"] + files, capture_output=True, text=True)
        result(p.returncode == 0 and files, "`sluice check` accepts every Canary of the example "
               "ConfigMap", (p.stdout + p.stderr).strip()[:300])
else:
    skipped("`sluice check` accepts the example ConfigMap", "build/sluice is not built")

# --- deploy/Dockerfile --------------------------------------------------------
def dockerfile():
    lines, cur = [], ""
    with open(os.path.join(deploy, "Dockerfile")) as f:
        for raw in f:
            s = raw.rstrip("\n")
            if not cur and s.lstrip().startswith("#"):
                continue
            if cur and s.lstrip().startswith("#"):
                continue  # comments inside a continued instruction
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            if cur.strip():
                lines.append(cur.strip())
            cur = ""
    stages = []
    for l in lines:
        word, _, rest = l.partition(" ")
        if word.upper() == "FROM":
            stages.append({"from": rest.split()[0], "as": rest.split()[-1]
                           if " as " in rest.lower() else None, "ins": []})
        elif stages:
            stages[-1]["ins"].append((word.upper(), rest.strip()))
    return stages

def apt_packages(stage):
    pkgs = []
    for word, rest in stage["ins"]:
        if word != "RUN":
            continue
        for part in re.split(r"&&|;", rest):
            t = shlex.split(part)
            if "apt-get" in " ".join(t[:3]) and "install" in t:
                pkgs += [w for w in t[t.index("install") + 1:] if not w.startswith("-")]
    return pkgs

try:
    stages = dockerfile()
    final = stages[-1]
    build_st = stages[0]
    result(len(stages) >= 2 and all(s["from"] == "debian:12-slim" for s in stages),
           "Dockerfile: multi-stage, every stage on debian:12-slim",
           str([s["from"] for s in stages]))
    runs = " ".join(r for w, r in build_st["ins"] if w == "RUN")
    copies = [r for w, r in final["ins"] if w == "COPY"]
    result(re.search(r"\bmake\b", runs) is not None and
           any("--from=%s" % build_st["as"] in c and "build/sluice" in c for c in copies),
           "Dockerfile: the build stage runs make; the final stage copies build/sluice from it",
           "runs %r, copies %r" % (runs[:200], copies))
    rt = apt_packages(final)
    devish = [p for p in rt if p.endswith("-dev") or p in ("gcc", "clang", "make", "bpftool",
                                                           "pkg-config", "iproute2")]
    result(rt and not devish, "Dockerfile: the final stage installs runtime libraries only",
           "packages %s, not runtime: %s" % (rt, devish))

    if have_sluice and subprocess.run(["sh", "-c", "command -v objdump && command -v dpkg"],
                                      capture_output=True).returncode == 0:
        needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(
            ["objdump", "-p", sluice], capture_output=True, text=True).stdout)
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        missing = []
        for so in needed:
            m = re.search(r"^\s*" + re.escape(so) + r" \(.*x86-64.*\) => (\S+)$|^\s*" +
                          re.escape(so) + r" \(.*\) => (\S+)$", cache, re.M)
            path = (m.group(1) or m.group(2)) if m else None
            owner = None
            for cand in filter(None, (path, path and os.path.realpath(path))):
                q = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if q.returncode == 0:
                    owner = q.stdout.split(":")[0]
                    break
            if owner in ("libc6",):
                continue  # in every Debian image
            if owner not in rt:
                missing.append("%s (%s)" % (so, owner))
        result(needed and not missing, "Dockerfile: the final stage installs the package of "
               "every library build/sluice links (%d NEEDED)" % len(needed),
               "missing %s" % missing)
    else:
        skipped("Dockerfile: the final stage covers build/sluice's libraries",
                "needs build/sluice, objdump and dpkg")

    q = subprocess.run(["apt-cache", "show"] + apt_packages(build_st) + rt,
                       capture_output=True, text=True) if subprocess.run(
        ["sh", "-c", "command -v apt-cache"], capture_output=True).returncode == 0 else None
    if q is None or "No packages found" in q.stderr and "Package:" not in q.stdout:
        skipped("Dockerfile: every package it installs exists in Debian 12",
                "no apt package lists here (apt-get update)")
    else:
        result(q.returncode == 0, "Dockerfile: every package it installs exists in Debian 12",
               q.stderr.strip()[:300])

    ep = next((json.loads(r) for w, r in final["ins"] if w == "ENTRYPOINT"), None)
    cmd = next((json.loads(r) for w, r in final["ins"] if w == "CMD"), None)
    dest = copies[0].split()[-1] if copies else None
    result(ep == [dest] and cmd and cmd[0] == "agent",
           "Dockerfile: ENTRYPOINT is the copied sluice binary, CMD an agent command line",
           "ENTRYPOINT %s CMD %s" % (ep, cmd))
    if cmd:
        flags_listed(cmd[1:], "every flag of the image's CMD is in `sluice agent --help`")
        parser_takes(cmd, "the agent's option parser takes the image's ENTRYPOINT + CMD")
except Exception as e:
    result(False, "Dockerfile parses", "%s: %s" % (type(e).__name__, e))
PY
}

while IFS=$'\t' read -r st desc why; do
	if [ "$st" = skip ]; then skip "$desc" "$why"; else ok "$st" "$desc"; fi
done < <(static_checks)

# --- the DaemonSet's command line, run on a namespace node ---------------------
run_checks() {
	local what="the DaemonSet's agent on a namespace node"
	if [ "$(id -u)" -ne 0 ]; then skip "$what" "needs root"; return; fi
	if [ ! -x "$SLUICE" ] || [ ! -x "$BACKEND_BIN" ]; then
		skip "$what" "build/ is not built"; return
	fi
	local t
	for t in ip nsenter curl tc; do
		command -v "$t" >/dev/null || { skip "$what" "$t is not installed"; return; }
	done
	trap cluster_down EXIT
	cluster_up
	# The client's link on the node as a CNI names a pod's veth; another
	# matching interface exists before the agent starts, one that matches
	# nothing (the pods' links p1, p2, c1 match nothing either).
	ip -n "$(ns node)" link set cli0 down
	ip -n "$(ns node)" link set cli0 name lxc0a
	ip -n "$(ns node)" link set lxc0a up
	ip -n "$(ns node)" link add eth0 type veth peer name peth0
	ip -n "$(ns node)" link add ens5 type veth peer name pens5
	start_backend p1 p1
	start_backend p2 p2
	start_backend c1 c1
	wait_http p1 http://198.18.1.2:8080/ && wait_http c1 http://198.18.3.2:8080/

	# The ConfigMap volume as the kubelet writes it: the files in a
	# timestamped directory, ..data pointing at it, one symlink per key.
	local cmdir=$WORK/canaries
	cm_write() { # VERSION-DIR [sed expression applied to every file]
		python3 - "$DEPLOY/configmap-example.yaml" "$cmdir/$1" "${2:-}" <<'PY'
import os, re, subprocess, sys, yaml
src, out, sed = sys.argv[1:4]
os.makedirs(out)
for d in yaml.safe_load_all(open(src)):
    for k, v in (d or {}).get("data", {}).items():
        with open(os.path.join(out, k), "w") as f:
            f.write(v)
        if sed:
            subprocess.run(["sed", "-i", sed, os.path.join(out, k)], check=True)
        top = os.path.join(os.path.dirname(out), k)
        if not os.path.lexists(top):
            os.symlink(os.path.join("..data", k), top)
PY
		ln -sfn "$1" "$cmdir/..data_tmp" && mv -T "$cmdir/..data_tmp" "$cmdir/..data"
	}
	mkdir -p "$cmdir"
	cm_write ..2024_01_01_00_00_00.1

	# The container's args, from the manifest, with the test's own paths.
	local node_ip=198.18.0.1 argv=()
	mapfile -t argv < <(python3 - "$DEPLOY/daemonset.yaml" "$cmdir" "$PIN_ROOT" "$STATE_DIR" \
		"$RUN_DIR" "$node_ip" <<'PY'
import sys, yaml
f, spec, pins, state, run, ip = sys.argv[1:7]
ds = next(d for d in yaml.safe_load_all(open(f)) if d and d["kind"] == "DaemonSet")
agent = ds["spec"]["template"]["spec"]["containers"][0]
args = [str(a) for a in agent["args"]]
repl = {"--spec": spec, "--bpffs": pins, "--state-dir": state, "--run-dir": run}
for i in range(1, len(args)):
    if args[i - 1] in repl:
        args[i] = repl[args[i - 1]]
print("\n".join(a.replace("$(HOST_IP)", ip) for a in args))
PY
	)
	diag "agent ${argv[*]}"
	local listen
	listen=$(printf '%s\n' "${argv[@]}" | grep -A1 -x -- --listen | tail -1)
	(exec nsenter --net="/run/netns/$(ns node)" "$SLUICE" "${argv[@]}" \
		>>"$WORK/agent.log" 2>&1) &
	AGENT_PID=$!
	CLUSTER_PIDS+=("$AGENT_PID")
	local up=1
	for _ in $(seq 100); do
		grep -q "agent running" "$WORK/agent.log" 2>/dev/null && { up=0; break; }
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	ok $up "the DaemonSet's command line starts the agent (ConfigMap-volume spec dir)"
	[ $up -eq 0 ] || sed 's/^/# agent: /' "$WORK/agent.log" | tail -5

	local code
	code=$(in_node curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$listen/healthz")
	[ "$code" = 200 ]
	ok $? "the probes' GET /healthz on $listen answers 200 ($code)"
	in_node curl -s --max-time 2 "http://$listen/metrics" | grep -q '^sluice_'
	ok $? "the scrape's GET /metrics on $listen serves sluice_ metrics"

	local matched=0 unmatched=0 d
	for d in lxc0a eth0; do attached "$d" || matched=1; done
	for d in ens5 p1 c1; do attached "$d" && unmatched=1; done
	ok $matched "--iface patterns: attached to lxc0a (lxc*) and eth0"
	ok $unmatched "--iface patterns: nothing on ens5, p1, c1, which match no pattern"

	# The example Canary pins its cohort 198.18.0.0/28, the client's, to the canary.
	local who
	who=$(in_ns client curl -s --max-time 2 http://198.19.0.10:8080/)
	[ "$who" = c1 ]
	ok $? "the example Canary is steered: the client (its canary cohort) reaches c1 ($who)"

	# A pod created after the agent: its veth appears on the node, down.
	ip -n "$(ns node)" link add veth9b type veth peer name pveth9b
	local t0 ms=none
	t0=$(date +%s%N)
	for _ in $(seq 30); do
		attached veth9b && { ms=$(( ($(date +%s%N) - t0) / 1000000 )); break; }
		sleep 0.1
	done
	[ "$ms" != none ] && [ "$ms" -le 1000 ]
	ok $? "a new interface matching veth* is attached within a second ($ms ms)"
	ip -n "$(ns node)" link del veth9b
	sleep 0.3
	kill -0 "$AGENT_PID" 2>/dev/null
	ok $? "the agent keeps running when that interface is deleted"

	# A ConfigMap update: the kubelet writes a new directory and swaps ..data.
	cm_write ..2024_01_01_00_01_00.2 '/cohorts:/d'
	rm -rf "$cmdir/..2024_01_01_00_00_00.1"
	for _ in $(seq 30); do
		who=$(in_ns client curl -s --max-time 1 http://198.19.0.10:8080/)
		case "$who" in p1 | p2) break ;; esac
		sleep 0.1
	done
	case "$who" in p1 | p2) r=0 ;; *) r=1 ;; esac
	ok $r "a ConfigMap update (..data swapped) is reloaded: no cohort, the client reaches $who"

	local t1
	t0=$(date +%s%N)
	kill -TERM "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	t1=$(date +%s%N)
	AGENT_PID=
	ms=$(( (t1 - t0) / 1000000 ))
	[ "$ms" -lt 5000 ] && attached lxc0a
	ok $? "SIGTERM: the agent exits in $ms ms (grace period 15 s), datapath left in place"

	# cleanup.yaml's command, with this run's pin root.
	local cl=()
	mapfile -t cl < <(python3 - "$DEPLOY/cleanup.yaml" "$PIN_ROOT" <<'PY'
import sys, yaml
ds = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet")
args = [str(a) for a in ds["spec"]["template"]["spec"]["initContainers"][0]["args"]]
for i, a in enumerate(args):
    print(sys.argv[2] if i and args[i - 1] == "--bpffs" else a)
PY
	)
	in_node "$SLUICE" "${cl[@]}" >>"$WORK/cleanup.log" 2>&1
	local left=0
	for d in lxc0a eth0; do
		[ -n "$(hooks_of "$d")" ] && left=1
	done
	[ -e "$PIN_ROOT" ] && left=1
	ok $left "cleanup.yaml's command removes every filter and the pins"
}
run_checks

tap_done
