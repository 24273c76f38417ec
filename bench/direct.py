"""The pipeline's units called directly, without Prefect: what `digest run` does, minus
orchestration (the same loop as `digest poll`, `digest process`, `digest send`). The
orchestration benchmark times this against `digest run`.

    python -m bench.direct CONFIG
"""

from __future__ import annotations

import sys

from digest import jobs
from digest.core.config import load_config
from digest.store import Store


def main() -> None:
    config = load_config(sys.argv[1])
    with Store(config.database_url) as store:
        jobs.poll_feeds(store, config)
        extractor = jobs.Extractor(store, config)
        with jobs.Transcription(store, config) as transcription:
            outcomes = [
                jobs.process_episode(
                    episode,
                    jobs.LocalSteps(transcription, extractor),
                    transcription.fail,
                    transcription.leases,
                )
                for episode in jobs.work_list(store, config, extractor)
            ]
        report = jobs.send_digests(store, config)
    failed = [o.error for o in outcomes if o.outcome != "completed"]
    done = len(outcomes) - len(failed)
    # The same summary `digest run` prints, which the benchmark checks.
    print(f"Processed {len(outcomes)} episode(s): {done} completed, {len(failed)} failed.")
    print(f"Sent {report.count('sent')} message(s).")
    if failed:
        sys.exit(f"direct run incomplete: {failed}")


if __name__ == "__main__":
    main()
