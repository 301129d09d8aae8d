"""A trainer that only reports the environment it was started with (one JSON
line) and exits 0: what `gemini launch` promises a torchrun-style script."""
import json
import os

KEYS = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
        "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT",
        "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS",
        "GEMINI_SOCKET", "GEMINI_JOB"]

print(json.dumps({k: os.environ.get(k) for k in KEYS}), flush=True)
