#!/usr/bin/env python3
"""Figure of `gemini bench interleave --plot FILE.png` (the paper's Fig. 7, 8, 16 analogs).

    python3 scripts/plot_interleave.py result.json docs/figures/interleave.png

Panels: median iteration time per mode (ratio to none above each bar); one
profiled iteration's network timeline (busy = training allreduce, idle) with
the checkpoint send time beside the idle time; the p = 1 vs p buffers
ablation (checkpoint send time and interleaved iteration time).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    r = json.load(open(sys.argv[1]))
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    modes = list(r["iter_s"])
    vals = [r["iter_s"][m] for m in modes]
    base = r["iter_s"].get("none") or vals[0]
    colors = {"none": "#888", "naive": "#d62728", "interleave": "#2ca02c"}
    modes = [m for m in modes if m in colors]
    vals = [r["iter_s"][m] for m in modes]
    bars = ax[0].bar(modes, vals, color=[colors[m] for m in modes])
    for b, v in zip(bars, vals):
        ax[0].text(b.get_x() + b.get_width() / 2, v, f"x{v / base:.3f}", ha="center", va="bottom")
    ax[0].set_ylabel("median iteration time (s)")
    ax[0].set_title(f"Iteration time, {r['hosts']} hosts at {r['rate']} (Fig. 7)")

    il = r["modes"].get("interleave", {}).get("agent") or {}
    prof = (il.get("profiler") or {}).get("profile") or {}
    for seg in prof.get("timeline", []):
        color = "#1f77b4" if seg["kind"] == "busy" else "#dddddd"
        ax[1].barh(1, seg["length_s"], left=seg["start_s"], color=color, edgecolor="k")
    idle = r.get("idle_s_per_iter", 0)
    send = r.get("ckpt_send_s", 0)
    ax[1].barh(0, idle, color="#dddddd", edgecolor="k")
    ax[1].barh(-1, send, color="#ff7f0e", edgecolor="k")
    ax[1].set_yticks([1, 0, -1], ["one iteration\n(blue: allreduce)", "network idle\nper iteration",
                                  "checkpoint\nsend"])
    ax[1].set_xlabel("seconds")
    ax[1].set_title(f"Idle {idle:.2f} s vs checkpoint {send:.2f} s per iteration (Fig. 8)")

    ab = r.get("ablation")
    if ab:
        b = ax[2].bar(["p=1", "p=4"], [ab["send_s_p1"], ab["send_s_p4"]],
                      color=["#ffbb78", "#ff7f0e"])
        for bar, v in zip(b, [ab["send_s_p1"], ab["send_s_p4"]]):
            ax[2].text(bar.get_x() + bar.get_width() / 2, v, f"{v:.3f} s", ha="center",
                       va="bottom")
        ax[2].set_ylabel("checkpoint send time (s)")
        ax[2].set_title(f"Send time, R = {ab['buffer']} in p sub-buffers,\n"
                        f"{ab.get('rate', '')} links (Fig. 16)")
    else:
        ax[2].axis("off")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
