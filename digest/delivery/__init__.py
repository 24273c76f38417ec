"""Stage 5, delivery: each reader's copy of an edition, handed to a channel."""
