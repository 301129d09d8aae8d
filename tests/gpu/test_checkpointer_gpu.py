"""The one gemini.torch.Checkpointer with CUDA tensors: the GPU data path
(pinned asynchronous device-to-host capture), and the examples on GPUs."""
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
pytest.importorskip("gemini._gemini_cuda")

import gemini.torch as gt  # noqa: E402
from test_examples import resumes_bit_identically  # noqa: E402


def snapshot(model, opt):
    out = {"m." + k: v.detach().clone() for k, v in model.state_dict().items()}
    for i, st in enumerate(opt.state.values()):
        out |= {f"o.{i}.{k}": v.clone() for k, v in st.items() if torch.is_tensor(v)}
    return out


def test_cuda_state_takes_the_gpu_path_and_restores_bit_exact(agent):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.BatchNorm1d(512)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    ckpt = gt.Checkpointer(model, opt, lr_scheduler=sched, socket=agent.socket, job="one-gpu",
                           overhead_budget=0)
    x = torch.randn(64, 512, device="cuda")

    def step():
        model(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sched.step()

    for s in range(1, 6):
        step()
        ckpt.save(s)
    saved, rng = snapshot(model, opt), torch.cuda.get_rng_state()
    ckpt.wait()
    assert ckpt._gpu is not None, "CUDA tensors did not take the GPU data path"
    assert ckpt._gpu.last_stats()["pinned"] and ckpt._gpu.last_stats()["iteration"] == 5
    assert len(ckpt.stats["copy_s"]) == 5 and ckpt.stats["skipped"] == 0
    for _ in range(2):  # Training goes on past the checkpoint...
        step()
    torch.cuda.manual_seed(123)
    assert ckpt.load_latest() == 5  # ...and the restore brings back step 5 exactly.
    now = snapshot(model, opt)
    assert now.keys() == saved.keys()
    assert [k for k in saved if not torch.equal(now[k], saved[k])] == []
    assert sched.last_epoch == 5 and torch.equal(torch.cuda.get_rng_state(), rng)
    ckpt.close()


@pytest.mark.parametrize("example", ["ddp.py", "fsdp2.py", "titan_style.py"])
def test_example_resumes_bit_identically_on_gpus(agent, example):
    # NCCL, one GPU per rank: as many ranks as GPUs, at most 2.
    resumes_bit_identically(agent, example, nproc=min(2, torch.cuda.device_count()))
