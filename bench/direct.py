"""The pipeline's stages called directly, without Prefect: what `digest run` does, minus
orchestration. The orchestration benchmark times this against `digest run`.

    python -m bench.direct CONFIG
"""

from __future__ import annotations

import sys

from digest.config import load_config
from digest.jobs.insights import Extractor
from digest.jobs.poll import poll_feeds
from digest.jobs.process import Processor
from digest.jobs.send import send_digests
from digest.store import Store


def main() -> None:
    config = load_config(sys.argv[1])
    with Store(config.database_url) as store:
        poll_feeds(store, config)
        todo = store.episodes.processable(max_attempts=config.transcription.max_attempts)
        with Processor(store, config) as processor:
            results = [processor.process(episode) for episode in todo]
        extractor = Extractor(store, config)
        extracted = [extractor.extract(episode) for episode in extractor.pending()]
        report = send_digests(store, config)
    failed = [r.error for r in results + extracted if r.outcome == "failed"]
    done = sum(r.outcome != "failed" for r in results)
    # The same summary `digest run` prints, which the benchmark checks.
    print(f"Processed {len(results)} episode(s): {done} completed, {len(failed)} failed.")
    print(f"Sent {report.count('sent')} message(s).")
    if failed:
        sys.exit(f"direct run incomplete: {failed}")


if __name__ == "__main__":
    main()
