"""What the FSDP2-on-CPU helpers share: fully_shard every Linear and the whole
model on a 1-D gloo mesh of all ranks, and the optimizer and scheduler they train with."""
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard


def shard_on_cpu(model):
    """fully_shard each Linear, then the model, over all ranks (CPU, gloo)."""
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def optimizer_and_scheduler(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return opt, torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
