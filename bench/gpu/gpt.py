"""The GPT-style model the GPU benchmarks train (bench/gpu/*.py)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, layers, d, heads, vocab, seq):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


def add_model_args(ap, accum=1):
    """The model and batch flags every GPU bench takes."""
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--accum", type=int, default=accum, help="micro-batches per optimizer step")


def describe(a):
    return (f"GPT {a.layers}x{a.dim}, {a.heads} heads, vocab {a.vocab}, seq {a.seq}, "
            f"batch {a.batch}x{a.accum}/GPU, bf16 compute, fp32 AdamW")


def setup(a):
    """Under torchrun: the process group, this rank's GPU, the GPT fully_shard-ed
    per block (bf16 compute, fp32 master weights), AdamW, and train(i): one
    iteration of a.accum micro-batches and an optimizer step.

    Returns (rank, world, model, optimizer, parameter count, train)."""
    import os

    import torch.distributed as dist
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    dist.init_process_group("cpu:gloo,cuda:nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.manual_seed(0)
    model = GPT(a.layers, a.dim, a.heads, a.vocab, a.seq).cuda()
    n_params = sum(p.numel() for p in model.parameters())
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for b in model.blocks:
        fully_shard(b, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    g = torch.Generator(device="cuda").manual_seed(rank)
    data = torch.randint(0, a.vocab, (4, a.batch, a.seq + 1), device="cuda", generator=g)

    def train(i):
        for m in range(a.accum):
            x = data[(i * a.accum + m) % data.shape[0]]
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))
            (loss / a.accum).backward()
            del logits, loss
        opt.step()
        opt.zero_grad(set_to_none=True)

    return rank, world, model, opt, n_params, train
