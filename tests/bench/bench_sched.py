#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Scheduler speed in `corral sim`: placements per second of CPU time on heterogeneous
clusters of 500, 5,000 and 20,000 nodes with the default profile, and what the framework's
speed choices cost or save in packing.

Node evaluations are plugin runs; class memo rows are rows copied from an equal node's result
instead (docs/scheduler.md, "Speed").

Nodes: 80 % copies of the Alibaba trace's node rows (15 machine shapes, 2 to 8 GPUs of 7
models), 20 % modern machines described the way `corral kubelet --print-node` publishes them
(8x H100 on two NVLink islands, 4x A100, 4x L40 and 2x RTX 4090 with RT cores), so every GPU
plugin has work. Pods: the trace's default pod list, shuffled and resampled to 130 % of the
cluster's GPU capacity (the published replay). Prints name=value unit lines.

  bench_sched.py CORRAL SHARED_DIR [--sizes 500,5000,20000]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

MODERN = [
    # (name, gpus, cpu, memory GiB, per-GPU dict, islands)
    ("h100", 8, 192, 2048, {"model": "H100-SXM5-80GB", "product": "NVIDIA-H100-80GB-HBM3",
                            "memoryMiB": 81559, "computeCapability": "9.0", "family": "hopper",
                            "rtCores": False, "class": "datacenter-training"}, 2),
    ("a100", 4, 96, 1024, {"model": "A100-SXM4-80GB", "memoryMiB": 81920,
                           "computeCapability": "8.0", "family": "ampere", "rtCores": False,
                           "class": "datacenter-training"}, 1),
    ("l40", 4, 64, 512, {"model": "L40", "memoryMiB": 46068, "computeCapability": "8.9",
                         "family": "ada-lovelace", "rtCores": True,
                         "class": "datacenter-inference"}, 0),
    ("rtx4090", 2, 24, 128, {"model": "RTX-4090", "memoryMiB": 24564,
                             "computeCapability": "8.9", "family": "ada-lovelace",
                             "rtCores": True, "class": "consumer"}, 0),
]


def trace_nodes(shared):
    with open(os.path.join(shared, "alibaba-gpu-2023", "csv",
                           "openb_node_list_gpu_node.csv")) as f:
        return list(csv.DictReader(f))


def modern_node(i, kind):
    name, gpus, cpu, mem, gpu, islands = kind
    per = []
    for g in range(gpus):
        e = dict(gpu, index=g, uuid="GPU-%s-%d-%d" % (name, i, g), numaNode=g * 2 // gpus,
                 island=(g * islands // gpus) if islands else -1)
        if islands:
            size = gpus // islands
            e["nvlink"] = [{"peer": p, "bandwidthMBps": 150000}
                           for p in range(gpus) if p != g and p // size == g // size]
        per.append(e)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "%s-%05d" % (name, i),
                     "labels": {"corral.io/gpu.model": gpu["model"],
                                "corral.io/gpu.class": gpu["class"],
                                "topology.kubernetes.io/zone": "zone-%d" % (i % 3)},
                     "annotations": {"corral.io/gpus": json.dumps(per)}},
        "status": {"allocatable": {"cpu": str(cpu), "memory": "%dGi" % mem, "pods": "110",
                                   "nvidia.com/gpu": str(gpus)}},
    }


def trace_node(i, row):
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "openb-%05d" % i,
                     "labels": {"corral.io/gpu.model": row["model"],
                                "topology.kubernetes.io/zone": "zone-%d" % (i % 3)}},
        "status": {"allocatable": {"cpu": row["cpu_milli"] + "m",
                                   "memory": row["memory_mib"] + "Mi", "pods": "110",
                                   "nvidia.com/gpu": row["gpu"]}},
    }


def write_nodes(path, n, rows):
    items = []
    for i in range(n):
        if i % 5 == 4:
            items.append(modern_node(i, MODERN[(i // 5) % len(MODERN)]))
        else:
            items.append(trace_node(i, rows[i % len(rows)]))
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "NodeList", "items": items}, f)


def profile_variant(src, dst, pct):
    with open(src) as f:
        text = f.read()
    text = text.replace("percentageOfNodesToScore: 100", "percentageOfNodesToScore: %d" % pct)
    with open(dst, "w") as f:
        f.write(text)


def sim(corral, nodes, pods, extra):
    out = subprocess.run([corral, "sim", "--nodes", nodes, "--pods", pods, "--seed", "42"] +
                         extra, check=True, capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines():
        for part in line.split():
            if "=" in part:
                k, v = part.split("=", 1)
                vals[k] = v
    return vals


def report(tag, vals):
    pods = int(vals["placed"]) + int(vals["failed"])
    print("sched_sim_pods_per_s_%s=%s pods/s" % (tag, vals["placements_per_s"]))
    print("sched_sim_unalloc_pct_at_100_%s=%s %%" % (tag, vals["unallocated_gpu_pct_at_100"]))
    print("sched_sim_node_evaluations_per_pod_%s=%.1f nodes" % (
        tag, int(vals["nodes_evaluated"]) / max(pods, 1)))
    print("sched_sim_class_memo_rows_per_pod_%s=%.1f nodes" % (
        tag, int(vals.get("class_hits", 0)) / max(pods, 1)))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corral")
    ap.add_argument("shared")
    ap.add_argument("--sizes", default="500,5000,20000")
    args = ap.parse_args()
    rows = trace_nodes(args.shared)
    pods = os.path.join(args.shared, "alibaba-gpu-2023", "csv", "openb_pod_list_default.csv")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests",
                       "profiles", "default.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        adaptive = os.path.join(tmp, "adaptive.yaml")
        profile_variant(src, adaptive, 0)
        for n in (int(x) for x in args.sizes.split(",")):
            nodes = os.path.join(tmp, "nodes-%d.json" % n)
            write_nodes(nodes, n, rows)
            report("%d_nodes" % n, sim(args.corral, nodes, pods, ["--quiet"]))
            if n == 5000:
                report("%d_nodes_adaptive_percentage" % n,
                       sim(args.corral, nodes, pods, ["--profile", adaptive]))
            if n == 500:
                report("%d_nodes_no_cache" % n, sim(args.corral, nodes, pods, ["--no-cache"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
