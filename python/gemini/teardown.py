"""gemini.teardown: ending a torch.distributed program without hanging or
aborting at exit.

A model, optimizer or Checkpointer still alive when destroy_process_group()
runs keeps its process group (gloo) alive too; the group is then freed at
interpreter exit, where gloo's worker threads can deadlock against the GIL
(pytorch/pytorch#56297) or abort the process ("terminate called without an
active exception"). run(main) destroys the group only once main's objects
are gone:

    if __name__ == "__main__":
        sys.exit(gemini.teardown.run(main))
"""
import gc


def run(main):
    """Runs main() and returns what it returns, then collects main's objects
    and destroys the default process group (every group) if one is up."""
    import torch.distributed as dist

    result = main()
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    return result
