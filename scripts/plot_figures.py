#!/usr/bin/env python3
"""Draws the figure analogs whose data `gemini simulate --figure NAME --data FILE` writes.

Usage: python3 scripts/plot_figures.py --data DATA.json --out FIGURE.png
`gemini simulate --plot FIGURE.png` runs this itself. The JSON's "figure" key
picks the drawing (recovery, checkpoint-time, effective-time); see
src/sim/figures.h for the data and docs/placement.md for how to read them.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STRATEGY_STYLE = {
    "group": dict(color="tab:blue", marker="o", linestyle="-", markersize=5),
    "mixed": dict(color="tab:green", marker=".", linestyle="-", markersize=4, alpha=0.8),
    "ring": dict(color="tab:red", marker="", linestyle="--"),
}
POLICY_STYLE = {
    "gemini": dict(color="tab:green", marker="o", label="Gemini"),
    "highfreq": dict(color="tab:orange", marker="s", label="HighFreq"),
    "strawman": dict(color="tab:red", marker="^", label="Strawman"),
}


def plot_recovery(data, out):
    panels = data["panels"]
    ks = sorted({p["failures"] for p in panels})
    ms = sorted({p["replicas"] for p in panels})
    fig, axes = plt.subplots(len(ms), len(ks), figsize=(4.2 * len(ks), 3.4 * len(ms)),
                             squeeze=False)
    for p in panels:
        ax = axes[ms.index(p["replicas"])][ks.index(p["failures"])]
        lowest = 1.0
        for s in p["series"]:
            pts = [(n, y) for n, y in zip(s["machines"], s["probability"]) if n >= 8]
            if not pts:
                continue
            xs, ys = zip(*pts)
            lowest = min(lowest, min(ys))
            ax.plot(xs, ys, label=s["strategy"], **STRATEGY_STYLE[s["strategy"]])
        ax.set_title(f"m = {p['replicas']} replicas, k = {p['failures']} failed machines",
                     fontsize=10)
        ax.set_xlabel("machines N")
        ax.set_ylabel("P(recover from CPU memory)")
        ax.set_ylim(max(0.0, lowest - 0.05 * (1 - lowest) - 0.01), 1.005)
        if p["failures"] < p["replicas"]:
            ax.set_ylim(0.9, 1.01)
            ax.text(0.5, 0.5, "k < m: every failure set\nis recoverable", ha="center",
                    va="center", transform=ax.transAxes, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Fig. 9 analog: exact probability of recovering from CPU memory "
                 "(group only where m divides N)", fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def plot_checkpoint_time(data, out):
    bw = data["bandwidth_gbps"]
    model = data["model"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = ["o", "s", "^", "D", "v", "P"]
    for i, r in enumerate(data["reduction"]):
        left.plot(bw, r["values"], marker=markers[i % len(markers)],
                  linestyle="--" if r["replicas"] > 2 else "-",
                  label=f"N = {r['instances']}, m = {r['replicas']}")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xticks(bw)
    left.set_xticklabels([f"{b:g}" for b in bw])
    left.set_xlabel("instance network bandwidth (Gbps)")
    left.set_ylabel("remote-storage checkpoint time / Gemini's")
    left.set_title(f"Checkpoint time reduction (storage {model['storage_gbps']:g} Gbps)",
                   fontsize=10)
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8)
    right.plot(bw, data["absolute"]["remote_s"], marker="s", color="tab:red",
               label="remote storage (Strawman / HighFreq)")
    right.plot(bw, data["absolute"]["gemini_s"], marker="o", color="tab:green",
               label="Gemini (CPU memory of peers)")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xticks(bw)
    right.set_xticklabels([f"{b:g}" for b in bw])
    right.set_xlabel("instance network bandwidth (Gbps)")
    right.set_ylabel("checkpoint time (s)")
    right.set_title(f"{model['model_params'] / 1e9:g}B parameters, N = {model['instances']}, "
                    f"m = {model['replicas']}", fontsize=10)
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=8)
    fig.suptitle("Fig. 11 analog: checkpoint time, Gemini vs remote persistent storage",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def plot_policies(ax, xs, series):
    for s in series:
        style = POLICY_STYLE[s["policy"]]
        ax.errorbar(xs, s["mc"], yerr=s["stderr"], capsize=2, **style)
        ax.plot(xs, s["analytic"], linestyle=":", color=style["color"], alpha=0.7)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("effective training time ratio")
    ax.grid(alpha=0.3)


def plot_effective_time(data, out):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    by_rate = data["by_failure_rate"]
    plot_policies(left, by_rate["failures_per_day"], by_rate["series"])
    left.set_xlabel("failures per day")
    left.set_title(f"{by_rate['instances']} instances", fontsize=10)
    handles, labels = left.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="gray", linestyle=":"))
    labels.append("first-order formula")
    left.legend(handles, labels, fontsize=8, loc="lower left")
    by_n = data["by_instances"]
    plot_policies(right, by_n["instances"], by_n["series"])
    right.set_xscale("log")
    right.set_xticks(by_n["instances"])
    right.set_xticklabels([str(n) for n in by_n["instances"]])
    right.set_xlabel("instances")
    right.set_title(f"{100 * by_n['instance_failure_rate']:g}% of instances fail per day",
                    fontsize=10)
    mc = data["monte_carlo"]
    fig.suptitle("Fig. 15 analog: effective training time (markers: Monte Carlo, "
                 f"{mc['trials']} x {mc['days']:g} days; dotted: first-order formula)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.data) as f:
        data = json.load(f)
    draw = {"recovery": plot_recovery, "checkpoint-time": plot_checkpoint_time,
            "effective-time": plot_effective_time}.get(data.get("figure"))
    if draw is None:
        raise SystemExit(f"unknown figure {data.get('figure')!r} in {args.data}")
    try:
        draw(data, args.out)
    except OSError as e:
        raise SystemExit(f"plot_figures.py: cannot write {args.out}: {e.strerror}")


if __name__ == "__main__":
    main()
