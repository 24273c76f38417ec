"""Stage 4, the edition: the day's top insights selected and rendered as an email."""
