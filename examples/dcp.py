"""torch.distributed.checkpoint (DCP) users: Gemini's memory as DCP storage.

    torchrun --nproc-per-node 2 examples/dcp.py --steps 20

dcp.save / dcp.load as usual, with gemini.dcp.MemoryWriter(step) and
MemoryReader() as storage: checkpoints go to the agents' memory and their
replicas, and a restore may use another world size (DCP reshards).
"""
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.nn.parallel import DistributedDataParallel as DDP

from common import announce, batch, flags, init, model, report, run, train_step
from gemini.dcp import MemoryReader, MemoryWriter, latest_step


def main():
    args = flags(__doc__)
    device = init()
    net = DDP(model(device))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    start = 0
    if latest_step(job=args.job) is not None:
        msd, osd = get_state_dict(net, opt)
        state = {"model": msd, "optim": osd, "step": 0}
        dcp.load(state, storage_reader=MemoryReader(job=args.job))
        set_state_dict(net, opt, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
        start = state["step"]
    announce(start)
    for step in range(start + 1, args.steps + 1):
        loss = train_step(net, opt, batch(step, device))
        msd, osd = get_state_dict(net, opt)
        dcp.save({"model": msd, "optim": osd, "step": step},
                 storage_writer=MemoryWriter(step, job=args.job))
        report(step, loss)


if __name__ == "__main__":
    run(main)
